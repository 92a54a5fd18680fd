"""Housekeeping: stale messages, rows stuck in `sending` by a worker that died, and what is due."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from casemsg.core import bulk, claims, errors
from casemsg.gateways import smpp_journal
from casemsg.messaging.models import Message
from casemsg.messaging.pipeline.claim import BATCH

log = logging.getLogger(__name__)


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
    again (its `attempts` already counts the first try) and its history says SENDING_OUTCOME_UNKNOWN —
    unless its gateway acknowledged every submit of it (the SMPP journal): then it is queued unmarked, and
    its outcome is stored again without sending it again.
    A row its worker had claimed but not yet handed over simply goes back to the queue."""
    timeout_seconds = settings.CASEMSG_SENDING_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
    now = timezone.now()
    stuck = Message.objects.filter(status=Message.SENDING, claimed_on__lt=now - timedelta(seconds=timeout_seconds))
    never_sent = stuck.filter(Q(wire_on__isnull=True) | Q(wire_on__lt=F("claimed_on")))
    n = claims.release(never_sent, status=Message.QUEUED, claim="", next_attempt_on=now)
    unknown = list(stuck.only("pk", "history", "attempts")[:BATCH])
    while unknown:
        n += _settle_acknowledged(unknown, now)
        unknown = [m for m in unknown if m.status == Message.SENDING]  # (the others were acknowledged)
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


def _settle_acknowledged(stuck: list[Message], now: datetime) -> int:
    """Those of a dead worker's messages whose every submit the gateway acknowledged (an SMPP bind journals
    each submit_sm_resp: gateways.smpp_journal) go back to the queue unmarked: the next worker renders and
    routes them again and the bind, finding every part acknowledged, answers sent with the stored id
    without submitting anything. Duplicates come only from submits that had no answer. Returns how many."""
    acked = smpp_journal.acknowledged([m.pk for m in stuck])
    if not acked:
        return 0
    rows = [m for m in stuck if m.pk in acked]
    detail = "Its gateway acknowledged it before its worker stopped: its outcome is stored again, nothing is resent."
    for m in rows:
        m.status, m.claim, m.next_attempt_on, m.delay_reason, m.error_detail = Message.QUEUED, "", now, "", detail
    with transaction.atomic():
        bulk.update_rows(rows, ["status", "claim", "next_attempt_on", "delay_reason", "error_detail"])
    return len(rows)


def has_due(replies_only: bool = False, older_than: timedelta | None = None) -> bool:
    """Whether a message is due (a reply only; one due for longer than `older_than`)."""
    due = timezone.now() - (older_than or timedelta(0))
    qs = Message.objects.filter(status=Message.QUEUED, next_attempt_on__lte=due)
    return (qs.filter(priority__gt=0) if replies_only else qs).exists()


def close_db() -> None:
    connection.close()
