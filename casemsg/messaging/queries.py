"""Reading the message log: the API (`GET …/messages`, the sandbox outbox, the events), the message-log
page (and the recent messages of the case and worker pages) and `casemsg messages` translate their input
into a MessageFilter and call messages(). The filters, the order and the joins live only here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.models import Project


@dataclass(frozen=True)
class MessageFilter:
    """Which of a project's messages to show. Empty values filter nothing."""

    status: str | None = None  # one of Message.STATUSES
    direction: str | None = None  # Message.OUT or Message.IN
    channel: str | None = None  # sms | email
    error: str | None = None  # a catalogue code, in any letter case
    case_id: str | None = None  # the case's own id (Case.case_id), looked up within the project
    worker_id: int | None = None  # a mobile worker's id, within the project
    since: datetime | None = None  # created on or after
    until: datetime | None = None  # created before


def messages(project: Project, f: MessageFilter) -> QuerySet[Message]:
    """The project's messages matching `f`, newest first, with their case and worker. A status outside
    Message.STATUSES is refused (InputError VALIDATION_ERROR) rather than matching nothing."""
    if f.status and f.status not in Message.STATUSES:
        raise InputError(errors.VALIDATION_ERROR, f"status must be one of {', '.join(Message.STATUSES)}.")
    qs = Message.objects.filter(project=project)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.direction:
        qs = qs.filter(direction=f.direction)
    if f.channel:
        qs = qs.filter(channel=f.channel)
    if f.error:
        qs = qs.filter(error=f.error.upper())
    if f.case_id:
        # Within the project, so a case id of another project filters to nothing.
        qs = qs.filter(case__project=project, case__case_id=f.case_id)
    if f.worker_id:
        qs = qs.filter(worker__project=project, worker_id=f.worker_id)
    if f.since:
        qs = qs.filter(created_on__gte=f.since)
    if f.until:
        qs = qs.filter(created_on__lt=f.until)
    return qs.select_related("case", "worker").order_by("-created_on", "-pk")


def message(project: Project, message_id: int) -> Message | None:
    """One of the project's messages, with its case and worker; None when the project has no such message."""
    return Message.objects.filter(project=project, pk=message_id).select_related("case", "worker").first()


def sandbox_outbox(project: Project) -> QuerySet[Message]:
    """What the sandbox gateway "sent" (or delivered) for the project, most recently sent first."""
    return (
        Message.objects.filter(
            project=project,
            direction=Message.OUT,
            gateway__type="sandbox",
            status__in=[Message.SENT, Message.DELIVERED],
        )
        .select_related("case", "worker")
        .order_by("-sent_on", "-pk")
    )


def events(project: Project, source: str | None = None) -> QuerySet[MessagingEvent]:
    """The project's messaging events (why messages exist), newest first; `source` filters by origin."""
    qs = MessagingEvent.objects.filter(project=project)
    if source:
        qs = qs.filter(source=source)
    return qs.order_by("-created_on", "-pk")


@dataclass(frozen=True)
class EventOutcome:
    """An event and its outcome: how many of its messages are in each status."""

    event: MessagingEvent
    messages: dict[str, int]


def outcomes(events: Iterable[MessagingEvent]) -> list[EventOutcome]:
    """The events (e.g. one page of events()) with their outcomes, counted in one query for all of them."""
    events = list(events)
    counts: dict[int, dict[str, int]] = {e.pk: {} for e in events}
    rows = Message.objects.filter(event_id__in=list(counts)).values("event_id", "status").annotate(n=Count("pk"))
    for row in rows:
        counts[row["event_id"]][row["status"]] = row["n"]
    return [EventOutcome(e, counts[e.pk]) for e in events]
