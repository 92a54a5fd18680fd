"""Claiming due messages: a worker takes a batch with a conditional UPDATE (plus `FOR UPDATE SKIP
LOCKED` on PostgreSQL), so a message is never sent twice by two workers."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django.utils import timezone

from casemsg.core import claims
from casemsg.gateways.models import Gateway
from casemsg.messaging.models import Message
from casemsg.projects.models import Project

log = logging.getLogger(__name__)

# Messages one worker claims at a time.
BATCH = 500


def _claim_rows(token: str, now: datetime, limit: int, replies: bool) -> int:
    """Flip up to `limit` due rows (only replies, or any) to sending under `token`; returns how many."""
    due = Message.objects.filter(status=Message.QUEUED, next_attempt_on__lte=now)  # (index message_due)
    if replies:
        due = due.filter(priority__gt=0)
    return claims.claim(
        due, order_by=["next_attempt_on"], limit=limit, status=Message.SENDING, claim=token, claimed_on=now
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
        .select_related("case", "worker")
        .order_by("-priority", "next_attempt_on", "pk")
    )
    # Projects and gateways are few and wide (JSON settings, a config): each is loaded once per batch and
    # shared by its messages, not built again for every row.
    projects = Project.objects.in_bulk({m.project_id for m in msgs if m.project_id})
    gateways = Gateway.objects.in_bulk({m.gateway_id for m in msgs if m.gateway_id})
    for m in msgs:
        m.project = projects.get(m.project_id)
        if m.gateway_id:
            m.gateway = gateways.get(m.gateway_id)
    return msgs
