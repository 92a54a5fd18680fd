"""How a survey moves: what is computed as the answers arrive, what the next message says, and where the
answers go at the end. Pure functions over a parsed survey, the answers so far and the session's `Env`;
`engine.py` holds the sessions and calls these.

* **The walk** (`walk`): from a position, in document order, each question whose `relevant` fails is
  skipped (and loses its answer); a `calculate` is evaluated, a `hidden` field takes its default, a
  `metadata` field is filled from the session (times in the contact's zone, the number, the case); a
  note, and a question that is read-only now, are said; the first question that waits for a reply ends
  the walk. What a survey reads comes before it, so a value computed when the walk passes it is final —
  except a `calculate` that reads a later question (XForms allows it): the calculates already passed that
  do are evaluated again, in document order, at each step and at the end, as the answers arrive.
* **A `relevant` that reads a later question** (a forward reference) is evaluated when the survey reaches
  its question, with the later question still empty — what ODK Collect shows at that point. It is checked
  again with the calculates, at each step and at the end: a question passed since whose `relevant` no
  longer holds loses its answer (ODK leaves a non-relevant question out of the submission), so what it
  would have saved is not saved. A question skipped then is not asked later: an SMS survey does not go back.
* **A question as sent** (`question_text`): progress (`[12/340]`, with settings.progress), the label with
  its `${q}` references rendered (a choice by its label in the session's language), the choices its
  `choice_filter` keeps, numbered afresh, the acknowledgement asked for, the hint, and the value a skip
  keeps (`Reply #SKIP to keep 2026-03-04`; `1` too for a date or a time, where it cannot be an answer).
* **A skip** (the survey's `skip_word`, else the project's survey skip word, `#SKIP` by default) takes
  the question's offered value: its `default_expression`, else the case's current value of its `save_to`
  (settings.prefill), else its `default`; with none, a skip is a blank reply (refused when the question is required).
* **The end** (`outcome`): `end` and the instance id filled in, then the `save_to` answers for the case
  the survey was sent to (and its new name from the entity's `label`), or — a registration,
  `entity.action` 'create' whose `create_if` holds — a new case of type `list_name`, named by the label,
  a child of the sender's case with `parent` 'sender'.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from casemsg.surveys.definition import DEFAULT_PROMPTS, DEFAULT_SKIP_WORD, SELECT_TYPES, Question
from casemsg.surveys.definition import Survey as Definition
from casemsg.surveys.expressions import (
    Compiled,
    ExpressionError,
    choice_labels,
    evaluate_bool,
    evaluate_value,
    filter_choices,
    pulldata_lookup,
)

__all__ = [
    "Env",
    "NewCase",
    "Outcome",
    "Plan",
    "Step",
    "choices_for",
    "holds",
    "is_required",
    "offered",
    "outcome",
    "plan",
    "question_text",
    "render",
    "walk",
]

log = logging.getLogger(__name__)

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_EMAIL_PROPERTY = "commcare_email_address"


@dataclass(frozen=True)
class Env:
    """What a survey reads besides its answers: the contact's day and time, the session, the case."""

    today: dt.date
    now: dt.datetime  # aware, in the contact's time zone
    zone: str
    language: str
    case_id: str = ""
    case_name: str = ""
    case_properties: Mapping[str, str] = field(default_factory=dict)
    phone_number: str = ""
    gateway: str = ""
    started_on: dt.datetime | None = None  # aware, in the contact's time zone
    session_id: int | None = None
    # the survey and its plan, for choice-name() and pulldata() (`lookups`); not needed by the rest
    lookups: tuple[Definition, Plan] | None = field(default=None, compare=False, repr=False)
    # {language: {prompt: text}}: the survey's own prompts over the project's texts (surveys.texts.prompts)
    prompts: Mapping[str, Mapping[str, str]] | None = field(default=None, compare=False, repr=False)
    skip_word: str = ""  # the project's (Settings); a survey's own settings.skip_word wins (flow.skip_word)


@dataclass(frozen=True)
class Plan:
    """What a survey's messages need, computed once per version: each asked question's position among
    them (progress), and every choice's labels (`${q}` and choice-name() say a choice by its label)."""

    positions: dict[str, int]
    total: int
    labels: dict[str, dict[str, dict[str, str]]]  # question -> choice -> {language: label}
    types: dict[str, str]
    late: tuple[int, ...] = ()  # positions of the calculates that read a later question (evaluated again)
    late_relevant: tuple[int, ...] = ()  # positions of the questions whose relevant reads a later one
    tables: Mapping[str, tuple[dict[str, str], ...]] = field(default_factory=dict)
    indexes: dict[tuple[str, str], dict[str, dict[str, str]]] = field(default_factory=dict)  # pulldata's, lazily

    def pulldata(self, table: str, column: str, key_column: str, key: str) -> str:
        index = self.indexes.get((table, key_column))
        if index is None:
            index = {}
            for row in self.tables.get(table, ()):
                index.setdefault(row.get(key_column, ""), row)
            self.indexes[(table, key_column)] = index
        return index.get(key, {}).get(column, "")


def plan(survey: Definition) -> Plan:
    asked = [q.name for q in survey.questions if q.asked]
    position = {q.name: i for i, q in enumerate(survey.questions)}
    late = tuple(
        i
        for i, q in enumerate(survey.questions)
        if q.compiled_calculation is not None
        and any(position.get(ref, -1) >= i for ref in q.compiled_calculation.references)
    )
    late_relevant = tuple(
        i
        for i, q in enumerate(survey.questions)
        if q.compiled_relevant is not None and any(position.get(ref, -1) >= i for ref in q.compiled_relevant.references)
    )
    return Plan(
        late_relevant=late_relevant,
        positions={name: i for i, name in enumerate(asked, start=1)},
        total=len(asked),
        labels={q.name: {c.name: c.label for c in q.choices} for q in survey.questions if q.type in SELECT_TYPES},
        types={q.name: q.type for q in survey.questions},
        late=late,
        tables=survey.tables,
    )


def _text(texts: Mapping[str, str], language: str, default: str) -> str:
    return texts.get(language) or texts.get(default) or next(iter(texts.values()), "")


def _prompt(survey: Definition, name: str, env: Env) -> str:
    own = env.prompts if env.prompts is not None else survey.settings.prompts
    for language in (env.language, survey.default_language):
        if text := own.get(language, {}).get(name):
            return text
    return DEFAULT_PROMPTS[name]


def with_lookups(
    env: Env, survey: Definition, the_plan: Plan, prompts: Mapping[str, Mapping[str, str]] | None = None
) -> Env:
    """The env with what choice-name() and pulldata() read (the survey's choices and attached tables), and
    the prompts to say (the survey's own over the project's texts; without them, the survey's own)."""
    return replace(env, lookups=(survey, the_plan), prompts=prompts)


@contextmanager
def _lookups(env: Env) -> Iterator[None]:
    if env.lookups is None:
        yield
        return
    survey, the_plan = env.lookups

    def label(question: str, value: str) -> str:
        texts = the_plan.labels.get(question, {}).get(value)
        return _text(texts, env.language, survey.default_language) if texts else value

    token = choice_labels.set(label)
    tables = pulldata_lookup.set(the_plan.pulldata)
    try:
        yield
    finally:
        choice_labels.reset(token)
        pulldata_lookup.reset(tables)


def holds(compiled: Compiled, answers: Mapping[str, str], current: str | None, env: Env, default: bool) -> bool:
    try:
        with _lookups(env):
            return evaluate_bool(compiled, answers, current, env.today, now=env.now)
    except ExpressionError:
        # (a regex built at run time, say): never trap the person in a question they cannot pass
        log.warning("survey expression %r failed; taken as %s", compiled.source, default, exc_info=True)
        return default


def _value(compiled: Compiled, answers: Mapping[str, str], env: Env) -> str:
    try:
        with _lookups(env):
            return evaluate_value(compiled, answers, env.today, now=env.now)
    except ExpressionError:
        log.warning("survey expression %r failed; its value is empty", compiled.source, exc_info=True)
        return ""


def _stamp(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="milliseconds") if moment is not None else ""


def _metadata(q: Question, env: Env) -> str:
    kind = q.metadata
    values = {
        "start": lambda: _stamp(env.started_on or env.now),
        "end": lambda: _stamp(env.now),
        "today": lambda: env.today.isoformat(),
        "deviceid": lambda: f"casemsg:{env.gateway}" if env.gateway else "casemsg",
        "phonenumber": lambda: env.phone_number,
        "username": lambda: env.case_name,
        "email": lambda: str(env.case_properties.get(_EMAIL_PROPERTY, "")),
        "instanceid": lambda: (
            f"uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'casemsg:session:{env.session_id}')}"
            if env.session_id is not None
            else ""
        ),
        "case_id": lambda: env.case_id,
        "case_name": lambda: env.case_name,
        "case_property": lambda: str(env.case_properties.get(q.case_property or "", "")),
    }
    compute = values.get(kind or "")
    return compute() if compute is not None else ""  # simserial, subscriberid, audit: nothing to say by SMS


def computed_value(survey: Definition, the_plan: Plan, q: Question, answers: Mapping[str, str], env: Env) -> str:
    if q.type == "calculate" and q.compiled_calculation is not None:
        return _value(q.compiled_calculation, answers, env)
    if q.type == "metadata":
        return _metadata(q, env)
    if q.compiled_default is not None:  # a hidden field with a dynamic default
        return _value(q.compiled_default, answers, env)
    return q.default or ""


def display(survey: Definition, the_plan: Plan, name: str, value: str, language: str) -> str:
    """An answer as a person reads it: a choice by its label, several joined by commas."""
    labels = the_plan.labels.get(name)
    if not labels or not value:
        return value
    names = value.split() if the_plan.types.get(name) in ("select_multiple", "rank") else [value]
    return ", ".join(_text(labels[n], language, survey.default_language) if n in labels else n for n in names)


def render(
    survey: Definition, the_plan: Plan, texts: Mapping[str, str], answers: Mapping[str, str], language: str
) -> str:
    """A label (note, hint) in the language, its `${q}` references replaced by the answers so far."""
    text = _text(texts, language, survey.default_language)
    if "${" not in text:
        return text
    return _REFERENCE.sub(
        lambda m: display(survey, the_plan, m[1].strip(), answers.get(m[1].strip(), ""), language), text
    )


def is_read_only(q: Question, answers: Mapping[str, str], env: Env) -> bool:
    if q.compiled_read_only is not None:
        return holds(q.compiled_read_only, answers, None, env, False)
    return q.read_only


def is_required(q: Question, answers: Mapping[str, str], env: Env) -> bool:
    if q.compiled_required is not None:
        return holds(q.compiled_required, answers, None, env, False)
    return q.required


def choices_for(q: Question, answers: Mapping[str, str], env: Env) -> Question:
    """The question as asked now: its choices those its choice_filter keeps, and `required` evaluated."""
    required = is_required(q, answers, env)
    if q.compiled_filter is None:
        return q if required == q.required else replace(q, required=required)
    pairs = _plain_filter(q.choice_filter or "")
    if pairs is not None:  # `county = ${county}` (and-ed): compared here, not built into a tree for XPath
        wanted = [(column, str(answers.get(ref, ""))) for column, ref in pairs]
        kept = [
            i
            for i, c in enumerate(q.choices)
            if all((c.name if column == "name" else c.columns.get(column, "")) == value for column, value in wanted)
        ]
        return replace(q, choices=tuple(q.choices[i] for i in kept), required=required)
    try:
        with _lookups(env):
            kept = filter_choices(q.compiled_filter, answers, [{"name": c.name, **c.columns} for c in q.choices],
                              env.today, now=env.now)  # fmt: skip
    except ExpressionError:
        log.warning("choice filter %r failed; every choice offered", q.choice_filter, exc_info=True)
        kept = list(range(len(q.choices)))
    return replace(q, choices=tuple(q.choices[i] for i in kept), required=required)


_FILTER_TERM = re.compile(r"^\s*(?:([A-Za-z_][\w-]*)\s*=\s*\$\{([^}]+)\}|\$\{([^}]+)\}\s*=\s*([A-Za-z_][\w-]*))\s*$")


@functools.lru_cache(maxsize=1024)
def _plain_filter(expr: str) -> tuple[tuple[str, str], ...] | None:
    """A cascading select's filter as (column, question) pairs when it is only `column = ${q}` terms joined
    by `and` — a string comparison, as XPath's = between a node and a string is — else None (XPath).
    Cascading lists run to thousands of choices: this keeps a reply's cost independent of their number."""
    pairs = []
    for term in re.split(r"\s+and\s+", expr.strip()):
        m = _FILTER_TERM.match(term)
        if m is None:
            return None
        pairs.append((m[1], m[2]) if m[1] else (m[4], m[3]))
    return tuple(pairs) if pairs else None


@dataclass
class Step:
    """What a walk found: the texts to say first (notes, read-only questions), and the question that waits
    for a reply (None: the end of the survey)."""

    notes: list[str]
    question: Question | None


def walk(survey: Definition, the_plan: Plan, answers: dict[str, str], start: int, env: Env) -> Step:
    """From position `start` (see the module docstring); computed values are written into `answers`, and
    skipped questions lose theirs."""
    notes: list[str] = []
    recalculate(survey, the_plan, answers, start, env)
    for q in survey.questions[start:]:
        if q.compiled_relevant is not None and not holds(q.compiled_relevant, answers, None, env, True):
            answers.pop(q.name, None)
            continue
        if q.computed:
            answers[q.name] = computed_value(survey, the_plan, q, answers, env)
            continue
        if q.type == "note":
            notes.append(render(survey, the_plan, q.label, answers, env.language))
            continue
        if is_read_only(q, answers, env):
            value = offered(survey, q, answers, env) or ""
            answers[q.name] = value
            label = render(survey, the_plan, q.label, answers, env.language)
            notes.append(f"{label} {display(survey, the_plan, q.name, value, env.language)}".strip())
            continue
        asked = choices_for(q, answers, env)
        if asked.type in SELECT_TYPES and not asked.choices:
            answers[q.name] = ""  # a filter that leaves nothing to choose: nothing to ask
            continue
        return Step(notes, asked)
    return Step(notes, None)


def offered(survey: Definition, q: Question, answers: Mapping[str, str], env: Env) -> str | None:
    """The value a skip gives this question (see the module docstring), or None."""
    if q.compiled_default is not None:
        value = _value(q.compiled_default, answers, env)
        if value != "":
            return value
    if survey.settings.prefill and q.save_to and str(env.case_properties.get(q.save_to, "")) != "":
        return str(env.case_properties[q.save_to])
    return q.default if q.default not in (None, "") else None


def skip_word(survey: Definition, env: Env | None = None) -> str:
    """The reply that skips a question: the survey's own `skip_word`, else the project's (Settings), else
    #SKIP."""
    own = survey.settings.skip_word
    if own and own != DEFAULT_SKIP_WORD:
        return own
    return (env.skip_word if env is not None else "") or DEFAULT_SKIP_WORD


def _keep_word(survey: Definition, q: Question, env: Env | None = None) -> str:
    if q.type in ("date", "time", "datetime"):
        return "1"  # never an answer to these, so the shortest way to keep the value
    return skip_word(survey, env)


def is_skip_word(survey: Definition, reply: str, env: Env | None = None) -> bool:
    return reply.strip().upper() == skip_word(survey, env).upper()


def is_skip(survey: Definition, q: Question, reply: str, env: Env | None = None) -> bool:
    word = reply.strip().upper()
    return word == skip_word(survey, env).upper() or (word == "1" and q.type in ("date", "time", "datetime"))


def question_text(survey: Definition, the_plan: Plan, q: Question, answers: Mapping[str, str], env: Env) -> str:
    """The question as sent (see the module docstring). `q` as `walk` or `choices_for` gave it (filtered)."""
    language = env.language
    parts: list[str] = []
    if survey.settings.progress and q.name in the_plan.positions:
        parts.append(_prompt(survey, "progress", env).format(n=the_plan.positions[q.name], total=the_plan.total))
    parts.append(render(survey, the_plan, q.label, answers, language))
    if q.type in SELECT_TYPES:
        parts.extend(f"{i} {render(survey, the_plan, c.label, answers, language)}" for i, c in enumerate(q.choices, 1))
    elif q.type == "acknowledge":
        parts.append(_prompt(survey, "acknowledge", env))
    if q.hint.get(language):  # (a hint is said in the session's language only: no other language's instead)
        parts.append(render(survey, the_plan, {language: q.hint[language]}, answers, language))
    value = offered(survey, q, answers, env)
    if value is not None:
        shown = display(survey, the_plan, q.name, value, language)
        parts.append(_prompt(survey, "keep", env).format(word=_keep_word(survey, q, env), value=shown))
    return " ".join(p for p in parts if p.strip())


def required_message(survey: Definition, the_plan: Plan, q: Question, answers: Mapping[str, str], language: str) -> str:
    return render(survey, the_plan, q.required_message, answers, language) if q.required_message else ""


def constraint_message(
    survey: Definition, the_plan: Plan, q: Question, answers: Mapping[str, str], language: str
) -> str:
    return render(survey, the_plan, q.constraint_message, answers, language) if q.constraint_message else ""


@dataclass(frozen=True)
class NewCase:
    case_type: str
    name: str
    properties: dict[str, str]
    child_of_sender: bool


@dataclass(frozen=True)
class Outcome:
    """What the end of a survey writes: properties (and a new name) of the case it was sent to, and/or a
    new case."""

    properties: dict[str, str]
    name: str | None = None
    new_case: NewCase | None = None


def recalculate(survey: Definition, the_plan: Plan, answers: dict[str, str], before: int, env: Env) -> None:
    """Evaluate again the calculates before position `before` that read a later question (and were reached),
    then the relevant of the questions before it that read a later one: those no longer relevant lose their
    answer."""
    for i in the_plan.late:
        q = survey.questions[i]
        if i < before and q.name in answers:
            answers[q.name] = computed_value(survey, the_plan, q, answers, env)
    for i in the_plan.late_relevant:
        q = survey.questions[i]
        if i < before and q.name in answers and q.compiled_relevant is not None:
            if not holds(q.compiled_relevant, answers, None, env, True):
                answers.pop(q.name)


def finish(survey: Definition, answers: dict[str, str], env: Env) -> None:
    """The values only the end knows: `end` and the instance id (and whatever is computed from them)."""
    for q in survey.questions:
        if q.type == "metadata" and q.metadata in ("end", "instanceid") and q.name in answers:
            answers[q.name] = _metadata(q, env)


def outcome(survey: Definition, the_plan: Plan, answers: Mapping[str, str], env: Env) -> Outcome:
    properties = {q.save_to: answers[q.name] for q in survey.questions if q.save_to and answers.get(q.name, "") != ""}
    entity = survey.entity
    if entity is None:
        return Outcome(properties)
    label = _value(entity.compiled_label, answers, env).strip() if entity.compiled_label is not None else ""
    if entity.action == "create":
        if entity.compiled_create_if is not None and not holds(entity.compiled_create_if, answers, None, env, False):
            return Outcome({})
        name = label or entity.list_name
        return Outcome({}, new_case=NewCase(entity.list_name, name, properties, entity.parent == "sender"))
    if entity.compiled_update_if is not None and not holds(entity.compiled_update_if, answers, None, env, False):
        return Outcome({})
    return Outcome(properties, name=label or None)
