"""Claiming rows of a work queue in the database: the one way casemsg's queues (outbound messages, event
deliveries, schedule instances; inbound messages for their release) hand rows to a worker, so that two
workers never hold the same row and a row whose worker died goes back to the queue.

A claim marks rows with the worker's mark (a token, a status, a lease or a claim time) in one conditional
UPDATE: the rows are picked in order among those due, skipping rows another worker is claiming at that
moment (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time), and the UPDATE repeats the
queue's "due" conditions, so a row that changed since it was picked is not taken. The database is the
queue: losing the job broker loses no row.

The inbound queue picks its rows itself (round-robin across projects, a number's next message only, under
an advisory lock: `casemsg.inbound.claim`), because that pick needs literal SQL that PostgreSQL's partial
indexes can match; it releases stale rows through `release` like the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models, transaction
from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)


def claim(due: QuerySet[M], *, order_by: Sequence[str], limit: int, **mark: Any) -> int:
    """Mark up to `limit` rows of `due`, the first in `order_by` order, with `mark` (field=value); rows that
    another worker is claiming are skipped. Returns how many rows this call marked."""
    return len(claim_ids(due, order_by=order_by, limit=limit, **mark))


def claim_ids(due: QuerySet[M], *, order_by: Sequence[str], limit: int, **mark: Any) -> list[int]:
    """As `claim`, returning the primary keys of the rows this call marked (UPDATE … RETURNING).

    The pick is a MATERIALIZED common table expression: PostgreSQL may otherwise run a `LIMIT … FOR UPDATE
    SKIP LOCKED` subquery of `IN (…)` again for each row it updates, each run skipping the rows the last
    one locked, and so mark far more than `limit` rows."""
    if limit <= 0:
        return []
    model = due.model
    meta = model._meta
    q = connection.ops.quote_name
    fields = {f.name: f for f in meta.concrete_fields}
    sets, params = [], []
    for name, value in mark.items():
        f = fields[name]
        sets.append(f"{q(str(f.column))} = %s")
        params.append(f.get_db_prep_save(value, connection))
    pick = due.order_by(*order_by).values("pk")[:limit]
    if connection.features.has_select_for_update_skip_locked:
        pick = pick.select_for_update(skip_locked=True)
    with transaction.atomic(savepoint=False):  # (inside a caller's transaction: no savepoint)
        pick_sql, pick_params = pick.query.sql_with_params()
        table, pk = q(meta.db_table), q(str(meta.pk.column))
        with connection.cursor() as cur:
            cur.execute(
                f"WITH picked AS MATERIALIZED ({pick_sql}) "
                f"UPDATE {table} SET {', '.join(sets)} WHERE {pk} IN (SELECT * FROM picked) RETURNING {pk}",
                [*pick_params, *params],
            )
            return [int(row[0]) for row in cur.fetchall()]


def renew(held: QuerySet[M], **lease: Any) -> int:
    """Extend the hold on rows a worker still holds (`held` names them, e.g. by its token)."""
    return held.update(**lease)


def release(stale: QuerySet[M], **reset: Any) -> int:
    """Put rows back in the queue whose worker stopped holding them (`stale`: held longer than a worker
    can have needed); `reset` clears the mark and makes them due again."""
    return stale.update(**reset)
