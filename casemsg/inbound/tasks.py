from __future__ import annotations

import logging
import time
from datetime import timedelta

from huey.contrib.djhuey import HUEY, task

from casemsg.inbound import router

log = logging.getLogger(__name__)


# Inbound jobs jump the queue: an answer to STOP or to a consent question must not wait for a broadcast.
@task(priority=10)
def process_inbound(ids: list[int]) -> None:
    # its rows and any that arrived since: under load one job handles a batch, the next ones little.
    # Returns nothing, so the queue stores no result (one write less per message).
    router.process_due(ids, newer=True)


# Under load, one job per webhook is mostly wasted (each job takes every waiting row), and each enqueue
# is a write on the webhook's hot path; a process enqueues at most one job per this interval. A row whose
# job had already started is picked up by the next job, or by the ticker within a second.
KICK_INTERVAL = 0.05
_last_kick = 0.0


def kick(ids: list[int]) -> None:
    global _last_kick
    if HUEY.immediate:
        router.process_due(ids)
        return
    now = time.monotonic()
    if now - _last_kick < KICK_INTERVAL:
        return
    _last_kick = now
    try:
        process_inbound(ids)
    except Exception:  # noqa: BLE001 — any broker failure (Redis down, queue file unwritable)
        # The message is stored and the provider gets its 200: a worker's ticker handles it within a
        # second or two of the broker coming back (or directly, see tick()).
        log.warning("queue unreachable: the ticker will process the inbound messages", exc_info=True)


def on_inbound_received(sender: object, *, ids: list[int], **_kw: object) -> None:
    kick(ids)


def tick() -> None:
    """The ticker's beat: handle rows that have waited over a second (their job was coalesced or lost)."""
    if router.has_waiting(older_than=timedelta(seconds=1)):
        router.process_due()
