"""Queue jobs carry no message content, only the instruction to look at the database: losing the queue
loses no message, since the ticker re-enqueues delivery whenever due rows exist."""

from __future__ import annotations

import logging

from huey.contrib.djhuey import HUEY, task

from casemsg.messaging import pipeline

# Batches one job sends before it gives its thread back: a 100,000-message broadcast must not hold
# every worker thread while a STOP waits behind it.
BATCHES_PER_JOB = 10

log = logging.getLogger(__name__)


@task(priority=0)
def deliver() -> None:
    done = pipeline.deliver_due(max_batches=BATCHES_PER_JOB)
    if done >= BATCHES_PER_JOB * pipeline.BATCH and pipeline.has_due():
        deliver()  # more to send: queue the rest behind whatever arrived meanwhile


def kick() -> None:
    """Wake a worker (called after a commit that queued messages)."""
    if HUEY.immediate:
        # Tests and the embedded immediate mode: deliver in-line rather than through a queue.
        pipeline.deliver_due()
        return
    # A waiting deliver job will claim these messages too: one more would only be an extra queue write
    # per message under inbound load (each keyword reply commits on its own).
    try:
        if HUEY.pending_count() < 2:
            deliver()
    except Exception:  # noqa: BLE001 — any broker failure (Redis down, queue file unwritable)
        # The message is stored (the database is the truth): the request that queued it succeeds, and a
        # worker's ticker sends it, directly if the broker is still away.
        log.warning("queue unreachable: the ticker will send the queued messages", exc_info=True)


def on_messages_queued(sender: object, **_kw: object) -> None:
    kick()


def tick(workers: int) -> None:
    """One beat of the scheduler: keep up to `workers` deliver jobs waiting while rows are due. With the
    broker unreachable, the ticker sends a few batches itself: an outage delays messages, never loses them."""
    if not pipeline.has_due():
        return
    try:
        if HUEY.pending_count() < workers:
            deliver()
    except Exception:  # noqa: BLE001 — any broker failure
        log.warning("queue unreachable: the ticker sends directly", exc_info=True)
        pipeline.deliver_due(max_batches=BATCHES_PER_JOB)
