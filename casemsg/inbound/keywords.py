"""Keyword actions: what a project keyword does when the first word of an inbound message matches it.

One table entry per action holds its name, a one-line description, its validation (run when a keyword is
created or changed) and its handler (run by the router). A new action is one new entry in `ACTIONS`: the
API accepts exactly the table's keys and the router looks the handler up there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from casemsg.cases import services as case_services
from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway
from casemsg.inbound.models import Keyword
from casemsg.messaging import render
from casemsg.projects.models import Project
from casemsg.surveys import engine as survey_engine
from casemsg.surveys import services as survey_services
from casemsg.surveys.models import Survey
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)


@dataclass
class KeywordFields:
    """A keyword as a caller describes it (the API's body, before the checks)."""

    keyword: str
    action: str = "reply"
    description: str = ""
    reply: dict[str, str] = field(default_factory=dict)
    property_name: str = ""
    property_value: str = "{rest}"  # "{rest}" stands for the words after the keyword
    survey: str = ""  # start_survey: the survey's id


@dataclass
class KeywordContext:
    """What a handler gets when an inbound message's first word matched its keyword."""

    keyword: Keyword
    project: Project
    contact: Case | MobileWorker | None  # the sender, when known
    rest: str  # the words after the keyword
    send_reply: Callable[[dict[str, str]], None]  # {language: text} → sent in the sender's language
    contacts_changed: bool = False  # a handler sets it when it changed a contact (the router re-reads then)
    gateway: Gateway | None = None  # the gateway the message came in on


@dataclass(frozen=True)
class KeywordAction:
    name: str
    description: str
    validate: Callable[[KeywordFields, Project], None]  # raises InputError
    handle: Callable[[KeywordContext], str]  # returns the outcome, for the message log and tests


def _answered(ctx: KeywordContext) -> str:
    """How every action ends: the keyword's reply, if it has one."""
    if ctx.keyword.reply:
        ctx.send_reply(ctx.keyword.reply)
    return f"keyword:{ctx.keyword.keyword}"


def check_reply(fields: KeywordFields) -> None:
    """Every action's reply is a template: `{case.name}`, `{case.<property>}`, `{recipient.name}`, `{rest}`
    (the words after the keyword). A placeholder of any other form is refused when the keyword is saved,
    rather than failing each reply later."""
    for lang, text in fields.reply.items():
        problem = render.check_template(text, extra=("rest",))
        if problem:
            raise InputError(
                errors.CANNOT_RENDER_MESSAGE, f"The {lang} reply is not a valid template: {problem} (or {{rest}})."
            )


# --- reply ---------------------------------------------------------------------------------------
def _validate_reply(fields: KeywordFields, project: Project) -> None:
    if not any(v.strip() for v in fields.reply.values()):
        raise InputError(errors.VALIDATION_ERROR, 'A reply keyword needs reply text, e.g. {"en": "…"}.')


def _handle_reply(ctx: KeywordContext) -> str:
    return _answered(ctx)


# --- update_case ---------------------------------------------------------------------------------
def _validate_update_case(fields: KeywordFields, project: Project) -> None:
    if not fields.property_name.strip():
        raise InputError(errors.VALIDATION_ERROR, "An update_case keyword needs property_name.")


def _handle_update_case(ctx: KeywordContext) -> str:
    if not isinstance(ctx.contact, Case):
        ctx.send_reply({"en": "We could not find your record; this number is not registered."})
        return "keyword_no_case"
    kw = ctx.keyword
    value = kw.property_value.replace("{rest}", ctx.rest)
    ctx.contacts_changed = True  # e.g. a new contact_phone_number moves the registry
    case_services.update_case(ctx.project, ctx.contact, case_services.CaseChange(properties={kw.property_name: value}))
    return _answered(ctx)


# --- start_survey --------------------------------------------------------------------------------
def _validate_start_survey(fields: KeywordFields, project: Project) -> None:
    if survey_services.find_survey(project, fields.survey) is None:
        raise InputError(
            errors.VALIDATION_ERROR,
            f"A start_survey keyword needs survey: the id of one of the project's surveys, not {fields.survey!r}.",
        )


def start_survey(
    project: Project,
    contact: Case | MobileWorker | None,
    survey: Survey,
    gateway: Gateway | None,
    send_reply: Callable[[dict[str, str]], None],
) -> str:
    """Start `survey` for the sender, through the gateway the message came in on (also for a survey's own
    keyword, settings.keyword). A sender who cannot take it (no case, no name, no two-way number) is told
    nothing more than an unregistered sender would be."""
    if not isinstance(contact, Case):
        send_reply({"en": "We could not find your record; this number is not registered."})
        return "keyword_no_case"
    try:
        survey_engine.start(project, survey, contact, gateway=gateway)
    except InputError as exc:
        log.info("survey %s not started for case %s: %s %s", survey.pk, contact.case_id, exc.code, exc.message)
        return "survey_not_started"
    return "survey_started"


def _handle_start_survey(ctx: KeywordContext) -> str:
    _answered(ctx)  # the keyword's reply (if any) first, then the first question
    survey = survey_services.find_survey(ctx.project, ctx.keyword.survey)
    if survey is None:  # deleted since the keyword was saved
        log.warning("keyword %s names survey %r, which no longer exists", ctx.keyword.keyword, ctx.keyword.survey)
        return "survey_not_started"
    return start_survey(ctx.project, ctx.contact, survey, ctx.gateway, ctx.send_reply)


ACTIONS: dict[str, KeywordAction] = {
    a.name: a
    for a in [
        KeywordAction("reply", "Answer with the keyword's reply.", _validate_reply, _handle_reply),
        KeywordAction(
            "update_case",
            "Set property_name of the sender's case to property_value ({rest} = the words after the keyword).",
            _validate_update_case,
            _handle_update_case,
        ),
        KeywordAction(
            "start_survey",
            "Start the survey whose id is `survey` for the sender (after the keyword's reply, if any).",
            _validate_start_survey,
            _handle_start_survey,
        ),
    ]
}
