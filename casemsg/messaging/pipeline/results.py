"""Storing what gateways answered: each message's outcome, window by window, delivery reports, and the
opt-outs providers report."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from casemsg.core import bulk, errors
from casemsg.gateways.base import SendResult, StatusUpdate
from casemsg.gateways.models import Gateway
from casemsg.messaging.models import Message
from casemsg.messaging.pipeline import whatsapp
from casemsg.messaging.pipeline.checks import fail
from casemsg.messaging.signals import opt_out_reported, statuses_changed

log = logging.getLogger(__name__)


def store(msgs: list[Message], fields: list[str]) -> list[Message]:
    """Write these fields of the messages this worker still holds (by its claim token), in one statement
    that checks the hold and writes (casemsg.core.bulk.update_held); returns those written. A row the
    sweeper took back while it was on the wire is another worker's now: its history says
    SENDING_OUTCOME_UNKNOWN, and this outcome must not overwrite that worker's. Call inside a transaction."""
    if not msgs:
        return msgs
    written = bulk.update_held(msgs, fields, held_by="claim", mark="_token")
    return [m for m in msgs if m.pk in written]


def apply_result(m: Message, r: SendResult, sent_on: datetime) -> None:
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
            fail(m, code, f"{m.attempts} attempts; last: {r.detail}")
        else:
            m.status = Message.QUEUED
            m.error_detail = r.detail
            backoff = settings.CASEMSG_RETRY_BASE_SECONDS * (2 ** (m.attempts - 1))
            m.next_attempt_on = timezone.now() + timedelta(seconds=backoff)
    else:
        fail(m, r.error or errors.GATEWAY_ERROR, r.detail)
        if r.opt_out:
            m._opt_out = True  # recorded with the batch's results


def record_opt_outs(msgs: list[Message]) -> None:
    numbers = {m.to for m in msgs if m._opt_out}
    if not numbers:
        return
    reported = []
    for m in msgs:
        if m.to in numbers:
            reported.append(m)
            numbers.discard(m.to)
    opt_out_reported.send(Message, messages=reported)


def announce(msgs: list[Message]) -> None:
    """One statuses_changed hook per batch, for the messages that reached an outcome (not the delays)."""
    final = [m for m in msgs if m.status in (Message.SENT, Message.DELIVERED, Message.READ, Message.FAILED)]
    if final:
        statuses_changed.send(Message, messages=final)


def apply_status_updates(gateway: Gateway, updates: Iterable[StatusUpdate]) -> int:
    """Delivery reports from a gateway's status callback, applied in bulk."""
    if not updates:
        return 0
    by_id = {u.provider_id: u for u in updates if u.provider_id}
    msgs = list(Message.objects.filter(gateway=gateway, provider_id__in=list(by_id)))
    now = timezone.now()
    changed = []
    for m in msgs:
        u = by_id[m.provider_id]
        if u.status == "delivered" and m.status != Message.READ:
            # a delivery report is final: it also settles an earlier "failed" report that was premature
            m.status, m.delivered_on, m.error, m.error_detail = Message.DELIVERED, now, "", ""
        elif u.status == "failed" and m.status != Message.DELIVERED:
            m.status, m.error, m.error_detail = Message.FAILED, u.error or errors.GATEWAY_ERROR, u.detail
            if u.opt_out:
                m._opt_out = True  # the provider says the number opted out: record it (as a STOP through that gateway)
        elif u.status == "read" and m.status != Message.FAILED:
            # WhatsApp: the person opened it (it was delivered, whether or not that report came first)
            m.status, m.delivered_on = Message.READ, m.delivered_on or now
        elif u.status == "sent" and m.status in (Message.QUEUED, Message.SENDING):
            m.status = Message.SENT
        else:
            continue
        changed.append(m)
    # WhatsApp's window closed when the message reached the person's phone: SMS instead, if the content allows
    moved = whatsapp.fall_back_reported(changed, now)
    moved_ids = {m.pk for m in moved}
    changed = [m for m in changed if m.pk not in moved_ids]
    with transaction.atomic():
        bulk.update_rows(changed, ["status", "delivered_on", "error", "error_detail"])
        if moved:
            bulk.update_rows(moved, list(whatsapp.REQUEUE_FIELDS))
        record_opt_outs(changed)
        announce(changed)
    return len(changed) + len(moved)
