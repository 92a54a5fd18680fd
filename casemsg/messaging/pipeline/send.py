"""Processing a claimed batch: checks, rendering, gateway choice, rate limit, and sending window by
window."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.core import errors, phone
from casemsg.gateways import transport
from casemsg.gateways.base import OutboundSms, SendResult
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.messaging import email, render, segments
from casemsg.messaging.models import GatewayPace, Message
from casemsg.messaging.pipeline import failover, pools, whatsapp
from casemsg.messaging.pipeline.checks import contact_of, eligibility, fail, hold_for_quiet_hours, loop_guard
from casemsg.messaging.pipeline.claim import BATCH, claim
from casemsg.messaging.pipeline.results import announce, apply_result, record_opt_outs, store
from casemsg.messaging.signals import messages_sent

log = logging.getLogger(__name__)


# At most this many messages of a worker are on the wire at once (the HTTP session's connection limit):
# results are stored window by window, so a worker killed mid-batch re-sends at most one window.
SEND_WINDOW = 128


# How far ahead a worker may reserve rate-limit slots: it sleeps until each slot, so a short horizon
# keeps messages for later seconds in the queue where any worker can take them.
PACE_HORIZON = 1.0
# A slot more than this far behind the clock when its window goes out is taken again (`reslot_late`).
LATE_SLOT = 0.1


UPDATE_FIELDS = [
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
    "channel",  # a WhatsApp message that fell back to SMS (casemsg.messaging.whatsapp)
    "history",
]


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


def render_all(msgs: list[Message], sts_lang: dict[int, str]) -> None:
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
                fail(m, errors.MESSAGE_BLANK, "The message text is empty.")
            else:
                fail(m, errors.NO_MESSAGE_FOR_LANGUAGE, f"No text for languages {', '.join(x for x in chain if x)}.")
            continue
        case = subject_case(m)
        parent = parents.get((m.project_id, case.parent_id)) if case is not None and case.parent_id else None
        contact = contact_of(m)
        ctx = render.Context(case=case, parent=parent, recipient_name=getattr(contact, "name", "") or "")
        try:
            m.text = render.render(template, ctx)
            subject = (m.content or {}).get("subject") or ""
            if subject:  # an email subject is a template too ("Visit reminder for {case.name}")
                m.subject = render.render(subject, ctx)
        except render.RenderError as exc:
            fail(m, errors.CANNOT_RENDER_MESSAGE, str(exc))
            continue
        m.language = lang
        if not m.text.strip():
            fail(m, errors.MESSAGE_BLANK, "The message is empty after rendering.")


def reserve_slots(gateway: Gateway, wanted: list[int], horizon: float | None = PACE_HORIZON) -> list[float]:
    """Reserve send times for messages of these segment counts, in order, at `gateway.rate_limit`
    segments per second shared by every worker. Returns a time (epoch) per message that fits within
    the horizon (None: no horizon, every one gets a time); the list is shorter than `wanted` when the
    rest must wait."""
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
            if horizon is not None and t >= now + horizon:
                break
            slots.append(t)
            t += max(seg, 1) / gateway.rate_limit
        if slots:
            pace.next_slot = t
            pace.save(update_fields=["next_slot"])
    return slots


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
            fail(m, errors.MESSAGE_IS_STALE, f"Queued for more than {settings.CASEMSG_STALE_AFTER_DAYS} days.")
    _failed, sts = eligibility(msgs)
    live = [m for m in msgs if m.status == Message.SENDING]
    # the contact's own language leads the translation chain only when it is one of the project's
    langs = {m.pk: st.language_code for m in live if (st := sts.get(id(m))) and st.language_source == "contact"}
    render_all(live, langs)

    # WhatsApp first: the window decides free text or template; a message falling back joins the SMS below
    wa = [m for m in live if m.status == Message.SENDING and whatsapp.is_whatsapp(m)]
    wa = whatsapp.prepare(hold_for_quiet_hours(wa, sts, now), sts, now)
    sms = [m for m in live if m.status == Message.SENDING and m.channel == "sms"]
    emails = [m for m in live if m.status == Message.SENDING and m.channel == "email"]
    sms = hold_for_quiet_hours(sms, sts, now)  # before routing: a held message needs no gateway yet

    if sms:
        router = Router({m.project_id for m in sms if m.project_id})
        for m in sms:
            override = ((m.case.properties or {}).get("contact_backend_id") or "").strip() if m.case is not None else ""
            chk = phone.check(m.to)
            if m.gateway is not None and m.gateway.project_id not in (None, m.project_id):
                # a message leaves only through its own project's gateways or the installation's, whatever
                # asked for that gateway (docs/security.md, "Authority")
                fail(m, errors.GATEWAY_NOT_FOUND, f"Gateway '{m.gateway.name}' is not one of this project's.")
                continue
            if m.gateway is not None and not override:
                choice = router.check_country(m.gateway, m.to, chk.region)
            else:
                # a message without a project (none so far) is routed by the installation's map alone
                choice = router.choose(m.project_id or 0, m.to, chk.region, override)
            if choice.gateway is None:
                fail(m, choice.error or errors.NO_SUITABLE_GATEWAY, choice.detail)
                continue
            m.gateway = choice.gateway
            m.gateway_name = choice.gateway.name
            m.segments = segments.count(m.text)
            if m.segments > choice.gateway.max_segments:
                fail(
                    m,
                    errors.MESSAGE_TOO_LONG,
                    f"{m.segments} segments; gateway '{m.gateway_name}' accepts {choice.gateway.max_segments}.",
                )
        failover.route_around(sms, router, now)  # a disabled gateway or an open circuit: the route's next
        senders = pools.assign_senders(sms)  # a gateway's pool: each recipient's own number
        loop_guard(sms)
        reserve_rate([m for m in sms if m.status == Message.SENDING], now)
        pools.pace_numbers(sms, senders, now)
    if wa:
        loop_guard(wa)
        reserve_rate([m for m in wa if m.status == Message.SENDING], now)  # per business number
    if emails:
        loop_guard(emails)

    ready = [m for m in live if m.status == Message.SENDING]
    waiting = {id(m) for m in ready}
    # What goes no further (failed checks, quiet-hours and rate-limit delays) is written at once, in one
    # statement (and no transaction at all when everything goes on: two round trips saved per batch).
    if stopped := [m for m in msgs if id(m) not in waiting]:
        with transaction.atomic():
            done = store(stopped, UPDATE_FIELDS)
            record_opt_outs(done)
            announce(done)
    # Then the rest in windows of at most SEND_WINDOW messages on the wire, each window's results written
    # as soon as they are in: a worker killed mid-batch leaves at most one window's outcome unknown (and
    # re-sends at most that many), not the whole claimed batch.
    for start in range(0, len(ready), SEND_WINDOW):
        send_window(ready[start : start + SEND_WINDOW])


def reserve_rate(sms: list[Message], now: datetime) -> None:
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


def reslot_late(sms: list[Message]) -> None:
    """Give new slots to messages whose reserved slot has already passed.

    A batch reserves up to PACE_HORIZON of its gateway's slots and sends them window by window; a worker
    that falls behind (a slow provider, a starved CPU) reaches a later window after its slots are gone,
    and sending them all at once then would burst past the gateway's rate (bench/cluster.py measured
    +112 % in one second across nodes). Slots taken anew are after every other worker's, so the limit
    holds across workers; they are taken without a horizon, since these messages are already on the wire."""
    now = time.time()
    late: dict[int, list[Message]] = defaultdict(list)
    gateways: dict[int, Gateway] = {}
    for m in sms:
        gw = m.gateway
        if gw is not None and gw.rate_limit and m._slot < now - LATE_SLOT:
            late[gw.pk].append(m)
            gateways[gw.pk] = gw
    for gid, group in late.items():
        for m, slot in zip(group, reserve_slots(gateways[gid], [m.segments for m in group], horizon=None), strict=True):
            m._slot = max(m._slot, slot)


def send_window(msgs: list[Message]) -> None:
    """Hand these messages to their gateways and store the outcomes.

    Before the send, each row counts the attempt and notes when it went on the wire (one statement): if
    the worker dies before the outcome is stored, the sweeper knows exactly which messages may have
    reached the gateway (`SENDING_OUTCOME_UNKNOWN`) and which were never handed over."""
    wire_on = timezone.now()
    # Only rows this worker still holds go out: a sweeper that took a slow worker's rows back for another
    # worker must not see them sent twice. Marking them also renews the claim (claimed_on), so the sweeper
    # counts a live worker's time from its latest window, not from the start of its batch.
    held = _on_wire(msgs, wire_on)
    msgs = [m for m in msgs if held.get(m.pk) == m._token]
    if not msgs:
        return
    for m in msgs:
        m.attempts += 1
        m.wire_on = wire_on
    sms = [m for m in msgs if m.channel in ("sms", whatsapp.CHANNEL)]
    reslot_late(sms)
    emails = [m for m in msgs if m.channel == "email"]
    results: dict[int, SendResult] = {}
    if sms:
        by_gateway: dict[int, tuple[Gateway, list[tuple[OutboundSms, float]]]] = {}
        for m in sms:
            gw = m.gateway
            assert gw is not None
            out = OutboundSms(m.pk, m.to, m.text, m.segments, sender=m._sender, rich=m._rich)
            by_gateway.setdefault(gw.pk, (gw, []))[1].append((out, m._slot))
        results.update(transport.send(list(by_gateway.values())))
    if emails:
        results.update({m.pk: r for m, r in zip(emails, email.send_batch(emails), strict=True)})
    sent_on = timezone.now()
    moved = failover.after_send(msgs, results, sent_on)  # not taken: on to the route's next gateway
    moved |= whatsapp.fall_back_after_send(msgs, results, sent_on)  # WhatsApp's window closed: SMS, if allowed
    for m in msgs:
        r = results.get(m.pk)
        if r is None:  # (every adapter answers each message; this only guards the write below)
            r = SendResult(m.pk, "retry", detail="The gateway adapter gave no result.")
        if m.pk not in moved:
            apply_result(m, r, sent_on)
    with transaction.atomic():
        # only the rows still held: one the sweeper took back while it was on the wire is another worker's
        msgs = store(msgs, UPDATE_FIELDS)
        record_opt_outs(msgs)
        whatsapp.remember_unreachable(msgs, sent_on)  # WhatsApp said a number is not on WhatsApp
        messages_sent.send(Message, messages=[m for m in msgs if m.status in (Message.SENT, Message.DELIVERED)])
        announce(msgs)


def _on_wire(msgs: list[Message], wire_on: datetime) -> dict[int, str]:
    """Count the attempt and note the time on the rows still held by these messages' claims; returns the
    claim of each row marked. One UPDATE … RETURNING (PostgreSQL and SQLite ≥ 3.35), where an UPDATE and
    a SELECT of what it marked took two round trips per window."""
    table = connection.ops.quote_name(Message._meta.db_table)
    ids = [m.pk for m in msgs]
    tokens = sorted({m._token for m in msgs})
    when = Message._meta.get_field("wire_on").get_db_prep_save(wire_on, connection)
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET attempts = attempts + 1, wire_on = %s, claimed_on = %s "
            f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND status = %s "
            f"AND claim IN ({', '.join(['%s'] * len(tokens))}) RETURNING id, claim",
            [when, when, *ids, Message.SENDING, *tokens],
        )
        return {int(pk): claim for pk, claim in cur.fetchall()}
