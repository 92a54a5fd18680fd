"""SMS surveys: definitions (casemsg-survey/1 JSON, or an XLSForm upload), their versions, starting one
for a case, and the sessions (docs/surveys.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, File, Form, Router, Schema, Status, UploadedFile

from casemsg.api.core import READ, SEND, WRITE, In, paged, project_for
from casemsg.surveys import engine, queries, services
from casemsg.surveys.models import Survey, SurveySession

router = Router(tags=["surveys"])


class SurveyIn(In):
    """A survey in casemsg's own format, `casemsg-survey/1` (docs/surveys.md; the JSON Schema is
    casemsg/surveys/schema.json). Checked as a whole: a 422 INVALID_SURVEY lists every problem found,
    each naming its question."""

    format: Any = Field(None, description='"casemsg-survey/1"')
    name: Any = None
    form_id: Any = None
    version: Any = None
    default_language: Any = None
    languages: Any = None
    settings: Any = Field(None, description="keyword, expire_after, reminder_intervals, submit_partial, …")
    entity: Any = Field(None, description="where the answers go: update the case (default) or create a case")
    questions: Any = None


class SurveyOut(Schema):
    id: int
    name: str
    keyword: str = Field(description="settings.keyword, upper-case; texting it starts the survey")
    form_id: str
    version: int = Field(description="the current version's number; each PUT or re-import adds one")
    created_on: datetime
    modified_on: datetime
    definition: dict[str, Any] = Field(description="the current version, canonical (defaults filled in)")


class SurveyList(Schema):
    count: int
    items: list[SurveyOut]


class StartIn(In):
    case_id: str = Field(max_length=64)


class QuestionOut(Schema):
    name: str
    text: str = Field(description="as sent, in the session's language")


class SessionOut(Schema):
    id: int
    survey_id: int
    survey_name: str
    survey_version: int
    case_id: str
    phone_number: str
    gateway: str | None
    status: str = Field(description=" | ".join(SurveySession.STATUSES))
    error: str = Field(description="why it ended other than completed: SURVEY_EXPIRED, PHONE_OPTED_OUT; else empty")
    current_question: QuestionOut | None = Field(description="what the session waits for (null once ended)")
    answers: dict[str, str]
    language: str
    started_on: datetime
    last_activity_on: datetime
    next_reminder_on: datetime | None
    expires_on: datetime
    reminders_sent: int
    completed_on: datetime | None


class SessionList(Schema):
    count: int
    items: list[SessionOut]


def _survey(s: Survey) -> dict[str, Any]:
    version = s.current_version
    return {
        "id": s.pk,
        "name": s.name,
        "keyword": s.keyword,
        "form_id": s.form_id,
        "version": version.number if version else 0,
        "created_on": s.created_on,
        "modified_on": s.modified_on,
        "definition": version.definition if version else {},
    }


def _session(s: SurveySession) -> dict[str, Any]:
    version = s.survey_version
    text = engine.current_question_text(s)
    return {
        "id": s.pk,
        "survey_id": version.survey_id,
        "survey_name": version.survey.name,
        "survey_version": version.number,
        "case_id": s.case.case_id,
        "phone_number": s.phone_number,
        "gateway": s.gateway.name if s.gateway else None,
        "status": s.status,
        "error": s.error,
        "current_question": {"name": s.current_question, "text": text} if text else None,
        "answers": s.answers or {},
        "language": s.language,
        "started_on": s.started_on,
        "last_activity_on": s.last_activity_on,
        "next_reminder_on": s.next_reminder_on,
        "expires_on": s.expires_on,
        "reminders_sent": s.reminders_sent,
        "completed_on": s.completed_on,
    }


@router.post("/projects/{project}/surveys", auth=WRITE, response={201: SurveyOut})
def create_survey(request: HttpRequest, project: str, payload: SurveyIn) -> Status[dict[str, Any]]:
    """A new survey from its definition (version 1)."""
    survey = services.create_survey(project_for(request, project), payload.dict(exclude_unset=True))
    return Status(201, _survey(survey))


@router.post("/projects/{project}/surveys/import", auth=WRITE, response={200: SurveyOut, 201: SurveyOut})
def import_survey(
    request: HttpRequest,
    project: str,
    file: File[UploadedFile],
    survey_id: Form[int | None] = None,
    attachments: File[list[UploadedFile] | None] = None,
    accept_refused: Form[bool] = False,
) -> Status[dict[str, Any]]:
    """An XLSForm (.xlsx or .csv, multipart field `file`) as a new survey (201), or as a new version (200)
    of `survey_id`, else of the survey with the same form_id. A 422 INVALID_SURVEY names the sheet rows.
    `attachments`: the CSV files of its choices (select_one_from_file); `accept_refused`: import it without
    the questions a phone's hardware answers (GPS, photos, barcodes), else they are refused (422)."""
    p = project_for(request, project)
    content = file.read()
    attached = {(f.name or "").rsplit("/", 1)[-1]: f.read() for f in attachments or []}
    survey, created = services.import_survey(
        p, content, file.name or "", survey_id, attachments=attached, accept_refused=accept_refused
    )
    return Status(201 if created else 200, _survey(survey))


@router.get("/projects/{project}/surveys", auth=READ, response=SurveyList)
def list_surveys(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    listed = paged(services.list_surveys(project_for(request, project)), limit, offset)
    return {"count": listed["count"], "items": [_survey(s) for s in listed["items"]]}


@router.get("/projects/{project}/surveys/{survey_id}", auth=READ, response=SurveyOut)
def get_survey(request: HttpRequest, project: str, survey_id: int) -> dict[str, Any]:
    return _survey(services.get_survey(project_for(request, project), survey_id))


@router.put("/projects/{project}/surveys/{survey_id}", auth=WRITE, response=SurveyOut)
def update_survey(request: HttpRequest, project: str, survey_id: int, payload: SurveyIn) -> dict[str, Any]:
    """A new version of the survey; sessions already running keep the version they started with."""
    survey = services.update_survey(project_for(request, project), survey_id, payload.dict(exclude_unset=True))
    return _survey(survey)


@router.delete("/projects/{project}/surveys/{survey_id}", auth=WRITE, response={204: None})
def delete_survey(request: HttpRequest, project: str, survey_id: int) -> Status[None]:
    """Delete the survey, its versions and its sessions."""
    services.delete_survey(project_for(request, project), survey_id)
    return Status(204, None)


@router.post("/projects/{project}/surveys/{survey_id}/start", auth=SEND, response={201: SessionOut})
def start_survey(request: HttpRequest, project: str, survey_id: int, payload: StartIn) -> Status[dict[str, Any]]:
    """Send the survey's first question to a case (422 NO_CASE_NAME, NO_TWO_WAY_PHONE_NUMBER, …). An open
    session on the same number is closed as replaced."""
    session = services.start_survey(project_for(request, project), survey_id, payload.case_id)
    return Status(201, _session(queries.sessions(session.project).get(pk=session.pk)))


@router.get("/projects/{project}/survey-sessions", auth=READ, response=SessionList)
def list_sessions(
    request: HttpRequest,
    project: str,
    case_id: str | None = None,
    status: str | None = None,
    survey_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Sessions, newest first: status, answers so far, the question waited for."""
    rows = queries.sessions(project_for(request, project), case_id=case_id, status=status, survey_id=survey_id)
    listed = paged(rows, limit, offset)
    return {"count": listed["count"], "items": [_session(s) for s in listed["items"]]}
