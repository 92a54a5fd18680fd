from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, SEND, In, page, paged, project_for, utc
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import queries, services
from casemsg.messaging.models import Message
from casemsg.scheduling import queries as schedule_queries
from casemsg.scheduling import services as schedule_services
from casemsg.scheduling.recipients import BroadcastRecipientsIn

router = Router(tags=["messages"])


class CatalogueEntryOut(Schema):
    """One code of the error catalogue (an errors.ErrorCode)."""

    code: str
    title: str
    description: str
    fix: str
    delay: bool
    kind: str = Field(description="problem: on messages and contacts; request: a refused API or CLI call")
    status: int | None = Field(None, description="the HTTP status of a refused call with this code")


@router.get("/errors", auth=None, tags=["errors"], response=list[CatalogueEntryOut])
def list_errors(request: HttpRequest) -> list[errors.ErrorCode]:
    """The error catalogue: every code a message or a contact can carry, and every code a refused
    request answers with (kind `request`, with its HTTP status), with how to fix it."""
    return list(errors.CATALOGUE.values())


class Recipient(Schema, BroadcastRecipientsIn):
    """One contact (`case_id` or `mobile_worker_id`): one message. Or many, as a broadcast's recipients (a
    `group`, a `case_type` with `filters`, `case_ids`, `mobile_workers`, `owners_of`): a broadcast of type
    now, whose messages are queued at once (one recipient model for messages, broadcasts and alerts)."""

    model_config = {**Schema.model_config, "extra": "ignore"}  # (as before: other keys are left out)
    case_id: str | None = None
    mobile_worker_id: int | None = None


class MessageIn(In):
    recipient: Recipient
    channel: str = "sms"
    text: str | None = None
    translations: dict[str, str] | None = None
    subject: str = ""
    html: str = ""
    default_language: str = ""
    whatsapp: dict[str, Any] | None = Field(
        None,
        description='channel whatsapp: the template outside the 24-hour window, {"template": NAME, "language": '
        '"en", "variables": ["{case.name}"], "fallback_sms": true} (docs/whatsapp.md).',
    )


class ErrorOut(Schema):
    code: str
    title: str
    description: str
    fix: str
    detail: str = ""


class MessageOut(Schema):
    """One message (a Message row)."""

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
    gateway: str = Field(alias="gateway_name")
    segments: int
    attempts: int
    provider_id: str
    event_id: int | None
    created_on: datetime
    sent_on: datetime | None
    delivered_on: datetime | None
    history: list[dict[str, Any]] = Field(
        default_factory=list,
        description="What happened beyond the status, oldest first, e.g. a re-send after an unknown outcome "
        "(SENDING_OUTCOME_UNKNOWN).",
    )
    simulated: bool = Field(
        False, description="Made by the phone simulator, or a reply to such a message: never a real person's."
    )

    @staticmethod
    def resolve_error(m: Message) -> dict[str, Any] | None:
        """The catalogue's words for the code, and this message's own detail."""
        if not m.error:
            return None
        return {**errors.as_dict(m.error), "detail": m.error_detail}

    @staticmethod
    def resolve_recipient(m: Message) -> dict[str, Any]:
        if m.case is not None:
            return {"case_id": m.case.case_id}
        if m.worker_id:
            return {"mobile_worker_id": m.worker_id}
        return {}


class ManyMessagesOut(Schema):
    """A message to many recipients: the broadcast (of type now) that queued it, one message per recipient."""

    broadcast_id: int = Field(description="GET …/broadcasts/{id}: its recipients, sends and failures")
    event_id: int | None = Field(description="the messaging event of its messages")
    recipients: int = Field(description="the recipients it selected")
    queued: int = Field(description="messages queued, one per recipient (each says later why it did not go)")
    status: str = Field(description="the broadcast's status (done once every message is queued)")


class MessageList(Schema):
    count: int
    items: list[MessageOut]


def _message_list(messages: QuerySet[Message], limit: int, offset: int) -> dict[str, Any]:
    """A MessageList of one page of `messages` (a query of Message rows): the page, and how many in all."""
    return {"count": messages.count(), "items": list(page(messages, limit, offset))}


def _many(request: HttpRequest, p: Any, payload: MessageIn, many: dict[str, Any]) -> Status:
    """A message to many recipients, as a broadcast of type now."""
    if payload.recipient.case_id or payload.recipient.mobile_worker_id:
        raise InputError(
            errors.VALIDATION_ERROR,
            "recipient: name one contact (case_id or mobile_worker_id) or many (group, case_type, case_ids, "
            "mobile_workers, owners_of), not both.",
        )
    if payload.html:
        raise InputError(errors.VALIDATION_ERROR, "html goes to one recipient; a message to many takes text.")
    if request.headers.get("Idempotency-Key"):
        raise InputError(
            errors.VALIDATION_ERROR,
            "Idempotency-Key applies to a message to one contact; a message to many is a broadcast "
            "(GET …/broadcasts lists it).",
        )
    content: dict[str, Any] = {"channel": payload.channel}
    if payload.text is not None:
        content["text"] = payload.text
    if payload.translations:
        content["translations"] = payload.translations
    if payload.subject:
        content["subject"] = payload.subject
    b = schedule_services.message_now(
        p, {"recipients": many, "content": content, "default_language": payload.default_language}
    )
    s = schedule_queries.summary(b)
    return Status(
        202,
        {
            "broadcast_id": b.pk,
            "event_id": b.event_id,
            "recipients": s.recipients,
            "queued": sum(s.messages.values()),
            "status": b.status,
        },
    )


@router.post("/projects/{project}/messages", auth=SEND, response={202: MessageOut | ManyMessagesOut})
def send_message(request: HttpRequest, project: str, payload: MessageIn) -> Status:
    """Queue one SMS or email to a case or a mobile worker. `text` may use `{case.name}`,
    `{case.<property>}`, `{case.parent.<property>}`, `{recipient.name}`; `translations` maps language codes
    to texts and is chosen by the contact's language, then `default_language`, then the project's.

    To many recipients: `recipient` as a broadcast's (`{"group": 7}`, `{"case_type": "mother", "filters":
    {…}}`, `case_ids`, `mobile_workers`, `owners_of`): the message is a broadcast of type now (202 with its
    `broadcast_id`; GET …/broadcasts/{id} shows its sends and failures).

    Send an `Idempotency-Key` header (any unique string, e.g. a UUID) to retry safely: the same key within
    24 hours answers with the message the first request made, and nothing is sent twice; the same key with
    a different body is refused (409 IDEMPOTENCY_KEY_IN_USE)."""
    p = project_for(request, project)
    many = payload.recipient.model_dump(exclude_none=True, exclude={"case_id", "mobile_worker_id"})
    if many:
        return _many(request, p, payload, many)
    msg = services.send_once(
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
            whatsapp=payload.whatsapp,
        ),
        request.headers.get("Idempotency-Key"),
    )
    msg.refresh_from_db()
    return Status(202, msg)


@router.get("/projects/{project}/messages", auth=READ, response=MessageList)
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
) -> dict[str, Any]:
    """Newest first. Filters: recipient (`case_id` or `mobile_worker_id`), `status`, `error` (a code),
    `direction` (out/in), `channel` (sms/email), `since`/`until` (ISO times, on created_on)."""
    p = project_for(request, project)
    f = queries.MessageFilter(
        status=status,
        direction=direction,
        channel=channel,
        error=error,
        case_id=case_id,
        worker_id=mobile_worker_id,
        since=utc(since, "since"),
        until=utc(until, "until"),
    )
    return _message_list(queries.messages(p, f), limit, offset)


@router.get("/projects/{project}/messages/{message_id}", auth=READ, response=MessageOut)
def get_message(request: HttpRequest, project: str, message_id: int) -> Message:
    m = queries.message(project_for(request, project), message_id)
    if m is None:
        raise InputError(errors.MESSAGE_NOT_FOUND, f"No message {message_id} in this project.", 404)
    return m


@router.get("/projects/{project}/sandbox/outbox", auth=READ, response=MessageList, tags=["sandbox"])
def sandbox_outbox(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """What the sandbox gateway "sent" for this project, newest first."""
    return _message_list(queries.sandbox_outbox(project_for(request, project)), limit, offset)


class EventOut(Schema):
    """A messaging event with its outcome (a queries.EventOutcome): `messages` counts its messages by status."""

    id: int = Field(alias="event.id")
    source: str = Field(alias="event.source")
    source_id: str = Field(alias="event.source_id")
    description: str = Field(alias="event.description")
    status: str = Field(alias="event.status")
    error: str = Field(alias="event.error")
    created_on: datetime = Field(alias="event.created_on")
    messages: dict[str, int]


class EventList(Schema):
    count: int
    items: list[EventOut]


@router.get("/projects/{project}/events", auth=READ, response=EventList, tags=["messages"])
def list_events(
    request: HttpRequest, project: str, source: str | None = None, limit: int = 100, offset: int = 0
) -> dict[str, object]:
    """Messaging events — why messages exist (api, broadcast, alert, survey, keyword, system) — newest
    first, each with its outcome: how many of its messages are in each status."""
    listed = paged(queries.events(project_for(request, project), source), limit, offset)
    return {"count": listed["count"], "items": queries.outcomes(listed["items"])}
