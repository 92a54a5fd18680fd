"""The contact rules applied to a batch at send time: eligibility (inactive, opted out, consent, two-way),
the loop guard and quiet hours."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.contacts.status import ContactStatus, Problem, number_statuses, statuses
from casemsg.core import errors, wallclock
from casemsg.messaging.models import Message
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)


def fail(m: Message, code: str, detail: str = "") -> None:
    m.status = Message.FAILED
    m.error = code
    m.error_detail = detail
    m.claim = ""


def contact_of(m: Message) -> Case | MobileWorker | None:
    return m.case if m.case_id else m.worker if m.worker_id else None


def eligibility(msgs: list[Message]) -> tuple[list[Message], dict[int, ContactStatus]]:
    """Apply the contact rules to each message; fail (in memory) those that cannot go.

    Returns the failed messages and each contact's status (keyed by id() of the message)."""
    with_contact: list[tuple[Message, Case | MobileWorker]] = [(m, c) for m in msgs if (c := contact_of(m)) is not None]
    sts: dict[int, ContactStatus] = {}
    if with_contact:
        for m, c in with_contact:
            c.project = m.project  # type: ignore[assignment]  # (a contact's message has its project)
        for (m, _c), cst in zip(with_contact, statuses([c for _m, c in with_contact], routes=False), strict=True):
            sts[id(m)] = cst
    bare = [m for m in msgs if contact_of(m) is None and m.channel in ("sms", "whatsapp")]
    bare_sts = {id(m): b for m, b in zip(bare, number_statuses([(m.to, m.project) for m in bare]), strict=True)}
    failed = []
    for m in msgs:
        if m.status != Message.QUEUED and m.status != Message.SENDING:
            continue
        st = sts.get(id(m))
        if st is not None and m.channel == "email":
            m.to = st.email_address
            problem = st.email.error
        elif st is not None and m.channel == "whatsapp":
            m.to = st.whatsapp_number
            problem = st.whatsapp.error
        elif st is not None:
            m.to = st.phone_number or ""
            problem = (st.two_way_sms if m.requires_two_way else st.sms).error
        elif id(m) in bare_sts:
            problem = bare_sts[id(m)].error
        else:
            problem = Problem(errors.NO_EMAIL_ADDRESS, detail="The message has no recipient.")
        # the exemptions, the same for contacts and bare numbers
        if problem is not None and problem.code == errors.NO_CONSENT and m.kind != Message.NORMAL:
            problem = None  # the opt-in request (and STOP/HELP answers) may reach it
        if problem is not None and problem.code == errors.PHONE_OPTED_OUT and m.kind == Message.COMPLIANCE:
            problem = None  # the one confirmation of a STOP
        if problem is not None:
            fail(m, problem.code, problem.detail or "")
            failed.append(m)
    return failed, sts


def loop_guard(msgs: list[Message]) -> None:
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
            fail(m, errors.LOOP_DETECTED, f"The same text went to {m.to} {limit} times in the loop window.")


def subject_to_quiet_hours(m: Message) -> bool:
    """Quiet hours hold what nobody is waiting for: a scheduled occurrence (a broadcast's or an alert's,
    `send_key`) and the consent question (an opt-in request or a verification code). Everything else goes
    at once: replies in a conversation the person started (keyword and survey replies, STOP/START/HELP
    answers: they carry no send key and are not opt-in requests), sends a person asked for through the
    API (the caller chose the moment), and email."""
    if m.channel not in ("sms", "whatsapp") or m.kind == Message.COMPLIANCE:
        return False
    return bool(m.send_key) or m.kind == Message.OPT_IN_REQUEST


def hold_for_quiet_hours(sms: list[Message], sts: dict[int, ContactStatus], now: datetime) -> list[Message]:
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
