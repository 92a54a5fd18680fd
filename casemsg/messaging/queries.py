"""Reading the message log: the API (`GET …/messages`, the sandbox outbox, the events), the message-log
page (and the recent messages of the case and worker pages) and `casemsg messages` translate their input
into a MessageFilter and call messages(). The filters, the order and the joins live only here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import TruncDate

from casemsg.cases.models import Case
from casemsg.contacts.status import resolve_language
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway
from casemsg.messaging import render
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
    search: str | None = None  # part of the phone number / address or of the text


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
    search = (f.search or "").strip()
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        # "+1 206-617-1234" finds 12066171234: numbers are stored as digits only.
        by_number = Q(to__icontains=digits) if len(digits) >= 3 and digits != search else Q(pk__in=[])
        qs = qs.filter(Q(to__icontains=search) | by_number | Q(text__icontains=search))
    # the event too: the log shows each message's source (casemsg.messaging.reports.message_source)
    return qs.select_related("case", "worker", "event").order_by("-created_on", "-pk")


def message(project: Project, message_id: int) -> Message | None:
    """One of the project's messages, with its case and worker; None when the project has no such message."""
    return Message.objects.filter(project=project, pk=message_id).select_related("case", "worker").first()


# The phone simulator shows messages the sandbox handled, plus outbound ones that have not gone (queued,
# sending, failed) so the operator sees why nothing arrived.
UNDELIVERED = (Message.QUEUED, Message.SENDING, Message.FAILED)


def conversation(project: Project, number: str, most: int, channel: str = "sms") -> list[Message]:
    """The newest `most` messages of the project's conversation with a number as the phone simulator shows
    it, newest first: what the number sent, and the SMS sent to it through a sandbox gateway or not sent.
    With channel "whatsapp": what it sent on WhatsApp, and what was sent to it through the WhatsApp sandbox
    or not sent."""
    if channel == "whatsapp":
        qs = Message.objects.filter(project=project, to=number, channel="whatsapp").filter(
            Q(direction=Message.IN) | Q(gateway__type="whatsapp_sandbox") | Q(status__in=UNDELIVERED)
        )
        return list(qs.order_by("-created_on", "-pk")[:most])
    qs = Message.objects.filter(project=project, to=number).filter(
        Q(direction=Message.IN)
        | Q(direction=Message.OUT, channel="sms") & (Q(gateway__type="sandbox") | Q(status__in=UNDELIVERED))
    )
    return list(qs.order_by("-created_on", "-pk")[:most])


def daily_counts(project: Project, since: datetime, zone: tzinfo) -> list[tuple[date, str, str, str, int]]:
    """The project's messages created since `since`, counted per (day on the `zone` clock, direction, status,
    error) in one GROUP BY: the dashboard's charts, totals and failure reasons all come from it."""
    return list(
        Message.objects.filter(project=project, created_on__gte=since)
        .annotate(day=TruncDate("created_on", tzinfo=zone))
        .values_list("day", "direction", "status", "error")
        .annotate(n=Count("pk"))
        .order_by()
    )


@dataclass(frozen=True)
class Queue:
    """The project's queued messages right now (recent or not): how many, and when the oldest was created."""

    count: int
    oldest: datetime | None


def queue(project: Project) -> Queue:
    """The project's queue, in one aggregate query."""
    row = Message.objects.filter(project=project, status=Message.QUEUED).aggregate(
        n=Count("pk"), oldest=Min("created_on")
    )
    return Queue(row["n"], row["oldest"])


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


def used_send_keys(keys: Sequence[str]) -> set[str]:
    """Which of these scheduled-occurrence keys (Message.send_key) already have their message."""
    out: set[str] = set()
    for i in range(0, len(keys), 1000):  # bounded IN lists
        out.update(Message.objects.filter(send_key__in=keys[i : i + 1000]).values_list("send_key", flat=True))
    return out


def unsent_texts(project: Project, msgs: Iterable[Message]) -> dict[int, str]:
    """{message id: the text it would have had} for the failed outbound messages among `msgs` that were
    never rendered (they failed their contact checks first), rendered now as the pipeline would, in the
    contact's language. The parents any template names are loaded in one query for all of them."""
    todo = [m for m in msgs if m.direction == Message.OUT and m.status == Message.FAILED and not m.text]
    parent_ids = {m.case.parent_id for m in todo if m.case is not None and m.case.parent_id}
    parents = {c.case_id: c for c in Case.objects.filter(project=project, case_id__in=parent_ids)} if parent_ids else {}
    out: dict[int, str] = {}
    for m in todo:
        contact = m.case if m.case is not None else m.worker
        if isinstance(contact, Case):
            own = (contact.properties or {}).get("language_code") or ""
        else:
            own = contact.language_code if contact is not None else ""
        lang, _source, _problem = resolve_language(own, project)
        template, _ = render.choose_text(m.content or {}, [lang, m.default_language, project.default_language])
        if template is None:
            continue
        parent = parents.get(m.case.parent_id) if m.case is not None and m.case.parent_id else None
        name = getattr(contact, "name", "") or ""  # as the pipeline names the recipient
        try:
            out[m.pk] = render.render(template, render.Context(case=m.case, parent=parent, recipient_name=name))
        except render.RenderError:
            continue
    return out


def waiting_on_gateway(sender: object, gateway: Gateway, **kwargs: object) -> list[str]:
    """gateways.signals.gateway_uses: the messages queued for or being sent through the gateway (removing it
    would send them elsewhere). Two partial indexes hold only such rows (message_due, message_sending)."""
    waiting = Message.objects.filter(gateway=gateway, status__in=[Message.QUEUED, Message.SENDING]).count()
    return [f"{waiting} message{'' if waiting == 1 else 's'} waiting to be sent"] if waiting else []
