"""Broadcasts and conditional alerts: create, list, read, change, pause, resume, cancel (broadcasts) or
delete (alerts), the messages each queued, a broadcast's pre-flight, and one case's coming sends.

The request bodies are declared once, by the scheduling area (`casemsg.scheduling.specs.BroadcastIn`,
`AlertIn` and their patches: the pages' forms build the same declarations); here they only gain the API's
refusal of unstorable values (`In`). What the shape does not say is checked by `casemsg.scheduling.specs`
(schedules, content, recipients) and `casemsg.scheduling.rules` (an alert's case type and criteria)
through the scheduling services: a bad body is a 422 whose message names the field (an impossible time,
an unknown zone, an unknown operator, a case type no case has)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import MAX_LIMIT, READ, SEND, In, paged, project_for
from casemsg.api.messaging import MessageList
from casemsg.cases import queries as case_queries
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.scheduling import preflight, queries, services, specs
from casemsg.scheduling.models import Broadcast, ConditionalAlert

router = Router(tags=["scheduling"])

_409 = {
    "responses": {
        409: {"description": "The broadcast was cancelled or is done: it can no longer change (SCHEDULE_ENDED)."}
    }
}

# --------------------------------------------------------------------------------------------------
# Input: the scheduling area's declarations (one per body), with the API's refusal of unstorable values
# --------------------------------------------------------------------------------------------------


class BroadcastIn(In, specs.BroadcastIn):
    __doc__ = specs.BroadcastIn.__doc__


class BroadcastPatch(In, specs.BroadcastPatch):
    __doc__ = specs.BroadcastPatch.__doc__


class AlertIn(In, specs.AlertIn):
    __doc__ = specs.AlertIn.__doc__


class AlertPatch(In, specs.AlertPatch):
    __doc__ = specs.AlertPatch.__doc__


def _body(payload: In) -> dict[str, Any]:
    """What the client sent (fields it left out stay out: the services apply their defaults)."""
    return payload.model_dump(exclude_unset=True, by_alias=True)


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


class _OwnerOut(Schema):
    id: int
    name: str
    content: dict[str, Any]
    default_language: str
    schedule: dict[str, Any] = Field(description="as stored (normalised)")
    schedule_summary: str = Field(description="the schedule in words")
    max_lateness_minutes: int
    revision: int = Field(description="goes up when the schedule or the recipients change")
    event_id: int | None = Field(description="the messaging event its messages belong to (GET …/events)")
    created_on: datetime
    modified_on: datetime
    recipient_count: int = Field(description="recipients it has started a schedule for")
    running: int = Field(description="schedules still running (recipients with events to come)")
    next_due_utc: datetime | None = Field(description="its soonest event to come")
    messages: dict[str, int] = Field(description="its messages by status")
    recipients_summary: str = Field("", description="its recipients in words")


class BroadcastOut(_OwnerOut):
    status: str = Field(description="active | paused | cancelled | done")
    recipients: dict[str, Any]
    recipients_read_at_each_send: bool = Field(
        False,
        description="its recipients (a case type, a group, …) are read again at each occurrence: a case that "
        "starts matching joins from the next send, one that stops matching leaves",
    )
    recipients_next_read_utc: datetime | None = Field(None, description="when they are read next")


class BroadcastList(Schema):
    count: int
    items: list[BroadcastOut]


class RunOut(Schema):
    status: str = Field(description="idle | running | failed")
    done: int
    total: int
    percent: float
    started_on: datetime | None
    finished_on: datetime | None
    up_to_date: bool = Field(description="the last complete run evaluated the current criteria and schedule")


class AlertOut(_OwnerOut):
    status: str = Field(description="active | paused")
    case_type: str
    criteria: list[dict[str, Any]]
    recipients: list[str] | dict[str, Any] = Field(description="roles, or {roles, group}: the group's members only")
    reset_property: str
    run_status: str = Field(description="the rule run over the cases: idle | running | failed")
    run_done: int = Field(description="cases evaluated by the run under way (or the last one)")
    run_total: int = Field(description="open cases of the type when the run started")
    run: RunOut


class AlertList(Schema):
    count: int
    items: list[AlertOut]


class FirstSendOut(Schema):
    case_id: str | None
    mobile_worker_id: int | None
    name: str
    due_utc: datetime
    local_time: str = Field(description="due_utc on the recipient's clock (ISO, no offset)")
    utc_offset: str = Field("", description='the zone\'s offset at due_utc ("-04:00"): which pass of a fall-back fold')
    time_zone: str
    language: str = Field(description='the translation used; "" for the untranslated text')
    text: str = Field(description="rendered for this recipient")
    subject: str
    segments: int
    gateway: str | None = Field(None, description="SMS: the gateway it would use now (failover included)")
    whatsapp: str = Field("", description="WhatsApp: free_text (inside the window), template, or sms (fallback)")


class WhatsAppReachOut(Schema):
    gateway: str | None = Field(description="the WhatsApp gateway the messages would use (none: NO_SUITABLE_GATEWAY)")
    template: str | None = Field(description="the template named for outside the 24-hour window")
    template_status: str | None = Field(description="APPROVED, the provider's other status, or null (not synced)")
    fallback_sms: bool
    window_open: int = Field(description="recipients inside the window: they get the text")
    template_sends: int = Field(description="recipients outside the window who get the approved template")
    sms: dict[str, int] = Field(description="the WhatsApp error code → recipients who get an SMS instead")
    unreachable: dict[str, int] = Field(description="error code → recipients who cannot be reached, and why")


class PreflightOut(Schema):
    channel: str
    recipients: int = Field(description="every recipient the broadcast selects now")
    sendable: int = Field(description="those whose first message would go")
    blocked: dict[str, int] = Field(description="error code → recipients whose message would fail with it")
    no_events: int = Field(description="recipients for whom no event of the schedule is left")
    segments: int = Field(description="SMS segments of the first message to every sendable recipient")
    first_sends: list[FirstSendOut] = Field(description="the earliest first messages, rendered")
    at_each_send: bool = Field(False, description="the recipients are read again at each occurrence")
    recipients_note: str = Field("", description="what the counts mean for who gets the messages")
    whatsapp: WhatsAppReachOut | None = Field(None, description="channel whatsapp: how the recipients are reached")


class ScheduledOut(Schema):
    source: str = Field(description="broadcast | alert")
    id: int = Field(description="the broadcast's or alert's id")
    name: str
    case_id: str
    iteration: int = Field(description="the event's index in its schedule")
    due_utc: datetime
    local_time: str = Field(description="due_utc on the recipient's clock (ISO, no offset)")
    utc_offset: str = Field("", description='the zone\'s offset at due_utc ("-04:00"): which pass of a fall-back fold')
    time_zone: str
    channel: str
    language: str
    text: str = Field(description="rendered for the case as it is now")
    subject: str = ""
    joins: bool = Field(
        False, description="a broadcast that reads its recipients at each send selects the case: it joins then"
    )
    note: str = Field("", description="why it is listed, when the recipients are read at each send")


class ScheduledList(Schema):
    count: int
    items: list[ScheduledOut]


def _broadcast_out(b: Broadcast) -> dict[str, Any]:
    return queries.summary(b).as_dict()


def _alert_out(a: ConditionalAlert) -> dict[str, Any]:
    return queries.summary(a).as_dict()


def _broadcast(p: Project, broadcast_id: int) -> Broadcast:
    b = queries.broadcast(p, broadcast_id)
    if b is None:
        raise InputError(errors.BROADCAST_NOT_FOUND, f"No broadcast {broadcast_id} in this project.", 404)
    return b


def _alert(p: Project, alert_id: int) -> ConditionalAlert:
    a = queries.alert(p, alert_id)
    if a is None:
        raise InputError(errors.ALERT_NOT_FOUND, f"No alert {alert_id} in this project.", 404)
    return a


# --------------------------------------------------------------------------------------------------
# Broadcasts
# --------------------------------------------------------------------------------------------------


@router.post("/projects/{project}/broadcasts", auth=SEND, response={201: BroadcastOut}, tags=["broadcasts"])
def create_broadcast(request: HttpRequest, project: str, payload: BroadcastIn) -> Status[dict[str, Any]]:
    """Create a broadcast: its schedule starts at once for every recipient it selects (a `now` broadcast
    is queued by the next scheduler tick, within a second or two). Check it first with
    `POST …/broadcasts/preflight`."""
    b = services.create_broadcast(project_for(request, project), _body(payload))
    return Status(201, _broadcast_out(b))


@router.get("/projects/{project}/broadcasts", auth=READ, response=BroadcastList, tags=["broadcasts"])
def list_broadcasts(
    request: HttpRequest, project: str, status: str | None = None, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """Newest first; `status` filters (active, paused, cancelled, done)."""
    listed = paged(queries.broadcasts(project_for(request, project), status), limit, offset)
    return {"count": listed["count"], "items": [s.as_dict() for s in queries.summaries(listed["items"])]}


@router.post("/projects/{project}/broadcasts/preflight", auth=READ, response=PreflightOut, tags=["broadcasts"])
def preflight_broadcast(
    request: HttpRequest, project: str, payload: BroadcastIn, limit: int = preflight.DEFAULT_LIMIT
) -> dict[str, Any]:
    """What the same body would do, before anything is saved or sent: how many recipients, how many can be
    sent to and why the others cannot (`blocked`, by error code), the SMS segments of the first message to
    all of them, and the `limit` (0–100, default 10) earliest first messages, rendered in each recipient's
    language and time zone. Nothing is written."""
    if not 0 <= limit <= preflight.MAX_LIMIT:
        raise InputError(errors.VALIDATION_ERROR, f"limit must be 0–{preflight.MAX_LIMIT}.")
    return preflight.preflight(project_for(request, project), _body(payload), limit=limit).as_dict()


@router.get("/projects/{project}/broadcasts/{broadcast_id}", auth=READ, response=BroadcastOut, tags=["broadcasts"])
def get_broadcast(request: HttpRequest, project: str, broadcast_id: int) -> dict[str, Any]:
    return _broadcast_out(_broadcast(project_for(request, project), broadcast_id))


@router.patch(
    "/projects/{project}/broadcasts/{broadcast_id}",
    auth=SEND,
    response=BroadcastOut,
    tags=["broadcasts"],
    openapi_extra=_409,
)
def update_broadcast(request: HttpRequest, project: str, broadcast_id: int, payload: BroadcastPatch) -> dict[str, Any]:
    """Change any of its fields. A new schedule replaces every recipient's coming events (from now on); new
    recipients end the schedules of those no longer selected and start the new ones; a new text applies to
    every message not yet queued."""
    b = services.update_broadcast(_broadcast(project_for(request, project), broadcast_id), _body(payload))
    return _broadcast_out(b)


@router.delete(
    "/projects/{project}/broadcasts/{broadcast_id}",
    auth=SEND,
    response=BroadcastOut,
    tags=["broadcasts"],
    openapi_extra=_409,
)
def cancel_broadcast(request: HttpRequest, project: str, broadcast_id: int) -> dict[str, Any]:
    """Cancel it for good: nothing more is queued (messages already queued still go). The broadcast stays,
    with status `cancelled`, as the record of what it sent."""
    return _broadcast_out(services.cancel_broadcast(_broadcast(project_for(request, project), broadcast_id)))


@router.post(
    "/projects/{project}/broadcasts/{broadcast_id}/pause",
    auth=SEND,
    response=BroadcastOut,
    tags=["broadcasts"],
    openapi_extra=_409,
)
def pause_broadcast(request: HttpRequest, project: str, broadcast_id: int) -> dict[str, Any]:
    """Stop sending until resumed (pausing a paused broadcast changes nothing)."""
    return _broadcast_out(services.pause_broadcast(_broadcast(project_for(request, project), broadcast_id)))


@router.post(
    "/projects/{project}/broadcasts/{broadcast_id}/resume",
    auth=SEND,
    response=BroadcastOut,
    tags=["broadcasts"],
    openapi_extra=_409,
)
def resume_broadcast(request: HttpRequest, project: str, broadcast_id: int) -> dict[str, Any]:
    """Send again: each recipient's next event from now on; the latest one missed while paused is still
    sent if it is within `max_lateness_minutes`, older ones are skipped."""
    return _broadcast_out(services.resume_broadcast(_broadcast(project_for(request, project), broadcast_id)))


@router.get("/projects/{project}/broadcasts/{broadcast_id}/sends", auth=READ, response=MessageList, tags=["broadcasts"])
def broadcast_sends(
    request: HttpRequest,
    project: str,
    broadcast_id: int,
    status: str | None = None,
    error: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """The messages it queued, newest first, each with its status and, when it failed, the error code and
    the reason; `status` and `error` (a code) filter."""
    p = project_for(request, project)
    return paged(queries.sends(p, _broadcast(p, broadcast_id), status, error), limit, offset)


# --------------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------------


@router.post("/projects/{project}/alerts", auth=SEND, response={201: AlertOut}, tags=["alerts"])
def create_alert(request: HttpRequest, project: str, payload: AlertIn) -> Status[dict[str, Any]]:
    """Create a conditional alert. Its rule run over the open cases of the type starts at once (workers do
    it in the background): follow it in `run_status`, `run_done` / `run_total`."""
    a = services.create_alert(project_for(request, project), _body(payload))
    return Status(201, _alert_out(a))


@router.get("/projects/{project}/alerts", auth=READ, response=AlertList, tags=["alerts"])
def list_alerts(
    request: HttpRequest,
    project: str,
    status: str | None = None,
    case_type: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Newest first; `status` (active, paused) and `case_type` filter."""
    listed = paged(queries.alerts(project_for(request, project), status, case_type), limit, offset)
    return {"count": listed["count"], "items": [s.as_dict() for s in queries.summaries(listed["items"])]}


@router.get("/projects/{project}/alerts/{alert_id}", auth=READ, response=AlertOut, tags=["alerts"])
def get_alert(request: HttpRequest, project: str, alert_id: int) -> dict[str, Any]:
    """The alert, with its rule run's progress (`run_status`, `run_done` of `run_total` cases)."""
    return _alert_out(_alert(project_for(request, project), alert_id))


@router.patch("/projects/{project}/alerts/{alert_id}", auth=SEND, response=AlertOut, tags=["alerts"])
def update_alert(request: HttpRequest, project: str, alert_id: int, payload: AlertPatch) -> dict[str, Any]:
    """Change any of its fields. A new case type, criteria or schedule starts a new rule run; a new
    schedule replaces the running schedules (from now on); a new text changes no schedule."""
    a = services.update_alert(_alert(project_for(request, project), alert_id), _body(payload))
    return _alert_out(a)


@router.delete("/projects/{project}/alerts/{alert_id}", auth=SEND, response={204: None}, tags=["alerts"])
def delete_alert(request: HttpRequest, project: str, alert_id: int) -> Status[None]:
    """Delete the alert and its schedules: nothing more is queued (messages already queued still go, and
    stay in the message log). To stop it for a while instead, pause it."""
    services.delete_alert(_alert(project_for(request, project), alert_id))
    return Status(204, None)


@router.post("/projects/{project}/alerts/{alert_id}/pause", auth=SEND, response=AlertOut, tags=["alerts"])
def pause_alert(request: HttpRequest, project: str, alert_id: int) -> dict[str, Any]:
    return _alert_out(services.pause_alert(_alert(project_for(request, project), alert_id)))


@router.post("/projects/{project}/alerts/{alert_id}/resume", auth=SEND, response=AlertOut, tags=["alerts"])
def resume_alert(request: HttpRequest, project: str, alert_id: int) -> dict[str, Any]:
    """Running schedules go on (the latest event missed while paused is sent if within the lateness), and a
    rule run starts the schedules of cases that began to match while paused."""
    return _alert_out(services.resume_alert(_alert(project_for(request, project), alert_id)))


@router.get("/projects/{project}/alerts/{alert_id}/sends", auth=READ, response=MessageList, tags=["alerts"])
def alert_sends(
    request: HttpRequest,
    project: str,
    alert_id: int,
    status: str | None = None,
    error: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """The messages it queued, newest first, with status and error code and reason; `status`, `error` filter."""
    p = project_for(request, project)
    return paged(queries.sends(p, _alert(p, alert_id), status, error), limit, offset)


# --------------------------------------------------------------------------------------------------
# One case's coming sends
# --------------------------------------------------------------------------------------------------


@router.get("/projects/{project}/cases/{case_id}/schedule", auth=READ, response=ScheduledList, tags=["cases"])
def case_schedule(request: HttpRequest, project: str, case_id: str, limit: int = 10) -> dict[str, Any]:
    """The next `limit` (1–500, default 10) messages this case will receive, across every alert and
    broadcast, soonest first, each rendered for the case as it is now. `count` is the number listed."""
    p = project_for(request, project)
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(errors.VALIDATION_ERROR, f"limit must be 1–{MAX_LIMIT}.")
    case = case_queries.case(p, case_id)
    if case is None:
        raise InputError(errors.CASE_NOT_FOUND, f"No case '{case_id}' in this project.", 404)
    case.project = p
    items = [{**item, "case_id": case.case_id} for item in queries.schedule_for_case(case, limit)]
    return {"count": len(items), "items": items}
