"""The one send path. Every outbound message — API call, broadcast, alert, survey question, keyword
reply — is created here and delivered here:

    queue → claim → eligibility (contact rules, consent, opt-out, two-way) → render + translation →
    gateway choice → loop guard → rate limit (segments/second, shared) → send → status

Workers claim due rows with a conditional UPDATE (plus `FOR UPDATE SKIP LOCKED` on PostgreSQL), so a
message is never sent twice by two workers; a sweeper re-queues rows stuck in `sending`.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.contacts.models import PhoneEntry
from casemsg.contacts.optouts import OptedOut
from casemsg.contacts.status import ContactStatus, statuses
from casemsg.core import bulk, errors, phone, wallclock
from casemsg.gateways import transport
from casemsg.gateways.base import OutboundSms, SendResult
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.messaging import email, render, segments
from casemsg.messaging.models import GatewayPace, Message, MessagingEvent
from casemsg.messaging.signals import messages_queued, messages_sent, opt_out_reported, statuses_changed
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)

BATCH = 500
# At most this many messages of a worker are on the wire at once (the HTTP session's connection limit):
# results are stored window by window, so a worker killed mid-batch re-sends at most one window.
SEND_WINDOW = 128
# How far ahead a worker may reserve rate-limit slots: it sleeps until each slot, so a short horizon
# keeps messages for later seconds in the queue where any worker can take them.
PACE_HORIZON = 1.0

_UPDATE_FIELDS = [
    "status",
    "error",
    "error_detail",
    "delay_reason",
    "attempts",
    "next_attempt_on",
    "claim",
    "claimed_on",
    "gateway",
    "gateway_name",
    "provider_id",
    "text",
    "segments",
    "language",
    "to",
    "sent_on",
    "subject",
]


# --- creating messages ---------------------------------------------------------------------------
@dataclass
class MessageSpec:
    """What to send to whom. Exactly one of case / worker / to (a bare number, e.g. an unknown sender)."""

    channel: str = "sms"
    case: Case | None = None
    worker: MobileWorker | None = None
    to: str = ""
    text: str | None = None
    translations: dict[str, str] | None = None
    subject: str = ""
    html: str = ""
    default_language: str = ""
    kind: str = Message.NORMAL
    requires_two_way: bool = False
    send_after: datetime | None = None  # an aware datetime (UTC); None = now
    gateway: Gateway | None = None  # replies go back through the gateway the inbound message came on
    send_key: str = ""  # a scheduled occurrence's unique key (see Message.send_key)
    # The case a message to a mobile worker is about (an alert to the case's owner): its {case.…} fields
    # render from this case. Kept in the content, so it needs no column.
    about: Case | None = None
    priority: int | None = None  # Message.REPLY or BULK; None: REPLY inside `replying()`, else BULK
    simulated: bool = False  # a reply to the phone simulator (Message.simulated)


# Set while the router handles inbound messages: whatever it queues (keyword and compliance replies, and
# the next question a survey engine queues after an answer) is a reply, claimed before bulk sends.
_replying: contextvars.ContextVar[bool] = contextvars.ContextVar("casemsg_replying", default=False)


@contextmanager
def replying() -> Iterator[None]:
    """Messages queued inside this block answer a person who is waiting (Message.REPLY priority)."""
    token = _replying.set(True)
    try:
        yield
    finally:
        _replying.reset(token)


def _priority(s: MessageSpec) -> int:
    if s.priority is not None:
        return s.priority
    return Message.REPLY if _replying.get() else Message.BULK


def _content(s: MessageSpec) -> dict:
    """What to say, kept as templates: rendered at send time, in the language chosen then."""
    content: dict = {}
    if s.text is not None:
        content["text"] = s.text
    if s.translations:
        content["translations"] = s.translations
    if s.subject:
        content["subject"] = s.subject  # the template; `subject` holds it rendered once sent
    if s.about is not None and s.case is None:
        content["about_case"] = s.about.pk
    return content


def queue(
    project: Project | None, specs: list[MessageSpec], event: MessagingEvent | None, precheck: bool | None = None
) -> list[Message]:
    """Create messages (queued) in bulk, fail at once those that cannot go now, and wake a worker.

    `precheck` (default: for a single message) runs the eligibility checks at once so an API caller
    learns straight away why a message cannot go; bulk callers (broadcasts) skip it — the same checks
    run at send time — and take the fast insert path, which returns no rows.
    Opens its own transaction (nested in the caller's); the worker is woken after commit."""
    now = timezone.now()
    if precheck is None:
        precheck = len(specs) == 1
    if not precheck:
        _insert_queued(project, specs, event, now)
        return []
    rows = []
    for s in specs:
        content = _content(s)
        rows.append(
            Message(
                project=project,
                event=event,
                channel=s.channel,
                kind=s.kind,
                priority=_priority(s),
                requires_two_way=s.requires_two_way,
                case=s.case,
                worker=s.worker,
                to=s.to,
                content=content,
                default_language=s.default_language,
                subject=s.subject,
                html=s.html,
                gateway=s.gateway,
                gateway_name=s.gateway.name if s.gateway else "",
                simulated=s.simulated,
                created_on=now,
                next_attempt_on=s.send_after or now,
            )
        )
    with transaction.atomic():
        # Tell the caller at once what cannot go (the same checks run again at send time). Checked before
        # the rows are written, so every row, queued ones too, is stored with the number or address found.
        _eligibility(rows)
        Message.objects.bulk_create(rows, batch_size=BATCH)
        for m in rows:
            m.project = project
        if any(m.status == Message.QUEUED for m in rows):
            transaction.on_commit(_wake_replies if any(m.priority for m in rows) else _wake)
    return rows


def _row(project: Project | None, s: MessageSpec, event: MessagingEvent | None, now: datetime) -> dict:
    """The message row (attname: value) of one spec, as queued without the precheck."""
    return {
        "project_id": project.pk if project else None,
        "event_id": event.pk if event else None,
        "channel": s.channel,
        "kind": s.kind,
        "priority": _priority(s),
        "requires_two_way": s.requires_two_way,
        "case_id": s.case.pk if s.case else None,
        "worker_id": s.worker.pk if s.worker else None,
        "to": s.to,
        "content": _content(s),
        "default_language": s.default_language,
        "subject": s.subject,
        "html": s.html,
        "gateway_id": s.gateway.pk if s.gateway else None,
        "gateway_name": s.gateway.name if s.gateway else "",
        "next_attempt_on": s.send_after or now,
        "created_on": now,
        "send_key": s.send_key,
        "simulated": s.simulated,
    }


def _insert_queued(project: Project | None, specs: list[MessageSpec], event: MessagingEvent | None, now) -> None:
    """Bulk insert through casemsg.core.bulk (one prepared statement): Django's bulk_create rebuilds its SQL for
    every ~30-row batch on SQLite, which made queueing a broadcast slower than sending it."""
    if not specs:
        return
    rows = [_row(project, s, event, now) for s in specs]
    with transaction.atomic():
        # Scheduled occurrences carry a unique send key: one already queued (an earlier tick that got this
        # far) is skipped by the database, never sent twice.
        bulk.insert_rows(Message, rows, ignore_conflicts=any(s.send_key for s in specs))
        transaction.on_commit(_wake_replies if any(r["priority"] for r in rows) else _wake)


def queue_each(entries: list[tuple[Project | None, MessageSpec, MessagingEvent | None]]) -> None:
    """Queue messages of different projects and events (a batch of inbound messages' replies) in one bulk
    insert, as `queue(…, precheck=False)` would queue each; the worker is woken once, after commit."""
    if not entries:
        return
    now = timezone.now()
    rows = [_row(project, s, event, now) for project, s, event in entries]
    with transaction.atomic():
        bulk.insert_rows(Message, rows)
        transaction.on_commit(_wake_replies if any(r["priority"] for r in rows) else _wake)


def queue_select(
    project: Project | None,
    spec: MessageSpec,
    event: MessagingEvent | None,
    source: str,
    params: list,
    recipients: dict[str, str],
) -> int:
    """Queue one message per row of `source` (SQL after FROM, with `params`) in one INSERT … SELECT: the
    same message as `queue(…, precheck=False)` would store for `spec`, except the columns `recipients` names
    (attname → SQL over the source: "case_id", "worker_id", "send_key"), which differ per row. Rows whose
    send key was already queued are skipped (ON CONFLICT DO NOTHING). Returns how many were queued; the
    worker is woken after commit."""
    row = _row(project, spec, event, timezone.now())
    with transaction.atomic():
        n = bulk.insert_select(Message, row, recipients, source, params, ignore_conflicts=True)
        transaction.on_commit(_wake)
    return n


def _wake() -> None:
    messages_queued.send(Message)


def _wake_replies() -> None:
    messages_queued.send(Message, replies=True)


# --- claiming ------------------------------------------------------------------------------------
_TABLE = Message._meta.db_table


def _claim_rows(token: str, now: datetime, limit: int, replies: bool) -> int:
    """Flip up to `limit` due rows (only replies, or any) to sending under `token`; returns how many."""
    if settings.IS_POSTGRES:
        # one statement: pick due rows no other worker holds (SKIP LOCKED) and flip them to sending
        reply = "AND priority > 0 " if replies else ""
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {_TABLE} SET status = %s, claim = %s, claimed_on = %s WHERE id IN ("
                f"SELECT id FROM {_TABLE} WHERE status = %s AND next_attempt_on <= %s {reply}"
                "ORDER BY next_attempt_on LIMIT %s FOR UPDATE SKIP LOCKED) AND status = %s",
                [Message.SENDING, token, now, Message.QUEUED, now, limit, Message.QUEUED],
            )
            return cur.rowcount
    due = Message.objects.filter(status=Message.QUEUED, next_attempt_on__lte=now)
    if replies:
        due = due.filter(priority__gt=0)
    with transaction.atomic():
        ids = list(due.order_by("next_attempt_on").values_list("pk", flat=True)[:limit])
        if not ids:
            return 0
        return Message.objects.filter(pk__in=ids, status=Message.QUEUED).update(
            status=Message.SENDING, claim=token, claimed_on=now
        )


def claim(limit: int = BATCH, replies_only: bool = False) -> list[Message]:
    """Take up to `limit` due messages for this worker, replies first (Message.REPLY: a person is waiting
    for them; a broadcast is not). Only one worker can flip a row from queued to sending (the UPDATE is
    conditional on the status), so no message is ever sent twice."""
    now = timezone.now()
    token = uuid.uuid4().hex
    n = _claim_rows(token, now, limit, replies=True)
    if n < limit and not replies_only:
        n += _claim_rows(token, now, limit - n, replies=False)
    if not n:
        return []
    # in the order they were due (the loop guard keeps the earliest of repeated texts), replies first
    msgs = list(
        Message.objects.filter(claim=token, status=Message.SENDING)
        .select_related("case", "worker", "gateway")
        .order_by("-priority", "next_attempt_on", "pk")
    )
    # Projects are few and wide (a dozen JSON settings): load each once per batch, not once per row.
    projects = Project.objects.in_bulk({m.project_id for m in msgs if m.project_id})
    for m in msgs:
        m.project = projects.get(m.project_id)
    return msgs


def deliver_due(batch_size: int = BATCH, max_batches: int | None = None, replies_only: bool = False) -> int:
    """Worker loop body: claim and process batches until nothing is due (with `replies_only`, no reply).
    Returns messages processed."""
    done = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        msgs = claim(batch_size, replies_only=replies_only)
        if not msgs:
            break
        process(msgs)
        done += len(msgs)
        batches += 1
    return done


# --- the checks ----------------------------------------------------------------------------------
def _fail(m: Message, code: str, detail: str = "") -> None:
    m.status = Message.FAILED
    m.error = code
    m.error_detail = detail
    m.claim = ""


def _contact(m: Message):
    return m.case if m.case_id else m.worker if m.worker_id else None


def _eligibility(msgs: list[Message]) -> tuple[list[Message], dict[int, ContactStatus]]:
    """Apply the contact rules to each message; fail (in memory) those that cannot go.

    Returns the failed messages and each contact's status (keyed by id() of the message)."""
    with_contact = [m for m in msgs if _contact(m) is not None]
    sts: dict[int, ContactStatus] = {}
    if with_contact:
        contacts = []
        for m in with_contact:
            c = _contact(m)
            c.project = m.project
            contacts.append(c)
        for m, st in zip(with_contact, statuses(contacts), strict=True):
            sts[id(m)] = st
    bare = [m for m in msgs if _contact(m) is None and m.channel == "sms"]
    opted_out = OptedOut(())
    verified_numbers: set[str] = set()
    if bare:
        numbers = [m.to for m in bare]
        opted_out = OptedOut(numbers)
        verified_numbers = set(
            PhoneEntry.objects.filter(phone_number__in=numbers, verified=True).values_list("phone_number", flat=True)
        )
    failed = []
    for m in msgs:
        if m.status != Message.QUEUED and m.status != Message.SENDING:
            continue
        found = sts.get(id(m))
        if found is not None:
            st = found
            if m.channel == "email":
                m.to = st.email_address
                problem = st.email.error
            else:
                m.to = st.phone_number or ""
                problem = (st.two_way_sms if m.requires_two_way else st.sms).error
                if problem is not None and problem.code == errors.NO_CONSENT and m.kind != Message.NORMAL:
                    problem = None  # the opt-in request (and STOP/HELP answers) may reach it
                if problem is not None and problem.code == errors.PHONE_OPTED_OUT and m.kind == Message.COMPLIANCE:
                    problem = None  # the one confirmation of a STOP
            if problem is not None:
                _fail(m, problem.code, problem.detail or "")
                failed.append(m)
        elif m.channel == "sms":
            chk = phone.check(m.to)
            if not chk.ok:
                _fail(m, chk.error or errors.INVALID_PHONE_NUMBER, chk.message)
            elif m.kind != Message.COMPLIANCE and opted_out(m.to, m.project_id):
                _fail(m, errors.PHONE_OPTED_OUT, f"{m.to} texted STOP.")
            elif (
                m.kind == Message.NORMAL
                and phone.needs_consent(chk, m.project.consent_regions if m.project else None)
                and m.to not in verified_numbers
            ):
                _fail(m, errors.NO_CONSENT, f"{m.to} has no recorded consent.")
            if m.status == Message.FAILED:
                failed.append(m)
        else:
            _fail(m, errors.NO_EMAIL_ADDRESS, "The message has no recipient.")
            failed.append(m)
    return failed, sts


def _render_all(msgs: list[Message], sts_lang: dict[int, str]) -> None:
    about_pks = {(m.content or {}).get("about_case") for m in msgs if m.case is None}
    about = Case.objects.in_bulk({pk for pk in about_pks if isinstance(pk, int)}) if about_pks != {None} else {}

    def subject_case(m: Message) -> Case | None:
        """The case whose fields {case.…} shows: the recipient case, or the case a worker's message is about."""
        return m.case if m.case is not None else about.get((m.content or {}).get("about_case") or 0)

    parent_ids = {
        (m.project_id, c.parent_id)
        for m in msgs
        if (c := subject_case(m)) is not None and c.parent_id and "parent" in str(m.content)
    }
    parents: dict[tuple[int | None, str], Case] = {}
    if parent_ids:
        q = Q()
        for pid, cid in parent_ids:
            q |= Q(project_id=pid, case_id=cid)
        parents = {(c.project_id, c.case_id): c for c in Case.objects.filter(q)}
    for m in msgs:
        chain = [sts_lang.get(m.pk, ""), m.default_language, m.project.default_language if m.project else ""]
        template, lang = render.choose_text(m.content or {}, chain)
        if template is None:
            content = m.content or {}
            if "text" in content or any(k in chain for k in content.get("translations") or {}):
                _fail(m, errors.MESSAGE_BLANK, "The message text is empty.")
            else:
                _fail(m, errors.NO_MESSAGE_FOR_LANGUAGE, f"No text for languages {', '.join(x for x in chain if x)}.")
            continue
        case = subject_case(m)
        parent = parents.get((m.project_id, case.parent_id)) if case is not None and case.parent_id else None
        contact = _contact(m)
        ctx = render.Context(case=case, parent=parent, recipient_name=getattr(contact, "name", "") or "")
        try:
            m.text = render.render(template, ctx)
            subject = (m.content or {}).get("subject") or ""
            if subject:  # an email subject is a template too ("Visit reminder for {case.name}")
                m.subject = render.render(subject, ctx)
        except render.RenderError as exc:
            _fail(m, errors.CANNOT_RENDER_MESSAGE, str(exc))
            continue
        m.language = lang
        if not m.text.strip():
            _fail(m, errors.MESSAGE_BLANK, "The message is empty after rendering.")


def _loop_guard(msgs: list[Message]) -> None:
    limit = settings.CASEMSG_LOOP_LIMIT
    since = timezone.now() - timedelta(seconds=settings.CASEMSG_LOOP_WINDOW_SECONDS)
    tos = {m.to for m in msgs if m.status == Message.SENDING}
    if not tos:
        return
    counts = {
        (r["to"], r["text"]): r["n"]
        for r in Message.objects.filter(
            to__in=tos, direction=Message.OUT, status__in=[Message.SENT, Message.DELIVERED], sent_on__gte=since
        )
        .values("to", "text")
        .annotate(n=Count("pk"))
    }
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for m in msgs:
        if m.status != Message.SENDING or m.kind == Message.COMPLIANCE:
            continue
        key = (m.to, m.text)
        seen[key] += 1
        if counts.get(key, 0) + seen[key] > limit:
            _fail(m, errors.LOOP_DETECTED, f"The same text went to {m.to} {limit} times in the loop window.")


# --- rate limit ----------------------------------------------------------------------------------
def reserve_slots(gateway: Gateway, wanted: list[int]) -> list[float]:
    """Reserve send times for messages of these segment counts, in order, at `gateway.rate_limit`
    segments per second shared by every worker. Returns a time (epoch) per message that fits within
    the horizon; the list is shorter than `wanted` when the rest must wait."""
    if not gateway.rate_limit:
        now = time.time()
        return [now] * len(wanted)
    with transaction.atomic():
        GatewayPace.objects.get_or_create(gateway=gateway)
        pace = GatewayPace.objects.select_for_update().get(gateway=gateway)
        now = time.time()
        t = max(pace.next_slot, now)
        slots: list[float] = []
        for seg in wanted:
            if t >= now + PACE_HORIZON:
                break
            slots.append(t)
            t += max(seg, 1) / gateway.rate_limit
        if slots:
            pace.next_slot = t
            pace.save(update_fields=["next_slot"])
    return slots


# --- processing a claimed batch ------------------------------------------------------------------
def process(msgs: list[Message]) -> None:
    now = timezone.now()
    for m in msgs:
        m._token = m.claim  # the claim this worker holds them by (the checks below clear `claim`)
        m.delay_reason = ""
        m.error_detail = ""
    # Too old to be worth sending: checked on the claimed batch, so no scan of the queue is needed here
    # (the ticker's expire_stale() catches the rest every 30 s).
    cutoff = now - timedelta(days=settings.CASEMSG_STALE_AFTER_DAYS)
    for m in msgs:
        if m.created_on < cutoff:
            _fail(m, errors.MESSAGE_IS_STALE, f"Queued for more than {settings.CASEMSG_STALE_AFTER_DAYS} days.")
    _failed, sts = _eligibility(msgs)
    live = [m for m in msgs if m.status == Message.SENDING]
    # the contact's own language leads the translation chain only when it is one of the project's
    langs = {m.pk: st.language_code for m in live if (st := sts.get(id(m))) and st.language_source == "contact"}
    _render_all(live, langs)

    sms = [m for m in live if m.status == Message.SENDING and m.channel == "sms"]
    emails = [m for m in live if m.status == Message.SENDING and m.channel == "email"]
    sms = _hold_for_quiet_hours(sms, sts, now)  # before routing: a held message needs no gateway yet

    if sms:
        router = Router({m.project_id for m in sms if m.project_id})
        for m in sms:
            override = ((m.case.properties or {}).get("contact_backend_id") or "").strip() if m.case is not None else ""
            chk = phone.check(m.to)
            if m.gateway is not None and m.gateway.project_id not in (None, m.project_id):
                # a message leaves only through its own project's gateways or the installation's, whatever
                # asked for that gateway (docs/security.md, "Authority")
                _fail(m, errors.GATEWAY_NOT_FOUND, f"Gateway '{m.gateway.name}' is not one of this project's.")
                continue
            if m.gateway is not None and not override:
                choice = router.check_country(m.gateway, m.to, chk.region)
            else:
                # a message without a project (none so far) is routed by the installation's map alone
                choice = router.choose(m.project_id or 0, m.to, chk.region, override)
            if choice.gateway is None:
                _fail(m, choice.error or errors.NO_SUITABLE_GATEWAY, choice.detail)
                continue
            m.gateway = choice.gateway
            m.gateway_name = choice.gateway.name
            m.segments = segments.count(m.text)
            if m.segments > choice.gateway.max_segments:
                _fail(
                    m,
                    errors.MESSAGE_TOO_LONG,
                    f"{m.segments} segments; gateway '{m.gateway_name}' accepts {choice.gateway.max_segments}.",
                )
        _loop_guard(sms)
        _reserve_rate([m for m in sms if m.status == Message.SENDING], now)
    if emails:
        _loop_guard(emails)

    ready = [m for m in live if m.status == Message.SENDING]
    waiting = {id(m) for m in ready}
    # What goes no further (failed checks, quiet-hours and rate-limit delays) is written at once, in one statement.
    with transaction.atomic():
        done = _still_ours([m for m in msgs if id(m) not in waiting])
        bulk.update_rows(done, _UPDATE_FIELDS)
        _record_opt_outs(done)
        _announce(done)
    # Then the rest in windows of at most SEND_WINDOW messages on the wire, each window's results written
    # as soon as they are in: a worker killed mid-batch leaves at most one window's outcome unknown (and
    # re-sends at most that many), not the whole claimed batch.
    for start in range(0, len(ready), SEND_WINDOW):
        _send_window(ready[start : start + SEND_WINDOW])


def subject_to_quiet_hours(m: Message) -> bool:
    """Quiet hours hold what nobody is waiting for: a scheduled occurrence (a broadcast's or an alert's,
    `send_key`) and the consent question (an opt-in request or a verification code). Everything else goes
    at once: replies in a conversation the person started (keyword and survey replies, STOP/START/HELP
    answers: they carry no send key and are not opt-in requests), sends a person asked for through the
    API (the caller chose the moment), and email."""
    if m.channel != "sms" or m.kind == Message.COMPLIANCE:
        return False
    return bool(m.send_key) or m.kind == Message.OPT_IN_REQUEST


def _hold_for_quiet_hours(sms: list[Message], sts: dict[int, ContactStatus], now: datetime) -> list[Message]:
    """Delay (QUIET_HOURS) each subject SMS due inside its project's quiet hours, read on the recipient's
    clock (the contact status's zone; the project's for a message to a bare number), until they end.
    Returns the messages that go on."""
    zones: dict[str, ZoneInfo] = {}
    going = []
    for m in sms:
        p = m.project
        if p is None or p.quiet_hours_start is None or p.quiet_hours_end is None or not subject_to_quiet_hours(m):
            going.append(m)
            continue
        st = sts.get(id(m))
        name = st.time_zone if st is not None else p.default_time_zone
        tz = zones.get(name) or zones.setdefault(name, wallclock.zone(name))
        until = wallclock.quiet_until(now, tz, p.quiet_hours_start, p.quiet_hours_end)
        if until is None:
            going.append(m)
            continue
        # a delay, not a failure: back to the queue until the recipient's quiet hours end
        m.status = Message.QUEUED
        m.delay_reason = errors.QUIET_HOURS
        m.claim = ""
        m.next_attempt_on = until
    return going


def _reserve_rate(sms: list[Message], now: datetime) -> None:
    """Reserve each SMS's slot in its gateway's rate limit; those past the horizon wait (a delay)."""
    by_gateway: dict[int, list[Message]] = defaultdict(list)
    gateways: dict[int, Gateway] = {}
    for m in sms:
        gw = m.gateway
        assert gw is not None  # every SMS reaching here was routed
        by_gateway[gw.pk].append(m)
        gateways[gw.pk] = gw
    for gid, group in by_gateway.items():
        slots = reserve_slots(gateways[gid], [m.segments for m in group])
        for m, slot in zip(group, slots, strict=False):
            m._slot = slot
        for m in group[len(slots) :]:
            # a delay, not a failure: back to the queue for the next free second
            m.status = Message.QUEUED
            m.delay_reason = errors.RATE_LIMITED
            m.claim = ""
            m.next_attempt_on = now + timedelta(seconds=PACE_HORIZON)


def _send_window(msgs: list[Message]) -> None:
    """Hand these messages to their gateways and store the outcomes.

    Before the send, each row counts the attempt and notes when it went on the wire (one statement): if
    the worker dies before the outcome is stored, the sweeper knows exactly which messages may have
    reached the gateway (`SENDING_OUTCOME_UNKNOWN`) and which were never handed over."""
    wire_on = timezone.now()
    # Only rows this worker still holds go out: a sweeper that took a slow worker's rows back for another
    # worker must not see them sent twice. Marking them also renews the claim (claimed_on), so the sweeper
    # counts a live worker's time from its latest window, not from the start of its batch.
    ids = [m.pk for m in msgs]
    tokens = {m._token for m in msgs}
    Message.objects.filter(pk__in=ids, status=Message.SENDING, claim__in=tokens).update(
        attempts=F("attempts") + 1, wire_on=wire_on, claimed_on=wire_on
    )
    held = dict(Message.objects.filter(pk__in=ids, wire_on=wire_on).values_list("pk", "claim"))
    msgs = [m for m in msgs if held.get(m.pk) == m._token]
    if not msgs:
        return
    for m in msgs:
        m.attempts += 1
        m.wire_on = wire_on
    sms = [m for m in msgs if m.channel == "sms"]
    emails = [m for m in msgs if m.channel == "email"]
    results: dict[int, SendResult] = {}
    if sms:
        by_gateway: dict[int, tuple[Gateway, list[tuple[OutboundSms, float]]]] = {}
        for m in sms:
            gw = m.gateway
            assert gw is not None
            by_gateway.setdefault(gw.pk, (gw, []))[1].append((OutboundSms(m.pk, m.to, m.text, m.segments), m._slot))
        results.update(transport.send(list(by_gateway.values())))
    if emails:
        results.update({m.pk: r for m, r in zip(emails, email.send_batch(emails), strict=True)})
    sent_on = timezone.now()
    for m in msgs:
        r = results.get(m.pk)
        if r is None:  # (every adapter answers each message; this only guards the write below)
            r = SendResult(m.pk, "retry", detail="The gateway adapter gave no result.")
        _apply_result(m, r, sent_on)
    with transaction.atomic():
        # A row the sweeper took back while it was on the wire is another worker's now: its history says
        # SENDING_OUTCOME_UNKNOWN, and this outcome must not overwrite that worker's.
        msgs = _still_ours(msgs)
        bulk.update_rows(msgs, _UPDATE_FIELDS)
        _record_opt_outs(msgs)
        messages_sent.send(Message, messages=[m for m in msgs if m.status in (Message.SENT, Message.DELIVERED)])
        _announce(msgs)


def _still_ours(msgs: list[Message]) -> list[Message]:
    """Those of `msgs` this worker still holds (by its claim token), locked for the write that follows on
    PostgreSQL (SQLite's write transactions are serialised already). Call inside a transaction."""
    if not msgs:
        return msgs
    qs = Message.objects.filter(pk__in=[m.pk for m in msgs], claim__in={m._token for m in msgs})
    if settings.IS_POSTGRES:
        qs = qs.select_for_update()
    held = dict(qs.values_list("pk", "claim"))
    return [m for m in msgs if held.get(m.pk) == m._token]


def _apply_result(m: Message, r: SendResult, sent_on: datetime) -> None:
    """The outcome of one attempt (already counted in `attempts` when it went on the wire)."""
    m.claim = ""
    if r.status in ("sent", "delivered"):
        m.status = Message.SENT if r.status == "sent" else Message.DELIVERED
        m.provider_id = r.provider_id or ""
        m.sent_on = sent_on
        m.error = ""
    elif r.status == "retry":
        if m.attempts >= settings.CASEMSG_MAX_ATTEMPTS:
            code = errors.EMAIL_GATEWAY_ERROR if m.channel == "email" else errors.TOO_MANY_UNSUCCESSFUL_ATTEMPTS
            _fail(m, code, f"{m.attempts} attempts; last: {r.detail}")
        else:
            m.status = Message.QUEUED
            m.error_detail = r.detail
            backoff = settings.CASEMSG_RETRY_BASE_SECONDS * (2 ** (m.attempts - 1))
            m.next_attempt_on = timezone.now() + timedelta(seconds=backoff)
    else:
        _fail(m, r.error or errors.GATEWAY_ERROR, r.detail)
        if r.opt_out:
            m._opt_out = True  # recorded with the batch's results


def _record_opt_outs(msgs: list[Message]) -> None:
    numbers = {m.to for m in msgs if m._opt_out}
    if not numbers:
        return
    reported = []
    for m in msgs:
        if m.to in numbers:
            reported.append(m)
            numbers.discard(m.to)
    opt_out_reported.send(Message, messages=reported)


def _announce(msgs: list[Message]) -> None:
    """One statuses_changed hook per batch, for the messages that reached an outcome (not the delays)."""
    final = [m for m in msgs if m.status in (Message.SENT, Message.DELIVERED, Message.FAILED)]
    if final:
        statuses_changed.send(Message, messages=final)


# --- housekeeping --------------------------------------------------------------------------------
def expire_stale() -> int:
    """Queued messages older than the stale limit are not sent: their content is likely outdated."""
    cutoff = timezone.now() - timedelta(days=settings.CASEMSG_STALE_AFTER_DAYS)
    return Message.objects.filter(
        status=Message.QUEUED, next_attempt_on__lte=timezone.now(), created_on__lt=cutoff
    ).update(
        status=Message.FAILED,
        error=errors.MESSAGE_IS_STALE,
        error_detail=f"Queued for more than {settings.CASEMSG_STALE_AFTER_DAYS} days.",
    )


def sweep(timeout_seconds: int | None = None) -> int:
    """Return rows stuck in `sending` (their worker died) to the queue.

    A row that was on the wire when its worker died may or may not have reached the gateway: it is sent
    again (its `attempts` already counts the first try) and its history says SENDING_OUTCOME_UNKNOWN. A
    row its worker had claimed but not yet handed over simply goes back to the queue."""
    timeout_seconds = settings.CASEMSG_SENDING_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
    now = timezone.now()
    stuck = Message.objects.filter(status=Message.SENDING, claimed_on__lt=now - timedelta(seconds=timeout_seconds))
    never_sent = stuck.filter(Q(wire_on__isnull=True) | Q(wire_on__lt=F("claimed_on")))
    n = never_sent.update(status=Message.QUEUED, claim="", next_attempt_on=now)
    unknown = list(stuck.only("pk", "history", "attempts")[:BATCH])
    while unknown:
        detail = "A worker stopped while sending; whether the gateway got it is unknown. It is sent again."
        for m in unknown:
            m.status, m.claim, m.next_attempt_on = Message.QUEUED, "", now
            m.delay_reason, m.error_detail = errors.SENDING_OUTCOME_UNKNOWN, detail
            m.history = [
                *(m.history or []),
                {"at": now.isoformat(), "code": errors.SENDING_OUTCOME_UNKNOWN, "attempt": m.attempts},
            ]
        with transaction.atomic():
            bulk.update_rows(unknown, ["status", "claim", "next_attempt_on", "delay_reason", "error_detail", "history"])
        n += len(unknown)
        unknown = list(stuck.only("pk", "history", "attempts")[:BATCH])
    return n


def has_due(replies_only: bool = False, older_than: timedelta | None = None) -> bool:
    """Whether a message is due (a reply only; one due for longer than `older_than`)."""
    due = timezone.now() - (older_than or timedelta(0))
    qs = Message.objects.filter(status=Message.QUEUED, next_attempt_on__lte=due)
    return (qs.filter(priority__gt=0) if replies_only else qs).exists()


def apply_status_updates(gateway: Gateway, updates) -> int:
    """Delivery reports from a gateway's status callback, applied in bulk."""
    if not updates:
        return 0
    by_id = {u.provider_id: u for u in updates if u.provider_id}
    msgs = list(Message.objects.filter(gateway=gateway, provider_id__in=list(by_id)))
    now = timezone.now()
    changed = []
    for m in msgs:
        u = by_id[m.provider_id]
        if u.status == "delivered":
            # a delivery report is final: it also settles an earlier "failed" report that was premature
            m.status, m.delivered_on, m.error, m.error_detail = Message.DELIVERED, now, "", ""
        elif u.status == "failed" and m.status != Message.DELIVERED:
            m.status, m.error, m.error_detail = Message.FAILED, u.error or errors.GATEWAY_ERROR, u.detail
            if u.opt_out:
                m._opt_out = True  # the provider says the number opted out: record it (as a STOP through that gateway)
        elif u.status == "sent" and m.status in (Message.QUEUED, Message.SENDING):
            m.status = Message.SENT
        else:
            continue
        changed.append(m)
    with transaction.atomic():
        bulk.update_rows(changed, ["status", "delivered_on", "error", "error_detail"])
        _record_opt_outs(changed)
        _announce(changed)
    return len(changed)


def close_db() -> None:
    connection.close()
