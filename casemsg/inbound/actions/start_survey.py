"""`start_survey`: start one of the project's surveys for the sender (after the keyword's reply, if any).
`start` is also what a survey's own keyword (its settings.keyword) does."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.core.fields import Param
from casemsg.gateways.models import Gateway
from casemsg.inbound.actions.base import NOT_REGISTERED, KeywordAction, KeywordContext, SendText
from casemsg.projects.models import Project
from casemsg.surveys import engine as survey_engine
from casemsg.surveys import services as survey_services
from casemsg.surveys.models import Survey
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)


def start(
    project: Project,
    contact: Case | MobileWorker | None,
    survey: Survey,
    gateway: Gateway | None,
    send_text: SendText,
) -> str:
    """Start `survey` for the sender, through the gateway the message came in on (also for a survey's own
    keyword). A sender who cannot take it (no case, no name, no two-way number) is told nothing more than
    an unregistered sender would be."""
    if not isinstance(contact, Case):
        send_text(NOT_REGISTERED.key)
        return "keyword_no_case"
    try:
        survey_engine.start(project, survey, contact, gateway=gateway)
    except InputError as exc:
        log.info("survey %s not started for case %s: %s %s", survey.pk, contact.case_id, exc.code, exc.message)
        return "survey_not_started"
    return "survey_started"


class StartSurvey(KeywordAction):
    name = "start_survey"
    description = "Start the survey whose id is `survey` for the sender (after the keyword's reply, if any)."
    params = (Param("survey", "Survey", type="choice", required=True, help="The survey to start (its id)."),)
    texts = (NOT_REGISTERED,)

    def check(self, params: dict[str, str], reply: Mapping[str, str], project: Project) -> None:
        if survey_services.find_survey(project, params["survey"]) is None:
            given = params["survey"]
            raise InputError(
                errors.VALIDATION_ERROR,
                f"A start_survey keyword needs survey: the id of one of the project's surveys, not {given!r}.",
            )

    def choices(self, project: Project, param: Param) -> list[tuple[str, str]]:
        return [(str(s.pk), s.name) for s in survey_services.list_surveys(project)]

    def handle(self, ctx: KeywordContext) -> str:
        ctx.answered()  # the keyword's reply (if any) first, then the first question
        ref = ctx.params.get("survey", "")
        survey = survey_services.find_survey(ctx.project, ref)
        if survey is None:  # deleted since the keyword was saved
            log.warning("keyword %s names survey %r, which no longer exists", ctx.keyword.keyword, ref)
            return "survey_not_started"
        return start(ctx.project, ctx.contact, survey, ctx.gateway, ctx.send_text)


ACTION = StartSurvey()
