"""casemsg's own survey format, `casemsg-survey/1`: the source of truth for SMS surveys.

A survey is a plain dict (stored as JSON, editable as YAML) so that it can be versioned, diffed and
reviewed; XLSForm is only an import route into it (see `xlsform.py`). `parse_survey` checks everything an
author can get wrong and reports all problems at once, each naming its question, because a survey is
fixed in one round of edits rather than one error at a time. `to_dict` gives the canonical dict back:
defaults filled in, optional keys left out when unset, so two equivalent sources produce equal dicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.surveys.expressions import NAME_RE, Compiled, ExpressionError, compile_expression, find_references

__all__ = [
    "ANSWER_ERRORS",
    "DATE_FORMATS",
    "FORMAT",
    "MAX_CHOICES",
    "MAX_QUESTIONS",
    "QUESTION_TYPES",
    "SELECT_TYPES",
    "Choice",
    "Problem",
    "Question",
    "Settings",
    "Survey",
    "SurveyError",
    "check_size",
    "parse_survey",
    "to_dict",
]

FORMAT = "casemsg-survey/1"
QUESTION_TYPES = ("text", "integer", "decimal", "date", "time", "select_one", "select_multiple", "note")
SELECT_TYPES = ("select_one", "select_multiple")
# A survey's size is bounded (docs/surveys.md, "Limits"): every question is a text message, and the canonical
# definition holds each question's choices, so both counts bound the work and the stored JSON.
MAX_QUESTIONS = 2_000
MAX_CHOICES = 20_000  # the choices of all questions together
DEFAULT_EXPIRE_AFTER = 1440  # minutes: a day, long enough for people who read SMS once a day
# How dates are typed in replies (settings.date_format), and the reasons a reply can be refused
# (settings.error_messages translates them). Defined here, with the format; answers.py reads them.
DATE_FORMATS = ("YYYYMMDD", "DDMMYYYY", "MMDDYYYY")
ANSWER_ERRORS = (
    "required",
    "invalid_choice",
    "invalid_choices",
    "invalid_integer",
    "invalid_decimal",
    "invalid_date",
    "invalid_time",
    "invalid_text",
    "constraint_failed",
)

# Case properties are free-form in casemsg, but a survey writes them from an SMS, so we keep to names
# that are safe everywhere (API, CSV export, XLSForm's entities:saveto) and refuse the case's own fields,
# which are not properties and would only create confusingly named duplicates.
_PROPERTY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_RESERVED_PROPERTIES = frozenset({"case_id", "case_type", "external_id", "owner_id", "parent_id"})
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
_KEYWORD_RE = re.compile(r"^\S{1,32}$")
_TOP_KEYS = ("format", "name", "form_id", "version", "default_language", "languages", "settings", "questions")
_SETTINGS_KEYS = ("keyword", "expire_after", "reminder_intervals", "submit_partial", "date_format", "error_messages")
_QUESTION_KEYS = (
    "name", "type", "label", "choices", "required", "constraint", "constraint_message", "relevant", "save_to",
)  # fmt: skip
_CHOICE_KEYS = ("name", "label")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a survey, as a sentence. `question` names the question it is about (None for
    the survey as a whole); `sheet`/`row` say where it is in an imported XLSForm."""

    question: str | None
    message: str
    row: int | None = None
    sheet: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"{self.sheet or 'survey'} sheet, row {self.row}")
        if self.question:
            where.append(f"question '{self.question}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class SurveyError(ValueError):
    """A survey that cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Choice:
    name: str
    label: dict[str, str]


@dataclass(frozen=True)
class Question:
    name: str
    type: str
    label: dict[str, str]
    choices: tuple[Choice, ...] = ()
    required: bool = False
    constraint: str | None = None
    constraint_message: dict[str, str] = field(default_factory=dict)
    relevant: str | None = None
    save_to: str | None = None
    # Compiled once at parse time so that evaluating a reply never re-parses; not part of equality.
    compiled_constraint: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_relevant: Compiled | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Settings:
    keyword: str | None = None
    expire_after: int = DEFAULT_EXPIRE_AFTER  # minutes from the first question until the session ends
    reminder_intervals: tuple[int, ...] = ()  # minutes after the previous message, one per reminder
    submit_partial: bool = False  # on expiry, save the answers given so far to the case
    date_format: str = "YYYYMMDD"  # how dates are typed in replies: one of DATE_FORMATS
    # {language: {error: text}}: the survey's own (or translated) reasons for refusing a reply, by the
    # error names of ANSWER_ERRORS; `{count}`, `{date_format}` and `{example}` are filled in.
    error_messages: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Survey:
    name: str
    default_language: str
    languages: tuple[str, ...]
    settings: Settings
    questions: tuple[Question, ...]
    form_id: str | None = None  # XLSForm form_id, kept so a re-import can be matched to its survey
    version: str | None = None

    def question(self, name: str) -> Question:
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(name)


class _Collector:
    """Accumulates problems so that one pass reports all of them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, question: str | None, message: str) -> None:
        self.problems.append(Problem(question, message))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unknown_keys(
    out: _Collector, question: str | None, data: Mapping[str, Any], allowed: tuple[str, ...], what: str
) -> None:
    # Typos like `relevent` would otherwise silently drop a rule.
    for key in data:
        if key not in allowed:
            out.add(question, f"{what} has an unknown key '{key}' (known keys: {', '.join(allowed)}).")


def _texts(
    out: _Collector, question: str | None, value: object, what: str, languages: tuple[str, ...], default: str
) -> dict[str, str]:
    """A {language: text} dict; the default language is required so every contact gets some text."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        out.add(question, f"{what} must be an object mapping language codes to text.")
        return {}
    texts = {k: v for k, v in value.items()}
    for lang in texts:
        if lang not in languages:
            out.add(question, f"{what} has text in '{lang}', which is not one of the survey's languages.")
    if not texts.get(default, "").strip():
        out.add(question, f"{what} has no text in the default language '{default}'.")
    return texts


def _parse_error_messages(out: _Collector, value: object, languages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(lang, str) and isinstance(texts, dict) and all(isinstance(k, str) for k in texts)
        for lang, texts in value.items()
    ):
        out.add(None, "settings.error_messages must map language codes to {error name: text} objects.")
        return {}
    messages: dict[str, dict[str, str]] = {}
    for lang, texts in value.items():
        if lang not in languages:
            out.add(None, f"settings.error_messages has texts in '{lang}', which is not one of the survey's languages.")
        for name, text in texts.items():
            if name not in ANSWER_ERRORS:
                out.add(
                    None,
                    f"settings.error_messages.{lang} has '{name}', which is not one of {', '.join(ANSWER_ERRORS)}.",
                )
            elif not isinstance(text, str) or not text.strip():
                out.add(None, f"settings.error_messages.{lang}.{name} must be non-empty text.")
            else:
                messages.setdefault(lang, {})[name] = text
    return messages


def _parse_settings(out: _Collector, value: object, languages: tuple[str, ...] = ()) -> Settings:
    if value is None:
        return Settings()
    if not isinstance(value, dict):
        out.add(None, "settings must be an object.")
        return Settings()
    _unknown_keys(out, None, value, _SETTINGS_KEYS, "settings")
    keyword = value.get("keyword")
    if keyword is not None and not (isinstance(keyword, str) and _KEYWORD_RE.match(keyword)):
        out.add(None, "settings.keyword must be one word of at most 32 characters, or null.")
        keyword = None
    expire_after = value.get("expire_after", DEFAULT_EXPIRE_AFTER)
    if not _is_int(expire_after) or expire_after <= 0:
        out.add(None, "settings.expire_after must be a whole number of minutes greater than 0.")
        expire_after = DEFAULT_EXPIRE_AFTER
    intervals = value.get("reminder_intervals", [])
    if not isinstance(intervals, list) or not all(_is_int(i) and i > 0 for i in intervals):
        out.add(None, "settings.reminder_intervals must be a list of whole numbers of minutes greater than 0.")
        intervals = []
    elif sum(intervals) >= expire_after:
        out.add(
            None,
            f"settings.reminder_intervals add up to {sum(intervals)} minutes, so the last reminder would be sent "
            f"after the survey expires (expire_after is {expire_after}).",
        )
    submit_partial = value.get("submit_partial", False)
    if not isinstance(submit_partial, bool):
        out.add(None, "settings.submit_partial must be true or false.")
        submit_partial = False
    date_format = value.get("date_format", "YYYYMMDD")
    if date_format not in DATE_FORMATS:
        out.add(None, f"settings.date_format must be one of {', '.join(DATE_FORMATS)}.")
        date_format = "YYYYMMDD"
    messages = _parse_error_messages(out, value.get("error_messages"), languages)
    return Settings(keyword, expire_after, tuple(intervals), submit_partial, date_format, messages)


def _parse_choices(
    out: _Collector, qname: str, value: object, languages: tuple[str, ...], default: str
) -> tuple[Choice, ...]:
    if not isinstance(value, list) or not value:
        out.add(qname, "A select question needs a non-empty list of choices.")
        return ()
    choices: list[Choice] = []
    for i, raw in enumerate(value, start=1):
        if not isinstance(raw, dict):
            out.add(qname, f"Choice {i} must be an object with a name and a label.")
            continue
        _unknown_keys(out, qname, raw, _CHOICE_KEYS, f"Choice {i}")
        name = raw.get("name")
        # select_multiple answers are space-separated names, so a name cannot contain spaces.
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            out.add(qname, f"Choice {i} needs a name without spaces.")
            continue
        label = _texts(out, qname, raw.get("label"), f"The label of choice '{name}'", languages, default)
        choices.append(Choice(name, label))
    seen: set[str] = set()
    for c in choices:
        if c.name in seen:
            out.add(qname, f"The choice name '{c.name}' is used twice.")
        seen.add(c.name)
    _check_reply_ambiguity(out, qname, choices)
    return tuple(choices)


def _check_reply_ambiguity(out: _Collector, qname: str, choices: list[Choice]) -> None:
    """Replies are matched by position, name or any label, ignoring case; each must pick one choice.

    Typical catch: choices named 0 and 1 in that order, where the reply '1' would mean both the first
    choice (by number) and the choice named '1'.
    """
    owners: dict[str, set[str]] = {}
    for position, c in enumerate(choices, start=1):
        for token in (str(position), c.name, *c.label.values()):
            key = " ".join(token.split()).casefold()
            if key:
                owners.setdefault(key, set()).add(c.name)
    for key, names in owners.items():
        if len(names) > 1:
            listed = " and ".join(f"'{n}'" for n in sorted(names))
            out.add(qname, f"The reply '{key}' would match choices {listed}; give them distinct names and labels.")


def _check_expression(
    out: _Collector, q: dict[str, Any], key: str, earlier: list[str], all_names: dict[str, str]
) -> Compiled | None:
    """References are checked here, with the survey's order in mind, for sentences more useful than
    'unknown'; everything else is left to the compiler."""
    qname = str(q.get("name"))
    expr = q.get(key)
    if expr is None:
        return None
    if not isinstance(expr, str) or not expr.strip():
        out.add(qname, f"{key} must be a non-empty expression.")
        return None
    ok = True
    for ref in find_references(expr):
        if ref == qname:
            hint = " Use '.' for the answer being checked." if key == "constraint" else ""
            out.add(qname, f"{key} '{expr}' refers to the question itself (${{{ref}}}).{hint}")
        elif ref not in all_names:
            out.add(qname, f"{key} '{expr}' refers to ${{{ref}}}, but there is no question named '{ref}'.")
        elif ref not in earlier:
            out.add(qname, f"{key} '{expr}' refers to ${{{ref}}}, which comes later; only earlier answers are known.")
        elif all_names[ref] == "note":
            out.add(qname, f"{key} '{expr}' refers to ${{{ref}}}, which is a note and has no answer.")
        else:
            continue
        ok = False
    if not ok:
        return None
    try:
        return compile_expression(expr, set(earlier), allow_dot=(key == "constraint"))
    except ExpressionError as err:
        out.add(qname, f"{key}: {err}")
        return None


def _parse_question(
    out: _Collector,
    raw: dict[str, Any],
    earlier: list[str],
    all_names: dict[str, str],
    languages: tuple[str, ...],
    default: str,
) -> Question | None:
    name = raw.get("name")
    qname = str(name)
    _unknown_keys(out, qname, raw, _QUESTION_KEYS, "The question")
    qtype = raw.get("type")
    if qtype not in QUESTION_TYPES:
        out.add(qname, f"The type '{qtype}' is not supported; use one of {', '.join(QUESTION_TYPES)}.")
        return None
    label = _texts(out, qname, raw.get("label"), "The label", languages, default)
    choices: tuple[Choice, ...] = ()
    if qtype in SELECT_TYPES:
        choices = _parse_choices(out, qname, raw.get("choices"), languages, default)
    elif "choices" in raw:
        out.add(qname, f"Only select questions have choices, not {qtype} questions.")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        out.add(qname, "required must be true or false.")
        required = False
    if qtype == "note":
        # A note is sent, never answered: answer-related keys would be silently meaningless.
        for key in ("constraint", "save_to"):
            if raw.get(key) is not None:
                out.add(qname, f"A note has no answer, so it cannot have {key}.")
        if required:
            out.add(qname, "A note has no answer, so it cannot be required.")
    constraint = _check_expression(out, raw, "constraint", earlier, all_names) if qtype != "note" else None
    relevant = _check_expression(out, raw, "relevant", earlier, all_names)
    message: dict[str, str] = {}
    if raw.get("constraint_message") is not None:
        if raw.get("constraint") is None:
            out.add(qname, "constraint_message is given but there is no constraint.")
        message = _texts(out, qname, raw["constraint_message"], "The constraint_message", languages, default)
    save_to = raw.get("save_to")
    if save_to is not None and qtype != "note":
        if not isinstance(save_to, str) or not _PROPERTY_RE.match(save_to) or len(save_to) > 255:
            out.add(
                qname,
                f"save_to '{save_to}' is not a valid case property name (letters, digits, '_' and '-', "
                "not starting with a digit).",
            )
        elif save_to in _RESERVED_PROPERTIES:
            out.add(qname, f"save_to '{save_to}' is a case field, not a property; surveys cannot change it.")
    return Question(
        name=qname,
        type=qtype,
        label=label,
        choices=choices,
        required=required,
        constraint=raw.get("constraint"),
        constraint_message=message,
        relevant=raw.get("relevant"),
        save_to=save_to if qtype != "note" else None,
        compiled_constraint=constraint,
        compiled_relevant=relevant,
    )


def check_size(data: object) -> None:
    """Refuse (422 TOO_MANY_QUESTIONS) a survey dict with more than MAX_QUESTIONS questions or MAX_CHOICES
    choices in all, before anything else is checked: those checks cost time in proportion to its size."""
    questions = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(questions, list):
        return
    if len(questions) > MAX_QUESTIONS:
        raise InputError(
            errors.TOO_MANY_QUESTIONS,
            f"The survey has {len(questions):,} questions; the limit is {MAX_QUESTIONS:,}.",
            422,
        )
    choices = sum(len(q["choices"]) for q in questions if isinstance(q, dict) and isinstance(q.get("choices"), list))
    if choices > MAX_CHOICES:
        raise InputError(
            errors.TOO_MANY_QUESTIONS,
            f"The survey's questions have {choices:,} choices in all; the limit is {MAX_CHOICES:,}.",
            422,
        )


def parse_survey(data: dict[str, Any]) -> Survey:
    """Validate a `casemsg-survey/1` dict and build a Survey; raises SurveyError listing every problem."""
    out = _Collector()
    if not isinstance(data, dict):
        raise SurveyError([Problem(None, "A survey must be an object.")])
    _unknown_keys(out, None, data, _TOP_KEYS, "The survey")
    if data.get("format") != FORMAT:
        out.add(None, f"format must be '{FORMAT}', not {data.get('format')!r}.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        out.add(None, "The survey needs a name.")
        name = ""
    form_id, version = data.get("form_id"), data.get("version")
    for key, value in (("form_id", form_id), ("version", version)):
        if value is not None and not isinstance(value, str):
            out.add(None, f"{key} must be text or null.")

    languages_raw = data.get("languages")
    if not isinstance(languages_raw, list) or not languages_raw or not all(isinstance(x, str) for x in languages_raw):
        out.add(None, "languages must be a non-empty list of language codes.")
        languages_raw = []
    languages = tuple(languages_raw)
    for lang in languages:
        if not _LANGUAGE_RE.match(lang):
            out.add(None, f"'{lang}' is not a language code (like 'en', 'sw' or 'pt-BR').")
    if len(set(languages)) != len(languages):
        out.add(None, "languages lists a language twice.")
    default = data.get("default_language")
    if not isinstance(default, str) or default not in languages:
        out.add(None, f"default_language {default!r} must be one of the survey's languages.")
        default = str(default)

    settings = _parse_settings(out, data.get("settings"), languages)

    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        out.add(None, "A survey needs a non-empty list of questions.")
        raw_questions = []
    # First pass: names and types, so references to later questions get a precise sentence.
    all_names: dict[str, str] = {}
    valid: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_questions, start=1):
        if not isinstance(raw, dict):
            out.add(None, f"Question {i} must be an object.")
            continue
        qname = raw.get("name")
        if not isinstance(qname, str) or not NAME_RE.match(qname):
            out.add(
                None if not isinstance(qname, str) else qname,
                f"Question {i} needs a name of letters, digits, '_', '-' or '.', starting with a letter or '_'.",
            )
            continue
        if qname in all_names:
            out.add(qname, f"The name '{qname}' is used by more than one question.")
            continue
        all_names[qname] = str(raw.get("type"))
        valid.append(raw)
    questions: list[Question] = []
    earlier: list[str] = []
    for raw in valid:
        q = _parse_question(out, raw, earlier, all_names, languages, default)
        earlier.append(str(raw["name"]))
        if q is not None:
            questions.append(q)
    if out.problems:
        raise SurveyError(out.problems)
    return Survey(
        name=name,
        default_language=default,
        languages=languages,
        settings=settings,
        questions=tuple(questions),
        form_id=form_id,
        version=version,
    )


def to_dict(survey: Survey) -> dict[str, Any]:
    """The canonical dict for a survey: `parse_survey(to_dict(s)) == s`, and it is what gets stored."""
    data: dict[str, Any] = {"format": FORMAT, "name": survey.name}
    if survey.form_id is not None:
        data["form_id"] = survey.form_id
    if survey.version is not None:
        data["version"] = survey.version
    data["default_language"] = survey.default_language
    data["languages"] = list(survey.languages)
    data["settings"] = {
        "keyword": survey.settings.keyword,
        "expire_after": survey.settings.expire_after,
        "reminder_intervals": list(survey.settings.reminder_intervals),
        "submit_partial": survey.settings.submit_partial,
    }
    if survey.settings.date_format != "YYYYMMDD":
        data["settings"]["date_format"] = survey.settings.date_format
    if survey.settings.error_messages:
        data["settings"]["error_messages"] = {k: dict(v) for k, v in survey.settings.error_messages.items()}
    questions: list[dict[str, Any]] = []
    for q in survey.questions:
        item: dict[str, Any] = {"name": q.name, "type": q.type, "label": dict(q.label)}
        if q.type in SELECT_TYPES:
            item["choices"] = [{"name": c.name, "label": dict(c.label)} for c in q.choices]
        if q.required:
            item["required"] = True
        if q.constraint is not None:
            item["constraint"] = q.constraint
        if q.constraint_message:
            item["constraint_message"] = dict(q.constraint_message)
        if q.relevant is not None:
            item["relevant"] = q.relevant
        if q.save_to is not None:
            item["save_to"] = q.save_to
        questions.append(item)
    data["questions"] = questions
    return data
