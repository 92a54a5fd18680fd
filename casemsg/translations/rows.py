"""The rows of a translations file, one kind at a time: what each row is (its `type`, `id`, `field`), the
reference text a translator reads (`source`), and its text in each language.

- `text`: id the key; field empty; source casemsg's English text.
- `keyword`: id the keyword's id; field `reply`.
- `broadcast`, `alert`: id its id; field `text`, or `subject` (an email); source the untranslated text.
- `survey`: id its id; field `label Q`, `hint Q`, `constraint_message Q`, `required_message Q` (Q a question's
  name), `choice Q C` (C a choice's name), `error_messages E`, `prompts P`; source the survey's default
  language's text.

Writing a kind back (`apply_*`) goes through its area's write path (consent.texts.update,
inbound.services.update_keyword, scheduling.services.update_broadcast / update_alert, surveys.services
.update_survey), so a translation is checked exactly as the API would check it; a refusal is reported for
the rows it came from.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from casemsg.consent import texts as system_texts
from casemsg.core.errors import InputError
from casemsg.inbound import services as keyword_services
from casemsg.inbound.models import Keyword
from casemsg.inbound.services import KeywordFields
from casemsg.projects.models import Project
from casemsg.scheduling import queries as scheduling_queries
from casemsg.scheduling import services as scheduling_services
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.surveys import services as survey_services
from casemsg.surveys.models import Survey

TYPES: Final = ("text", "keyword", "broadcast", "alert", "survey")
QUESTION_TEXTS: Final = ("label", "hint", "constraint_message", "required_message")
SETTINGS_TEXTS: Final = ("error_messages", "prompts")  # {language: {name: text}}


@dataclass
class Row:
    type: str
    id: str
    name: str  # what a person recognises it by (a title, a keyword, a broadcast's name); not read back
    field: str
    source: str  # the reference text; not read back
    texts: dict[str, str] = dataclasses.field(default_factory=dict)  # {language: text}


def languages(project: Project) -> list[str]:
    """The language columns: the project's languages, English last if it is not one of them."""
    return system_texts.languages(project)


# --- listing ---------------------------------------------------------------------------------------
def all_rows(project: Project) -> Iterator[Row]:
    yield from text_rows(project)
    yield from keyword_rows(project)
    for b in scheduling_queries.broadcasts(project).filter(status__in=[Broadcast.ACTIVE, Broadcast.PAUSED]):
        yield from content_rows("broadcast", str(b.pk), b.name, b.content)
    for a in scheduling_queries.alerts(project):
        yield from content_rows("alert", str(a.pk), a.name, a.content)
    for s in survey_services.list_surveys(project):
        if s.current_version is not None:
            yield from survey_rows(s, s.current_version.definition)


def text_rows(project: Project) -> Iterator[Row]:
    own = system_texts.own(project)
    for t in system_texts.catalogue():
        yield Row("text", t.key, t.title, "", t.default, dict(own.get(t.key, {})))


def keyword_rows(project: Project) -> Iterator[Row]:
    for k in keyword_services.list_keywords(project):
        yield Row("keyword", str(k.pk), k.keyword, "reply", "", dict(k.reply or {}))


def content_rows(kind: str, pk: str, name: str, content: Mapping[str, Any]) -> Iterator[Row]:
    """An SMS's or an email's text, and an email's subject; a survey content has no text of its own."""
    channel = content.get("channel", "sms")
    if channel == "survey":
        return
    yield Row(kind, pk, name, "text", str(content.get("text") or ""), dict(content.get("translations") or {}))
    if channel == "email":
        subject = content.get("subject")
        if isinstance(subject, dict):
            by_lang = {k: v for k, v in subject.items() if k != "*"}
            yield Row(kind, pk, name, "subject", str(subject.get("*", "")), by_lang)
        else:
            yield Row(kind, pk, name, "subject", str(subject or ""), {})


def survey_rows(survey: Survey, definition: Mapping[str, Any]) -> Iterator[Row]:
    default = definition.get("default_language", "")
    pk = str(survey.pk)
    for q in definition.get("questions", []):
        for key in QUESTION_TEXTS:
            texts = q.get(key)
            if isinstance(texts, dict):
                yield Row("survey", pk, survey.name, f"{key} {q['name']}", texts.get(default, ""), dict(texts))
        for c in q.get("choices") or []:
            label = c.get("label") or {}
            yield Row("survey", pk, survey.name, f"choice {q['name']} {c['name']}", label.get(default, ""), dict(label))
    settings = definition.get("settings") or {}
    for key in SETTINGS_TEXTS:
        by_lang = settings.get(key) or {}
        names = dict.fromkeys(name for texts in by_lang.values() for name in texts)
        for name in names:
            texts = {lang: t[name] for lang, t in by_lang.items() if name in t}
            yield Row("survey", pk, survey.name, f"{key} {name}", texts.get(default, ""), texts)


# --- writing back ------------------------------------------------------------------------------------
# Each takes the changed rows of one object: [(row number, field, {language: text or None})]; None removes.
Change = tuple[int, str, dict[str, str | None]]


class RowProblem(Exception):
    """A row that names nothing this project has, or a field its object does not have."""

    def __init__(self, row: int, sentence: str):
        super().__init__(sentence)
        self.row, self.sentence = row, sentence


def _merged(current: Mapping[str, str], texts: Mapping[str, str | None]) -> dict[str, str]:
    out = dict(current)
    for lang, text in texts.items():
        if text is None:
            out.pop(lang, None)
        else:
            out[lang] = text
    return out


def apply_texts(project: Project, changes: Mapping[str, Change], *, may_weaken: bool) -> None:
    """{key: change}: the project's own translations (consent.texts.update: its checks and audit)."""
    for key, (number, _field, _texts) in changes.items():
        if key not in {t.key for t in system_texts.catalogue()}:
            raise RowProblem(number, f"'{key}' is not a text casemsg sends.")
    system_texts.update(project, {key: dict(texts) for key, (_n, _f, texts) in changes.items()}, may_weaken=may_weaken)


def keyword(project: Project, pk: str, number: int) -> Keyword:
    try:
        return keyword_services.get_keyword(project, int(pk) if pk.isdigit() else 0)
    except InputError as exc:
        raise RowProblem(number, f"The project has no keyword {pk}.") from exc


def apply_keyword(project: Project, k: Keyword, changes: list[Change]) -> None:
    reply = dict(k.reply or {})
    for number, fld, texts in changes:
        if fld != "reply":
            raise RowProblem(number, f"A keyword's field is reply, not '{fld}'.")
        reply = _merged(reply, texts)
    fields = KeywordFields(
        keyword=k.keyword, action=k.action, description=k.description, reply=reply, params=dict(k.params or {})
    )
    keyword_services.update_keyword(project, k.pk, fields)


def owner(project: Project, kind: str, pk: str, number: int) -> Broadcast | ConditionalAlert:
    found = (
        (scheduling_queries.broadcast if kind == "broadcast" else scheduling_queries.alert)(project, int(pk))
        if pk.isdigit()
        else None
    )
    if found is None:
        raise RowProblem(number, f"The project has no {kind} {pk}.")
    return found


def apply_content(target: Broadcast | ConditionalAlert, changes: list[Change]) -> None:
    content = copy.deepcopy(dict(target.content or {}))
    kind = "broadcast" if isinstance(target, Broadcast) else "alert"
    for number, fld, texts in changes:
        if content.get("channel") == "survey":
            raise RowProblem(number, f"This {kind} starts a survey: translate the survey's rows.")
        if fld == "text":
            content["translations"] = _merged(content.get("translations") or {}, texts)
            if not content["translations"]:
                del content["translations"]
        elif fld == "subject" and content.get("channel") == "email":
            subject = content.get("subject")
            by_lang = dict(subject) if isinstance(subject, dict) else ({"*": subject} if subject else {})
            content["subject"] = _merged(by_lang, texts)
        else:
            raise RowProblem(number, f"A {kind}'s fields are text (and subject for an email), not '{fld}'.")
    if isinstance(target, Broadcast):
        scheduling_services.update_broadcast(target, {"content": content})
    else:
        scheduling_services.update_alert(target, {"content": content})


def survey(project: Project, pk: str, number: int) -> Survey:
    found = survey_services.find_survey(project, pk)
    if found is None or found.current_version is None:
        raise RowProblem(number, f"The project has no survey {pk}.")
    return found


def apply_survey(project: Project, s: Survey, changes: list[Change]) -> None:
    """A new version of the survey with the changed labels (languages it did not have yet added to its
    languages); surveys.services checks it as an import would."""
    assert s.current_version is not None
    data = copy.deepcopy(s.current_version.definition)
    questions = {q["name"]: q for q in data.get("questions", [])}
    added: set[str] = set()
    for number, fld, texts in changes:
        parts = fld.split()
        if len(parts) == 2 and parts[0] in QUESTION_TEXTS and parts[1] in questions:
            q = questions[parts[1]]
            q[parts[0]] = _merged(q.get(parts[0]) or {}, texts)
        elif len(parts) == 3 and parts[0] == "choice" and parts[1] in questions:
            choices = {c["name"]: c for c in questions[parts[1]].get("choices") or []}
            if parts[2] not in choices:
                raise RowProblem(number, f"Question {parts[1]} has no choice '{parts[2]}'.")
            choices[parts[2]]["label"] = _merged(choices[parts[2]].get("label") or {}, texts)
        elif len(parts) == 2 and parts[0] in SETTINGS_TEXTS:
            settings = data.setdefault("settings", {})
            by_lang = settings.setdefault(parts[0], {})
            for lang, text in texts.items():
                if text is None:
                    by_lang.get(lang, {}).pop(parts[1], None)
                else:
                    by_lang.setdefault(lang, {})[parts[1]] = text
            settings[parts[0]] = {lang: t for lang, t in by_lang.items() if t}
        else:
            raise RowProblem(
                number,
                f"'{fld}' names nothing in survey {s.pk}: use 'label QUESTION', 'hint QUESTION', "
                "'choice QUESTION CHOICE', 'error_messages ERROR' (as the export writes them).",
            )
        added |= {lang for lang, text in texts.items() if text}
    data["languages"] = list(dict.fromkeys([*data.get("languages", []), *sorted(added)]))
    survey_services.update_survey(project, s.pk, data)
