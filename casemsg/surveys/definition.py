"""casemsg's own survey format, `casemsg-survey/1`: the source of truth for SMS surveys.

A survey is a plain dict (stored as JSON, editable as YAML) so that it can be versioned, diffed and
reviewed; XLSForm is only an import route into it (see `xlsform.py`). `parse_survey` checks everything an
author can get wrong and reports all problems at once, each naming its question, because a survey is
fixed in one round of edits rather than one error at a time. `to_dict` gives the canonical dict back:
defaults filled in, optional keys left out when unset, so two equivalent sources produce equal dicts.

A survey is one flat list of questions in the order they are asked: what an XLSForm nests (groups,
repeats) arrives here flattened and unrolled (`xform.py`). Besides the questions that wait for a reply,
the list holds what is computed rather than asked (`calculate`, `hidden`, `metadata`), evaluated in
document order as the answers arrive (`flow.py`). `entity` says which case the answers are written to: the
case the survey was sent to (the default, or an ODK Entities update form), or a new case (a registration).

(Over 500 lines: the format is one reading — its dataclasses, every check with its sentence, and the
canonical dict — and the checks of one key sit beside those of the others.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.surveys.expressions import (
    NAME_RE,
    Compiled,
    ExpressionError,
    compile_choice_filter,
    compile_expression,
    find_references,
)

__all__ = [
    "ANSWER_ERRORS",
    "ASKED_TYPES",
    "COMPUTED_TYPES",
    "DATE_FORMATS",
    "DEFAULT_PROMPTS",
    "FORMAT",
    "METADATA",
    "PROMPTS",
    "MAX_CHOICES",
    "MAX_QUESTIONS",
    "QUESTION_TYPES",
    "SELECT_TYPES",
    "Choice",
    "Entity",
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
QUESTION_TYPES = (
    "text", "integer", "decimal", "date", "time", "datetime", "select_one", "select_multiple", "rank",
    "acknowledge", "note", "calculate", "hidden", "metadata",
)  # fmt: skip
SELECT_TYPES = ("select_one", "select_multiple", "rank")  # the types with choices
# Types that wait for a reply; notes are sent; computed types are neither sent nor asked.
ASKED_TYPES = ("text", "integer", "decimal", "date", "time", "datetime", *SELECT_TYPES, "acknowledge")
COMPUTED_TYPES = ("calculate", "hidden", "metadata")
# What a `metadata` question holds (flow.py fills them in): ODK's metadata, and the case's own fields.
METADATA = (
    "start", "end", "today", "deviceid", "phonenumber", "username", "email", "simserial", "subscriberid",
    "audit", "instanceid", "case_id", "case_name", "case_property",
)  # fmt: skip
# The texts casemsg adds to a question (settings.prompts translates them): the value a skip keeps, the
# acknowledgement asked for, the progress said before a question.
PROMPTS = ("keep", "acknowledge", "progress")
DEFAULT_PROMPTS: dict[str, str] = {  # their English (the project's texts and settings.prompts translate them)
    "keep": "Reply {word} to keep {value}.",
    "acknowledge": "Reply OK.",
    "progress": "[{n}/{total}]",
}
DEFAULT_SKIP_WORD = "#SKIP"
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
    "invalid_datetime",
    "invalid_acknowledge",
)

# Case properties are free-form in casemsg, but a survey writes them from an SMS, so we keep to names
# that are safe everywhere (API, CSV export, XLSForm's entities:saveto) and refuse the case's own fields,
# which are not properties and would only create confusingly named duplicates.
_PROPERTY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_RESERVED_PROPERTIES = frozenset({"case_id", "case_type", "external_id", "owner_id", "parent_id"})
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
_KEYWORD_RE = re.compile(r"^\S{1,32}$")
_TOP_KEYS = (
    "format", "name", "form_id", "version", "default_language", "languages", "settings", "entity", "tables",
    "questions",
)  # fmt: skip
_SETTINGS_KEYS = (
    "keyword", "expire_after", "reminder_intervals", "submit_partial", "date_format", "error_messages",
    "skip_word", "progress", "prefill", "prompts",
)  # fmt: skip
_QUESTION_KEYS = (
    "name", "type", "label", "hint", "choices", "choice_filter", "required", "required_message", "read_only",
    "constraint", "constraint_message", "relevant", "default", "default_expression", "calculation", "metadata",
    "property", "save_to",
)  # fmt: skip
_CHOICE_KEYS = ("name", "label", "columns")
_ENTITY_KEYS = ("list_name", "action", "label", "create_if", "update_if", "parent")
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


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
    columns: dict[str, str] = field(default_factory=dict)  # the choices sheet's other columns (choice_filter)


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
    hint: dict[str, str] = field(default_factory=dict)
    required_if: str | None = None  # a dynamic `required` (an expression); `required` is then False
    required_message: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    read_only_if: str | None = None  # a dynamic `read_only`
    choice_filter: str | None = None
    default: str | None = None  # the value a skipped question takes (and a hidden field holds)
    default_expression: str | None = None  # a dynamic default, evaluated when the question is reached
    calculation: str | None = None  # a `calculate`'s expression
    metadata: str | None = None  # a `metadata` question's kind (METADATA)
    case_property: str | None = None  # metadata `case_property`: which property of the case (key "property")
    # Compiled once at parse time so that evaluating a reply never re-parses; not part of equality.
    compiled_constraint: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_relevant: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_required: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_read_only: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_filter: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_default: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_calculation: Compiled | None = field(default=None, compare=False, repr=False)

    @property
    def asked(self) -> bool:
        return self.type in ASKED_TYPES

    @property
    def computed(self) -> bool:
        return self.type in COMPUTED_TYPES


@dataclass(frozen=True)
class Entity:
    """Where the answers go (ODK Entities): `update` the case the survey was sent to, or `create` a new case
    of type `list_name` (when `create_if` holds), named by `label`, a child of the sender's case with
    `parent` 'sender'. `label`, `create_if` and `update_if` are expressions over the whole survey."""

    list_name: str
    action: str  # "update" or "create"
    label: str | None = None
    create_if: str | None = None
    update_if: str | None = None
    parent: str | None = None  # "sender" or None
    compiled_label: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_create_if: Compiled | None = field(default=None, compare=False, repr=False)
    compiled_update_if: Compiled | None = field(default=None, compare=False, repr=False)


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
    skip_word: str = DEFAULT_SKIP_WORD  # the reply that skips a question (it takes its default)
    progress: bool = False  # say "[12/340]" before each question
    prefill: bool = False  # offer a `save_to` question's current case value ("Reply #SKIP to keep 3")
    prompts: dict[str, dict[str, str]] = field(default_factory=dict)  # {language: {PROMPTS name: text}}


@dataclass(frozen=True)
class Survey:
    name: str
    default_language: str
    languages: tuple[str, ...]
    settings: Settings
    questions: tuple[Question, ...]
    form_id: str | None = None  # XLSForm form_id, kept so a re-import can be matched to its survey
    version: str | None = None
    entity: Entity | None = None  # None: the answers update the case the survey was sent to
    # CSV files attached to the survey, for pulldata(): {name: rows ({column: value})}; not part of equality
    tables: dict[str, tuple[dict[str, str], ...]] = field(default_factory=dict, compare=False, repr=False)

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
    out: _Collector,
    question: str | None,
    value: object,
    what: str,
    languages: tuple[str, ...],
    default: str,
    *,
    required: bool = True,
) -> dict[str, str]:
    """A {language: text} dict; the default language is required so every contact gets some text."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        out.add(question, f"{what} must be an object mapping language codes to text.")
        return {}
    texts = {k: v for k, v in value.items()}
    for lang in texts:
        if lang not in languages:
            out.add(question, f"{what} has text in '{lang}', which is not one of the survey's languages.")
    if required and not texts.get(default, "").strip():
        out.add(question, f"{what} has no text in the default language '{default}'.")
    return texts


def _parse_translations(
    out: _Collector, value: object, languages: tuple[str, ...], key: str, names: tuple[str, ...]
) -> dict[str, dict[str, str]]:
    """settings.error_messages and settings.prompts: {language: {name: text}}."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(lang, str) and isinstance(texts, dict) and all(isinstance(k, str) for k in texts)
        for lang, texts in value.items()
    ):
        out.add(None, f"settings.{key} must map language codes to {{name: text}} objects.")
        return {}
    messages: dict[str, dict[str, str]] = {}
    for lang, texts in value.items():
        if lang not in languages:
            out.add(None, f"settings.{key} has texts in '{lang}', which is not one of the survey's languages.")
        for name, text in texts.items():
            if name not in names:
                out.add(None, f"settings.{key}.{lang} has '{name}', which is not one of {', '.join(names)}.")
            elif not isinstance(text, str) or not text.strip():
                out.add(None, f"settings.{key}.{lang}.{name} must be non-empty text.")
            else:
                messages.setdefault(lang, {})[name] = text
    return messages


def _flag(out: _Collector, value: dict[str, Any], key: str) -> bool:
    flag = value.get(key, False)
    if not isinstance(flag, bool):
        out.add(None, f"settings.{key} must be true or false.")
        return False
    return flag


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
    submit_partial = _flag(out, value, "submit_partial")
    date_format = value.get("date_format", "YYYYMMDD")
    if date_format not in DATE_FORMATS:
        out.add(None, f"settings.date_format must be one of {', '.join(DATE_FORMATS)}.")
        date_format = "YYYYMMDD"
    messages = _parse_translations(out, value.get("error_messages"), languages, "error_messages", ANSWER_ERRORS)
    skip_word = value.get("skip_word", DEFAULT_SKIP_WORD)
    if not isinstance(skip_word, str) or not _KEYWORD_RE.match(skip_word):
        out.add(None, "settings.skip_word must be one word of at most 32 characters.")
        skip_word = DEFAULT_SKIP_WORD
    return Settings(
        keyword,
        expire_after,
        tuple(intervals),
        submit_partial,
        date_format,
        messages,
        skip_word=skip_word,
        progress=_flag(out, value, "progress"),
        prefill=_flag(out, value, "prefill"),
        prompts=_parse_translations(out, value.get("prompts"), languages, "prompts", PROMPTS),
    )


def _parse_columns(out: _Collector, qname: str, name: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and _COLUMN_RE.match(k) and isinstance(v, str) for k, v in value.items()
    ):
        out.add(qname, f"The columns of choice '{name}' must map column names (letters, digits, '_') to text.")
        return {}
    return dict(value)


def _parse_choices(
    out: _Collector,
    qname: str,
    value: object,
    languages: tuple[str, ...],
    default: str,
    filtered: bool,
    *,
    spaces: bool = False,
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
        # select_multiple (and rank) answers are space-separated names, so their names cannot contain spaces;
        # a select_one's answer is one name, which may (XLSForm allows it: `Cash crop` as a value)
        if not isinstance(name, str) or not name.strip() or (not spaces and any(c.isspace() for c in name)):
            out.add(qname, f"Choice {i} needs a name{'' if spaces else ' without spaces'}.")
            continue
        label = _texts(out, qname, raw.get("label"), f"The label of choice '{name}'", languages, default)
        choices.append(Choice(name, label, _parse_columns(out, qname, name, raw.get("columns"))))
    seen: set[str] = set()
    for c in choices:
        if c.name in seen and not filtered:  # (a filtered list may repeat a name across its subsets)
            out.add(qname, f"The choice name '{c.name}' is used twice.")
        seen.add(c.name)
    # Replies that could mean two choices are not refused here: a number is always the choice's place in the
    # list as sent, and a word two choices share (a label in two languages, "Other" twice) is not read as
    # either — the person is asked again and answers with the number (answers._choice_lookup).
    return tuple(choices)


def _check_expression(
    out: _Collector,
    q: dict[str, Any],
    key: str,
    earlier: list[str],
    all_names: dict[str, str],
    *,
    columns: set[str] | None = None,
    anywhere: bool = False,
) -> Compiled | None:
    """References are checked here, with the survey's order in mind, for sentences more useful than
    'unknown'; everything else is left to the compiler. `anywhere`: the expression is evaluated once every
    answer is in (an entity's), so it may refer to any question."""
    qname = str(q.get("name")) if "name" in q else None
    expr = q.get(key)
    if expr is None:
        return None
    if not isinstance(expr, str) or not expr.strip():
        out.add(qname, f"{key} must be a non-empty expression.")
        return None
    ok = True
    for ref in find_references(expr):
        if ref == qname and key == "relevant" and anywhere:
            continue  # (a group's relevant reading a question inside it: evaluated before it has a value)
        if ref == qname:
            hint = " Use '.' for the answer being checked." if key == "constraint" else ""
            out.add(qname, f"{key} '{expr}' refers to the question itself (${{{ref}}}).{hint}")
        elif ref not in all_names:
            out.add(qname, f"{key} '{expr}' refers to ${{{ref}}}, but there is no question named '{ref}'.")
        elif ref not in earlier and not anywhere:
            out.add(qname, f"{key} '{expr}' refers to ${{{ref}}}, which comes later; only earlier answers are known.")
        elif all_names[ref] == "note":
            out.add(qname, f"{key} '{expr}' refers to ${{{ref}}}, which is a note and has no answer.")
        else:
            continue
        ok = False
    if not ok:
        return None
    known = set(all_names) if anywhere else set(earlier)
    try:
        if columns is not None:
            return compile_choice_filter(expr, known, columns)
        return compile_expression(expr, known, allow_dot=(key == "constraint"))
    except ExpressionError as err:
        out.add(qname, f"{key}: {err}")
        return None


def _bool_or_expression(
    out: _Collector, raw: dict[str, Any], key: str, earlier: list[str], all_names: dict[str, str]
) -> tuple[bool, str | None, Compiled | None]:
    """`required` and `read_only`: true/false, or an expression evaluated when the question is asked."""
    value = raw.get(key, False)
    if isinstance(value, bool):
        return value, None, None
    if isinstance(value, str) and value.strip():
        return False, value, _check_expression(out, raw, key, earlier, all_names)
    out.add(str(raw.get("name")), f"{key} must be true, false or an expression.")
    return False, None, None


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
    computed = qtype in COMPUTED_TYPES
    # what is computed is never sent: its label (kept from an XLSForm, for the pages) may be left out
    label = _texts(out, qname, raw.get("label", {}), "The label", languages, default, required=not computed)
    hint = (  # a hint is said in the session's language only: it may be missing in the default one
        _texts(out, qname, raw["hint"], "The hint", languages, default, required=False) if raw.get("hint") else {}
    )
    choices: tuple[Choice, ...] = ()
    compiled_filter = None
    if qtype in SELECT_TYPES:
        if raw.get("choice_filter") is not None:
            columns = {
                "name",
                *(k for c in raw.get("choices") or [] if isinstance(c, dict) for k in c.get("columns") or {}),
            }
            compiled_filter = _check_expression(out, raw, "choice_filter", earlier, all_names, columns=columns)
        choices = _parse_choices(
            out,
            qname,
            raw.get("choices"),
            languages,
            default,
            raw.get("choice_filter") is not None,
            spaces=qtype == "select_one",
        )
    else:
        if "choices" in raw:
            out.add(qname, f"Only select questions have choices, not {qtype} questions.")
        if raw.get("choice_filter") is not None:
            out.add(qname, f"Only select questions have a choice_filter, not {qtype} questions.")
    required, required_if, compiled_required = _bool_or_expression(out, raw, "required", earlier, all_names)
    read_only, read_only_if, compiled_read_only = _bool_or_expression(out, raw, "read_only", earlier, all_names)
    if qtype == "note" or computed:
        # A note is sent and a computed value is never asked: answer-related keys would be meaningless.
        what = "A note has no answer" if qtype == "note" else f"A {qtype} question is not asked"
        keys = ("constraint", "save_to") if qtype == "note" else ("constraint", "required_message")
        for key in (*keys, "read_only"):
            if raw.get(key) not in (None, False):
                out.add(qname, f"{what}, so it cannot have {key}.")
        if required or required_if:
            out.add(qname, f"{what}, so it cannot be required.")
    constraint = _check_expression(out, raw, "constraint", earlier, all_names) if qtype != "note" else None
    # a relevant may read a later question, as ODK allows: it is evaluated with that question still empty when
    # the survey reaches it, and checked again as the answers arrive (flow.recalculate)
    relevant = _check_expression(out, raw, "relevant", earlier, all_names, anywhere=True)
    message: dict[str, str] = {}
    if raw.get("constraint_message") is not None:
        if raw.get("constraint") is None:
            out.add(qname, "constraint_message is given but there is no constraint.")
        message = _texts(out, qname, raw["constraint_message"], "The constraint_message", languages, default)
    required_message: dict[str, str] = {}
    if raw.get("required_message") is not None:
        required_message = _texts(out, qname, raw["required_message"], "The required_message", languages, default)
    default_value = raw.get("default")
    if default_value is not None and (not isinstance(default_value, str) or qtype == "note"):
        out.add(qname, "default must be text (the answer a skipped question takes)." if qtype != "note" else
                "A note has no answer, so it cannot have a default.")  # fmt: skip
        default_value = None
    # like a relevant, a dynamic default may read a later question (empty when the survey reaches it)
    compiled_default = _check_expression(out, raw, "default_expression", earlier, all_names, anywhere=True)
    calculation = None
    if qtype == "calculate":
        if raw.get("calculation") is None:
            out.add(qname, "A calculate question needs a calculation.")
        # a calculation may read a later question, as in XForms: it is evaluated again as the answers arrive
        calculation = _check_expression(out, raw, "calculation", earlier, all_names, anywhere=True)
    elif raw.get("calculation") is not None:
        out.add(qname, f"Only calculate questions have a calculation, not {qtype} questions.")
    metadata, prop = raw.get("metadata"), raw.get("property")
    if qtype == "metadata":
        if metadata not in METADATA:
            out.add(qname, f"metadata must be one of {', '.join(METADATA)}.")
        if (metadata == "case_property") != (prop is not None):
            out.add(qname, "property names the case property of metadata 'case_property' (and only of it).")
        elif prop is not None and (not isinstance(prop, str) or not _PROPERTY_RE.match(prop)):
            out.add(qname, f"property '{prop}' is not a valid case property name.")
    elif metadata is not None or prop is not None:
        out.add(qname, f"Only metadata questions have metadata and property, not {qtype} questions.")
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
        hint=hint,
        required_if=required_if,
        required_message=required_message,
        read_only=read_only,
        read_only_if=read_only_if,
        choice_filter=raw.get("choice_filter") if qtype in SELECT_TYPES else None,
        default=default_value,
        default_expression=raw.get("default_expression"),
        calculation=raw.get("calculation") if qtype == "calculate" else None,
        metadata=metadata if qtype == "metadata" else None,
        case_property=prop if qtype == "metadata" else None,
        compiled_constraint=constraint,
        compiled_relevant=relevant,
        compiled_required=compiled_required,
        compiled_read_only=compiled_read_only,
        compiled_filter=compiled_filter,
        compiled_default=compiled_default,
        compiled_calculation=calculation,
    )


def _parse_entity(out: _Collector, value: object, all_names: dict[str, str]) -> Entity | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        out.add(None, "entity must be an object.")
        return None
    _unknown_keys(out, None, value, _ENTITY_KEYS, "entity")
    list_name, action = value.get("list_name"), value.get("action", "update")
    if not isinstance(list_name, str) or not _PROPERTY_RE.match(list_name):
        out.add(None, "entity.list_name must be a case type (letters, digits, '_' and '-').")
    if action not in ("update", "create"):
        out.add(None, "entity.action must be 'update' (the case the survey was sent to) or 'create' (a new case).")
    if action == "update" and value.get("create_if") is not None:
        out.add(None, "entity.create_if is for action 'create'.")
    if action == "create" and value.get("update_if") is not None:
        out.add(None, "entity.update_if is for action 'update'.")
    parent = value.get("parent")
    if parent not in (None, "sender") or (parent is not None and action != "create"):
        out.add(None, "entity.parent can only be 'sender' (the new case is a child of the case answering).")
    compiled: dict[str, Compiled | None] = {}
    for key in ("label", "create_if", "update_if"):
        compiled[key] = _check_expression(out, {f"entity.{key}": value.get(key)}, f"entity.{key}", [], all_names,
                                          anywhere=True)  # fmt: skip
    return Entity(
        list_name=str(list_name),
        action=str(action),
        label=value.get("label"),
        create_if=value.get("create_if"),
        update_if=value.get("update_if"),
        parent=parent,
        compiled_label=compiled["label"],
        compiled_create_if=compiled["create_if"],
        compiled_update_if=compiled["update_if"],
    )


def _parse_tables(out: _Collector, value: object) -> dict[str, tuple[dict[str, str], ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(name, str)
        and _COLUMN_RE.match(name)
        and isinstance(rows, list)
        and all(
            isinstance(r, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in r.items()) for r in rows
        )
        for name, rows in value.items()
    ):
        out.add(None, "tables must map table names to lists of rows ({column: text}).")
        return {}
    if sum(len(rows) for rows in value.values()) > MAX_CHOICES:
        out.add(None, f"tables hold more than {MAX_CHOICES:,} rows in all.")
        return {}
    return {name: tuple(dict(r) for r in rows) for name, rows in value.items()}


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
    entity = _parse_entity(out, data.get("entity"), all_names)
    tables = _parse_tables(out, data.get("tables"))
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
        entity=entity,
        tables=tables,
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
    if survey.settings.skip_word != DEFAULT_SKIP_WORD:
        data["settings"]["skip_word"] = survey.settings.skip_word
    for flag in ("progress", "prefill"):
        if getattr(survey.settings, flag):
            data["settings"][flag] = True
    if survey.settings.prompts:
        data["settings"]["prompts"] = {k: dict(v) for k, v in survey.settings.prompts.items()}
    if survey.entity is not None:
        e = survey.entity
        entity: dict[str, Any] = {"list_name": e.list_name, "action": e.action}
        for key in ("label", "create_if", "update_if", "parent"):
            if getattr(e, key) is not None:
                entity[key] = getattr(e, key)
        data["entity"] = entity
    if survey.tables:
        data["tables"] = {name: [dict(r) for r in rows] for name, rows in survey.tables.items()}
    data["questions"] = [_question_dict(q) for q in survey.questions]
    return data


def _question_dict(q: Question) -> dict[str, Any]:
    item: dict[str, Any] = {"name": q.name, "type": q.type}
    if q.label or not q.computed:
        item["label"] = dict(q.label)
    if q.hint:
        item["hint"] = dict(q.hint)
    if q.type in SELECT_TYPES:
        item["choices"] = [
            {"name": c.name, "label": dict(c.label), **({"columns": dict(c.columns)} if c.columns else {})}
            for c in q.choices
        ]
    if q.choice_filter is not None:
        item["choice_filter"] = q.choice_filter
    if q.required or q.required_if:
        item["required"] = q.required_if or True
    if q.required_message:
        item["required_message"] = dict(q.required_message)
    if q.read_only or q.read_only_if:
        item["read_only"] = q.read_only_if or True
    if q.constraint is not None:
        item["constraint"] = q.constraint
    if q.constraint_message:
        item["constraint_message"] = dict(q.constraint_message)
    if q.relevant is not None:
        item["relevant"] = q.relevant
    for key, attr in (
        ("default", "default"), ("default_expression", "default_expression"), ("calculation", "calculation"),
        ("metadata", "metadata"), ("property", "case_property"), ("save_to", "save_to"),
    ):  # fmt: skip
        if getattr(q, attr) is not None:
            item[key] = getattr(q, attr)
    return item
