"""Project keywords: create, change, delete (the API and the pages call these). The checks common to every
keyword live here; each action's own (its parameters, their rules) live in its module of
`casemsg.inbound.actions`."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from casemsg.consent import words
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.inbound.actions.base import check_reply
from casemsg.inbound.actions.registry import ACTIONS
from casemsg.inbound.models import Keyword
from casemsg.projects.models import Project
from casemsg.surveys import services as survey_services

MAX_LENGTH = 40


@dataclass
class KeywordFields:
    """A keyword as a caller describes it (the API's body, the form's values, before the checks)."""

    keyword: str
    action: str = "reply"
    description: str = ""
    reply: dict[str, str] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)  # the action's parameters (its module's `params`)


def validate(fields: KeywordFields, project: Project) -> tuple[str, dict[str, str]]:
    """Check a keyword; returns the word as stored (upper-case) and the action's parameters as stored."""
    word = fields.keyword.strip().upper()
    if not word or len(word.split()) != 1 or len(word) > MAX_LENGTH:
        raise InputError(errors.VALIDATION_ERROR, f"A keyword is one word of at most {MAX_LENGTH} characters.")
    # the project's own opt-out/opt-in words are handled before keywords, so a keyword could never fire
    reserved = words.opt_out_words(project) | words.opt_in_words(project) | set(words.HELP_WORDS)
    if word in reserved:
        raise InputError(errors.RESERVED_KEYWORD, f"'{word}' is reserved for opt-out, opt-in and help.")
    action = ACTIONS.get(fields.action)
    if action is None:
        raise InputError(errors.VALIDATION_ERROR, f"action must be one of {', '.join(ACTIONS)}.")
    params = action.validate(fields.params, fields.reply, project)
    check_reply(fields.reply)
    return word, params


def find_keyword(project: Project, keyword_id: int) -> Keyword | None:
    """One of the project's keywords; None when the project has no such keyword."""
    return Keyword.objects.filter(project=project, pk=keyword_id).first()


def get_keyword(project: Project, keyword_id: int) -> Keyword:
    k = find_keyword(project, keyword_id)
    if k is None:
        raise InputError(errors.KEYWORD_NOT_FOUND, f"No keyword {keyword_id} in this project.", 404)
    return k


def list_keywords(project: Project) -> list[Keyword]:
    return list(Keyword.objects.filter(project=project).order_by("keyword"))


@dataclass(frozen=True)
class KeywordRow:
    """One line of the Keywords page: a project keyword, or a survey's own keyword (read-only: it is
    changed with its survey)."""

    keyword: str
    action: str
    summary: str  # what its parameters say ("weight_kg = {rest}", "Survey: ANC visit")
    reply: dict[str, str]
    description: str
    keyword_id: int | None = None  # a project keyword
    survey_id: int | None = None  # a survey's keyword: the survey it starts
    shadowed: bool = False  # a survey keyword that a project keyword of the same word takes first


def keyword_rows(project: Project) -> list[KeywordRow]:
    """Every word that starts something for the project, by word: its keywords (with what their parameters
    say) and its surveys' keywords. A few queries, whatever the number of keywords."""
    rows: list[KeywordRow] = []
    keywords = list_keywords(project)
    labels = {
        (a.name, p.name): dict(a.choices(project, p))
        for a in ACTIONS.values()
        for p in a.params
        if p.type == "choice" and any(k.action == a.name for k in keywords)
    }
    for k in keywords:
        action = ACTIONS.get(k.action)
        mine = {name: labels for (act, name), labels in labels.items() if act == k.action}
        summary = action.summary(k.params or {}, mine) if action is not None else ""
        rows.append(KeywordRow(k.keyword, k.action, summary, dict(k.reply or {}), k.description, keyword_id=k.pk))
    taken = {k.keyword for k in keywords}
    for word, survey in survey_services.keyword_surveys(project).items():
        rows.append(
            KeywordRow(
                word,
                "start_survey",
                f"Survey: {survey.name}",
                {},
                "The survey's own keyword (its settings).",
                survey_id=survey.pk,
                shadowed=word in taken,
            )
        )
    return sorted(rows, key=lambda r: (r.keyword, r.survey_id is not None))


def _apply(k: Keyword, fields: KeywordFields, project: Project) -> None:
    word, params = validate(fields, project)
    k.keyword, k.action, k.description, k.reply, k.params = (
        word,
        fields.action,
        fields.description,
        fields.reply,
        params,
    )


def create_keyword(project: Project, fields: KeywordFields) -> Keyword:
    k = Keyword(project=project)
    _apply(k, fields, project)
    _save(k)
    return k


def update_keyword(project: Project, keyword_id: int, fields: KeywordFields) -> Keyword:
    k = get_keyword(project, keyword_id)
    _apply(k, fields, project)
    _save(k)
    return k


def delete_keyword(project: Project, keyword_id: int) -> None:
    get_keyword(project, keyword_id).delete()


def _save(k: Keyword) -> None:
    try:
        with transaction.atomic():
            k.save()
    except IntegrityError as exc:
        raise InputError(errors.KEYWORD_EXISTS, f"The keyword '{k.keyword}' exists in this project.", 409) from exc
