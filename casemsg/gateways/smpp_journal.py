"""The acknowledged submits: every submit_sm the SMSC answered ESME_ROK, a part of a message per row
(`carrier.SubmitAck`), written by the bind's own thread in batches as the responses arrive.

Why: a worker stores a window's outcomes only when the whole window is back, so a worker killed mid-window
used to leave every message of that window "unknown" and sent each again — duplicates per window, including
the submits the SMSC had answered. With the journal, duplicates are per submit:
- the sweeper (`acknowledged`) settles a dead worker's message every part of which was acknowledged as sent,
  with its message_id, and sends again only the others;
- a bind submitting a message again skips the parts acknowledged already (`acked_parts`), so a long
  message's parts are never duplicated for a later part's sake (the parts share one concatenation
  reference, derived from the message's id, so the handset still joins them).

The gap that remains is the time between a submit_sm_resp arriving and its batch being written (a few
milliseconds): a worker killed inside it sends that message again, marked as a possible duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from casemsg.gateways.carrier.models import SubmitAck

KEEP = timedelta(days=1)

Ack = tuple[int, int, int, str]  # (message id, part, parts, provider id)


CHUNK = 500  # rows per INSERT (5 parameters each: well under SQLite's 32,766)
SQLITE_WAIT_MS = 250  # a worker's write transactions last milliseconds; a writer holding it longer is not one


def record(acks: Sequence[Ack]) -> None:
    """Store acknowledged submits, a multi-row INSERT per CHUNK in autocommit. A part acknowledged twice
    keeps its first id.

    Not `bulk_create`, and on SQLite a short busy timeout: this journal is best effort — a batch that could
    not be written leaves those submits unknown, as they were before the journal — and must never hold the
    bind's thread (or a test's open transaction) for the 30 s of the database's busy timeout."""
    if not acks:
        return
    now = timezone.now()
    table = connection.ops.quote_name(SubmitAck._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in ("message_id", "part", "parts", "provider_id", "acked_on"))
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            # this thread's own connection: wait briefly for a writer, never the whole busy timeout
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_WAIT_MS}")
        for start in range(0, len(acks), CHUNK):
            rows = acks[start : start + CHUNK]
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
            params: list[Any] = []
            for m, p, n, pid in rows:
                params += [m, p, n, pid[:65], now]
            cur.execute(
                f"INSERT INTO {table} ({cols}) VALUES {values} ON CONFLICT (message_id, part) DO NOTHING",  # noqa: S608 — names from the model, values bound
                params,
            )


def acked_parts(message_ids: Iterable[int]) -> dict[int, tuple[int, dict[int, str]]]:
    """The acknowledged parts of these messages: message id → (parts, {part: provider id}); one query."""
    out: dict[int, tuple[int, dict[int, str]]] = {}
    ids = list(set(message_ids))
    if not ids:
        return out
    rows = SubmitAck.objects.filter(message_id__in=ids).values_list("message_id", "part", "parts", "provider_id")
    for mid, part, parts, pid in rows:
        out.setdefault(mid, (parts, {}))[1][part] = pid
    return out


def acknowledged(message_ids: Iterable[int]) -> dict[int, str]:
    """Those of these messages every part of which the SMSC acknowledged: message id → the first part's id
    (the message's provider_id)."""
    out: dict[int, str] = {}
    for mid, (parts, got) in acked_parts(message_ids).items():
        if len(got) >= parts and 1 in got:
            out[mid] = got[1]
    return out


def prune() -> int:
    """Forget acknowledgements older than KEEP (the sweeper has long settled their messages)."""
    deleted, _ = SubmitAck.objects.filter(acked_on__lt=timezone.now() - KEEP).delete()
    return deleted
