"""Queue jobs carry no message content, only the instruction to look at the database: losing the queue
loses no message, since the ticker re-enqueues delivery whenever due rows exist.

Two jobs send: `deliver` (anything due, replies first, a bounded number of batches per job) and
`deliver_replies` (only replies, at a higher queue priority than everything else): a reply to a person
who is waiting — a keyword answer, a STOP confirmation, a survey's next question — never waits behind a
queue of broadcast jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

from huey.contrib.djhuey import HUEY, task

from casemsg.messaging import pipeline

# Batches one job sends before it gives its thread back: a 100,000-message broadcast must not hold
# every worker thread while a STOP waits behind it.
BATCHES_PER_JOB = 10
# Set while a `deliver_replies` job is queued and has not started: a reply queued meanwhile needs no job
# of its own (the queued job will claim it, since it clears the flag before its first claim). One
# job per burst of replies, and no reply is ever left without a job that will look for it.
REPLY_JOB_FLAG = "casemsg:reply-job-queued"
# A reply due this long with no job taking it (its enqueue failed, a worker died): the ticker wakes one.
REPLY_LATE = timedelta(milliseconds=500)

log = logging.getLogger(__name__)


@task(priority=0)  # type: ignore[untyped-decorator]  # (huey has no types)
def deliver() -> None:
    done = pipeline.deliver_due(max_batches=BATCHES_PER_JOB)
    if done >= BATCHES_PER_JOB * pipeline.BATCH and pipeline.has_due():
        deliver()  # more to send: queue the rest behind whatever arrived meanwhile


@task(priority=20)  # type: ignore[untyped-decorator]  # (huey has no types)
def deliver_replies() -> None:
    HUEY.delete(REPLY_JOB_FLAG)  # from here on, a newly queued reply needs a new job
    done = pipeline.deliver_due(max_batches=BATCHES_PER_JOB, replies_only=True)
    if done >= BATCHES_PER_JOB * pipeline.BATCH and pipeline.has_due(replies_only=True):
        _queue_reply_job()


def _queue_reply_job() -> None:
    if HUEY.put_if_empty(REPLY_JOB_FLAG, "1"):
        try:
            deliver_replies()
        except Exception:
            HUEY.delete(REPLY_JOB_FLAG)
            raise


def kick(replies: bool = False) -> None:
    """Wake a worker (called after a commit that queued messages; `replies`: some are replies)."""
    if HUEY.immediate:
        # Tests and the embedded immediate mode: deliver in-line rather than through a queue.
        pipeline.deliver_due()
        return
    try:
        if replies:
            _queue_reply_job()
        # A waiting deliver job will claim these messages too: one more would only be an extra queue write
        # per message.
        elif HUEY.pending_count() < 2:
            deliver()
    except Exception:  # noqa: BLE001 — any broker failure (Redis down, queue file unwritable)
        # The message is stored (the database is the truth): the request that queued it succeeds, and a
        # worker's ticker sends it, directly if the broker is still away.
        log.warning("queue unreachable: the ticker will send the queued messages", exc_info=True)


def on_messages_queued(sender: object, replies: bool = False, **_kw: object) -> None:
    kick(replies)


def tick(workers: int) -> None:
    """One beat of the scheduler: keep up to `workers` deliver jobs waiting while rows are due, and a
    reply job while a reply is late. With the broker unreachable, the ticker sends a few batches itself:
    an outage delays messages, never loses them."""
    if not pipeline.has_due():
        return
    try:
        if pipeline.has_due(replies_only=True, older_than=REPLY_LATE):
            HUEY.delete(REPLY_JOB_FLAG)  # its job is lost (or very late): queue another
            _queue_reply_job()
        if HUEY.pending_count() < workers:
            deliver()
    except Exception:  # noqa: BLE001 — any broker failure
        log.warning("queue unreachable: the ticker sends directly", exc_info=True)
        pipeline.deliver_due(max_batches=BATCHES_PER_JOB)
