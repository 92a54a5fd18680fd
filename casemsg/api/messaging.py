from __future__ import annotations

from datetime import datetime

from django.db.models import Count
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import page, project_for
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import services
from casemsg.messaging.models import Message, MessagingEvent

router = Router(tags=["messages"])


@router.get("/errors", auth=None, tags=["errors"])
def list_errors(request):
    """The error catalogue: every code a message or a contact can carry, with how to fix it."""
    return [
        {"code": e.code, "title": e.title, "description": e.description, "fix": e.fix, "delay": e.delay}
        for e in errors.CATALOGUE.values()
    ]


class Recipient(Schema):
    case_id: str | None = None
    mobile_worker_id: int | None = None


class MessageIn(Schema):
    recipient: Recipient
    channel: str = "sms"
    text: str | None = None
    translations: dict[str, str] | None = None
    subject: str = ""
    html: str = ""
    default_language: str = ""


class ErrorOut(Schema):
    code: str
    title: str
    description: str
    fix: str
    detail: str = ""


class MessageOut(Schema):
    id: int
    direction: str
    channel: str
    status: str
    error: ErrorOut | None
    delay_reason: str = ""
    to: str
    recipient: dict = Field(default_factory=dict)
    text: str
    subject: str
    language: str
    gateway: str
    segments: int
    attempts: int
    provider_id: str
    event_id: int | None
    created_on: datetime
    sent_on: datetime | None
    delivered_on: datetime | None


class MessageList(Schema):
    count: int
    items: list[MessageOut]


def message_json(m: Message) -> dict:
    err = None
    if m.error:
        err = {**errors.as_dict(m.error), "detail": m.error_detail}
    recipient: dict = {}
    if m.case_id:
        recipient = {"case_id": m.case.case_id}
    elif m.worker_id:
        recipient = {"mobile_worker_id": m.worker_id}
    return {
        "id": m.pk,
        "direction": m.direction,
        "channel": m.channel,
        "status": m.status,
        "error": err,
        "delay_reason": m.delay_reason,
        "to": m.to,
        "recipient": recipient,
        "text": m.text,
        "subject": m.subject,
        "language": m.language,
        "gateway": m.gateway_name,
        "segments": m.segments,
        "attempts": m.attempts,
        "provider_id": m.provider_id,
        "event_id": m.event_id,
        "created_on": m.created_on,
        "sent_on": m.sent_on,
        "delivered_on": m.delivered_on,
    }


@router.post("/projects/{project}/messages", response={202: MessageOut})
def send_message(request: HttpRequest, project: str, payload: MessageIn):
    """Queue one SMS or email to a case or a mobile worker. `text` may use `{case.name}`,
    `{case.<property>}`, `{case.parent.<property>}`, `{recipient.name}`; `translations` maps language codes
    to texts and is chosen by the contact's language, then `default_language`, then the project's."""
    p = project_for(request, project)
    msg = services.send(
        p,
        services.SendRequest(
            channel=payload.channel,
            case_id=payload.recipient.case_id,
            mobile_worker_id=payload.recipient.mobile_worker_id,
            text=payload.text,
            translations=payload.translations,
            subject=payload.subject,
            html=payload.html,
            default_language=payload.default_language,
        ),
    )
    msg.refresh_from_db()
    return Status(202, message_json(msg))


@router.get("/projects/{project}/messages", response=MessageList)
def list_messages(
    request: HttpRequest,
    project: str,
    case_id: str | None = None,
    mobile_worker_id: int | None = None,
    status: str | None = None,
    error: str | None = None,
    direction: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
):
    """Newest first. Filters: recipient (`case_id` or `mobile_worker_id`), `status`, `error` (a code),
    `direction` (out/in), `channel` (sms/email), `since`/`until` (ISO times, on created_on)."""
    p = project_for(request, project)
    if status and status not in Message.STATUSES:
        raise InputError("VALIDATION_ERROR", f"status must be one of {', '.join(Message.STATUSES)}.")
    qs = Message.objects.filter(project=p).select_related("case")
    if case_id:
        qs = qs.filter(case__case_id=case_id)
    if mobile_worker_id:
        qs = qs.filter(worker_id=mobile_worker_id)
    if status:
        qs = qs.filter(status=status)
    if error:
        qs = qs.filter(error=error.upper())
    if direction:
        qs = qs.filter(direction=direction)
    if channel:
        qs = qs.filter(channel=channel)
    if since:
        qs = qs.filter(created_on__gte=since)
    if until:
        qs = qs.filter(created_on__lt=until)
    qs = qs.order_by("-created_on", "-pk")
    return {"count": qs.count(), "items": [message_json(m) for m in page(qs, limit, offset)]}


@router.get("/projects/{project}/messages/{message_id}", response=MessageOut)
def get_message(request: HttpRequest, project: str, message_id: int):
    p = project_for(request, project)
    m = Message.objects.filter(project=p, pk=message_id).select_related("case").first()
    if m is None:
        raise InputError("MESSAGE_NOT_FOUND", f"No message {message_id} in this project.", 404)
    return message_json(m)


@router.get("/projects/{project}/sandbox/outbox", response=MessageList, tags=["sandbox"])
def sandbox_outbox(request: HttpRequest, project: str, limit: int = 100, offset: int = 0):
    """What the sandbox gateway "sent" for this project, newest first."""
    p = project_for(request, project)
    qs = (
        Message.objects.filter(
            project=p, direction=Message.OUT, gateway__type="sandbox", status__in=[Message.SENT, Message.DELIVERED]
        )
        .select_related("case")
        .order_by("-sent_on", "-pk")
    )
    return {"count": qs.count(), "items": [message_json(m) for m in page(qs, limit, offset)]}


class EventOut(Schema):
    id: int
    source: str
    source_id: str
    description: str
    status: str
    error: str
    created_on: datetime
    messages: dict[str, int]


@router.get("/projects/{project}/events", response=list[EventOut], tags=["messages"])
def list_events(request: HttpRequest, project: str, source: str | None = None, limit: int = 100, offset: int = 0):
    """Messaging events — why messages exist (api, broadcast, alert, survey, keyword, system) — newest
    first, each with its outcome: how many of its messages are in each status."""
    p = project_for(request, project)
    qs = MessagingEvent.objects.filter(project=p).order_by("-created_on", "-pk")
    if source:
        qs = qs.filter(source=source)
    events = list(page(qs, limit, offset))
    counts: dict[int, dict[str, int]] = {e.pk: {} for e in events}
    for row in Message.objects.filter(event_id__in=list(counts)).values("event_id", "status").annotate(n=Count("pk")):
        counts[row["event_id"]][row["status"]] = row["n"]
    return [
        {
            "id": e.pk,
            "source": e.source,
            "source_id": e.source_id,
            "description": e.description,
            "status": e.status,
            "error": e.error,
            "created_on": e.created_on,
            "messages": counts[e.pk],
        }
        for e in events
    ]
