"""Scheduled syncs: every `casemsg worker`'s ticker calls `tick()` once a second.

`tick()` claims the sources that are due (their `next_sync_on` has come, and no sync holds their lease:
`casemsg.sources.sync.claim_due`, SKIP LOCKED on PostgreSQL, so workers on many machines never take the
same source) up to this process's free sync threads, and runs each sync in a thread of its own: a sync
of 100,000 cases takes minutes, and neither the ticker nor the job consumer (which sends messages) waits
for it. A worker that stops leaves its leases to run out; another worker's tick then goes on with the
same run from its cursor.

"Sync now" (`sync_now`, from the API and the pages) only marks the source due, for the ticker; under the
embedded immediate queue (tests, `CASEMSG_QUEUE_IMMEDIATE=1`) it runs the sync at once instead.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection
from huey.contrib.djhuey import HUEY

from casemsg.sources import services, sync
from casemsg.sources.models import Source, SourceRun

log = logging.getLogger(__name__)

SYNC_THREADS = 2  # syncs one worker process runs at once
_lock = threading.Lock()
_running: set[int] = set()


def running() -> int:
    with _lock:
        return len(_running)


def tick() -> int:
    """Start the syncs that are due, up to this process's free threads; returns how many started."""
    with _lock:
        free = SYNC_THREADS - len(_running)
    if free <= 0:
        return 0
    claimed = sync.claim_due(free)
    for source_id, token in claimed:
        with _lock:
            _running.add(source_id)
        threading.Thread(target=_work, args=(source_id, token), daemon=True, name=f"source-{source_id}").start()
    return len(claimed)


def _work(source_id: int, token: str) -> None:
    try:
        trigger = Source.objects.filter(pk=source_id).values_list("requested_by", flat=True).first() or "schedule"
        Source.objects.filter(pk=source_id).update(requested_by="")
        sync.run(source_id, token, trigger=trigger)
    except Exception as exc:  # noqa: BLE001 — the thread must end cleanly; the run records what it can
        log.error("source %s: sync thread failed (%s)", source_id, type(exc).__name__)
    finally:
        with _lock:
            _running.discard(source_id)
        close_old_connections()
        connection.close()


def sync_now(source: Source, *, full: bool = False, by: str = "api") -> SourceRun | None:
    """Ask for a sync now; under the immediate queue (tests) run it here and return its run."""
    services.request_sync(source, full=full, by=by)
    if not HUEY.immediate:
        return None
    token = sync.acquire(source.pk)
    if token is None:
        return None  # a sync is running: it will be followed by the one asked for
    Source.objects.filter(pk=source.pk).update(requested_by="")
    return sync.run(source.pk, token, trigger=by)
