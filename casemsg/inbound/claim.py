"""Claiming inbound rows for processing: a worker takes a batch of waiting rows, fairly across projects and in
order per number, and rows of a worker that died go back to the queue."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from casemsg.core import claims
from casemsg.gateways.models import Gateway
from casemsg.messaging.models import Message
from casemsg.projects.models import Project

# A claimed row not finished within this time belonged to a worker that died: it is processed again.
STUCK_AFTER = timedelta(minutes=5)


CLAIM_LIMIT = 200
# Batches one inbound job handles before it gives its thread back (to the reply jobs, which send what the
# batches queued); the job then queues itself again while rows wait.
BATCHES_PER_JOB = 5

_TABLE = Message._meta.db_table
# Literally the condition of the partial indexes message_inbound_waiting / message_inbound_due (a query
# must repeat it for the database to use them; a bound parameter would not do).
_WAITING = "direction = 'in' AND next_attempt_on IS NOT NULL"
# Claimers take turns on PostgreSQL (a transaction-scoped advisory lock, held for the claim's two short
# statements): each then sees every earlier claim committed, which the per-number check needs.
_CLAIM_LOCK = 0x6361736D_696E  # "casm" "in"


def _head(tbl: str) -> str:
    """SQL: the row of `tbl` is its number's next message: no older row of the number waits, and none is
    being handled (index message_inbound_number)."""
    to = connection.ops.quote_name("to")
    return (
        f"NOT EXISTS (SELECT 1 FROM {tbl} AS o WHERE o.direction = 'in' AND o.{to} = {tbl}.{to} "
        f"AND o.id <> {tbl}.id AND (o.claim <> '' OR (o.next_attempt_on IS NOT NULL AND o.id < {tbl}.id)))"
    )


def _filter(ids: list[int] | None, newer: bool) -> tuple[str, list[Any]]:
    if ids is None:
        return "", []
    if not ids:
        return " AND 1 = 0", []
    if newer:
        return " AND id >= %s", [min(ids)]
    return f" AND id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _candidates(cur: CursorWrapper, extra: str, params: list[Any], limit: int) -> list[int]:
    """Up to `limit` waiting rows, taken round-robin across the projects that have any (each project's in
    arrival order, each number's next message only): a flood in one project fills the rest of a batch,
    never all of it, and a number sending hundreds of messages holds up only its own."""
    tbl = connection.ops.quote_name(_TABLE)
    # the projects with waiting rows: a loose index scan (one index probe per project, not a scan of the
    # backlog)
    cur.execute(
        f"WITH RECURSIVE p(pid) AS (SELECT MIN(project_id) FROM {tbl} WHERE {_WAITING}{extra} "
        f"UNION ALL SELECT (SELECT MIN(project_id) FROM {tbl} WHERE {_WAITING}{extra} AND project_id > p.pid) "
        "FROM p WHERE p.pid IS NOT NULL) SELECT pid FROM p WHERE pid IS NOT NULL",
        params + params,
    )
    projects: list[int | None] = [r[0] for r in cur.fetchall()][:limit]
    projects.append(None)  # installation-wide gateways' unknown senders
    parts, args = [], []
    for i, pid in enumerate(projects):
        cond = "project_id IS NULL" if pid is None else "project_id = %s"
        parts.append(
            f"SELECT id, {i} AS g FROM (SELECT id FROM {tbl} WHERE {_WAITING}{extra} AND {cond} "
            f"AND {_head(tbl)} ORDER BY id LIMIT %s) AS q{i}"
        )
        args += [*params, *([] if pid is None else [pid]), limit]
    cur.execute(" UNION ALL ".join(parts), args)
    by_group: dict[int, list[int]] = {}
    for pk, g in cur.fetchall():
        by_group.setdefault(g, []).append(pk)
    groups = [sorted(v) for v in by_group.values()]
    picked: list[int] = []
    for rank in range(limit):
        row = [g[rank] for g in groups if rank < len(g)]
        if not row:
            break
        picked += row
    return picked[:limit]


def claim(ids: list[int] | None = None, limit: int = CLAIM_LIMIT, newer: bool = False) -> list[Message]:
    """Take waiting (received, unprocessed) rows; a conditional update makes each processed once.

    Fair and in order: rows are picked round-robin across projects, and a row is taken only when no
    older row of its number still waits and none is being handled by another worker — so two messages
    from one number are handled in arrival order, never in parallel (the next one waits for the next
    batch). `ids`: only these rows; with `newer`, these and the rows that arrived after them."""
    token = uuid.uuid4().hex
    now = timezone.now()
    extra, params = _filter(ids, newer)
    tbl = connection.ops.quote_name(_TABLE)
    with transaction.atomic(), connection.cursor() as cur:
        if settings.IS_POSTGRES:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CLAIM_LOCK])
        picked = _candidates(cur, extra, params, limit)
        if not picked:
            return []
        marks = ", ".join(["%s"] * len(picked))
        pick = f"id IN ({marks}) AND next_attempt_on IS NOT NULL"
        if settings.IS_POSTGRES:
            pick = f"id IN (SELECT id FROM {tbl} WHERE {pick} FOR UPDATE SKIP LOCKED)"
        # (checked again here: on PostgreSQL a row may have changed since the pick)
        cur.execute(
            f"UPDATE {tbl} SET next_attempt_on = NULL, claim = %s, claimed_on = %s WHERE {pick} AND {_head(tbl)}",
            [token, now, *picked],
        )
        if not cur.rowcount:
            return []
    # what routing never reads stays in the database (the payload, outbound-only columns, times)
    msgs = list(Message.objects.filter(claim=token).defer(*_NOT_READ).order_by("pk"))
    _attach(msgs)
    return msgs


_NOT_READ = ("raw", "content", "html", "subject", "wire_on", "delivered_on", "claimed_on", "next_attempt_on")


def _attach(msgs: list[Message]) -> None:
    """Each batch's projects and gateways, loaded once (a project row is wide: a dozen JSON settings)."""
    projects = Project.objects.in_bulk({m.project_id for m in msgs if m.project_id})
    gateways = Gateway.objects.in_bulk({m.gateway_id for m in msgs if m.gateway_id})
    for m in msgs:
        m.project = projects.get(m.project_id) if m.project_id else None
        m.gateway = gateways.get(m.gateway_id) if m.gateway_id else None


def has_waiting(older_than: timedelta) -> bool:
    """Whether an inbound row has waited longer than this for its job (uses the inbound-due index)."""
    return Message.objects.filter(
        direction=Message.IN, next_attempt_on__isnull=False, next_attempt_on__lt=timezone.now() - older_than
    ).exists()


def requeue_stuck(timeout: timedelta = STUCK_AFTER) -> int:
    """Inbound rows claimed by a worker that stopped before finishing (handling clears the claim) go
    back to the queue, so a STOP is never lost with a worker."""
    now = timezone.now()
    stale = Message.objects.filter(direction=Message.IN, claimed_on__lt=now - timeout).exclude(claim="")
    return claims.release(stale, claim="", next_attempt_on=now)
