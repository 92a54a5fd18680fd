from __future__ import annotations

import logging
from datetime import timedelta

from huey.contrib.djhuey import HUEY, task

from casemsg.inbound import claim, router
from casemsg.messaging import pipeline

log = logging.getLogger(__name__)

# Set while a `process_inbound` job is queued and has not started. A webhook that finds it set queues
# nothing (the queued job will take its row: the job clears the flag before its first claim), so the
# webhook's wake-up costs one cheap key write, and a burst of webhooks queues one job, not one each.
JOB_FLAG = "casemsg:inbound-job-queued"
# A row waiting this long has no job that will take it (the job was lost with the queue, the broker is
# down): the ticker queues one, or handles the rows itself.
LATE = timedelta(seconds=1)


# Inbound jobs jump the queue: an answer to STOP or to a consent question must not wait for a broadcast.
@task(priority=10)  # type: ignore[untyped-decorator]  # (huey has no types)
def process_inbound(ids: list[int]) -> None:
    # Every waiting row, not only its own (`ids` is kept for jobs queued by an older version): under load
    # one job handles batch after batch, round-robin across projects, sending each batch's replies right
    # after it. After a few batches it gives the thread back (to the other jobs) and queues itself again
    # while rows wait. Returns nothing, so the queue stores no result.
    HUEY.delete(JOB_FLAG)  # from here on, a newly stored row needs a new job
    done = 0
    for _batch in range(router.BATCHES_PER_JOB):
        handled = router.process_due(max_batches=1, sweep=False)
        if not handled:
            break
        done += handled
        # the replies this batch queued go out now, from this job: no second trip through the queue (a
        # `deliver_replies` job queued meanwhile finds them sent)
        pipeline.deliver_due(replies_only=True, max_batches=1)
    if done and claim.has_waiting(older_than=timedelta(0)):
        # (a job that found nothing stops: rows held back behind a number's message that another worker is
        # handling are taken by that worker's next batch, or by the ticker)
        _queue_job()


def _queue_job() -> None:
    if HUEY.put_if_empty(JOB_FLAG, "1"):
        try:
            process_inbound([])
        except Exception:
            HUEY.delete(JOB_FLAG)
            raise


def kick(ids: list[int]) -> None:
    """Wake a worker for stored rows (after the webhook's commit)."""
    if HUEY.immediate:
        router.process_due(ids)
        return
    try:
        _queue_job()
    except Exception:  # noqa: BLE001 — any broker failure (Redis down, queue file unwritable)
        # The message is stored and the provider gets its 200: a worker's ticker handles it within a
        # second or two of the broker coming back (or directly, see tick()).
        log.warning("queue unreachable: the ticker will process the inbound messages", exc_info=True)


def on_inbound_stored(sender: object, *, ids: list[int], **_kw: object) -> None:
    kick(ids)


def tick() -> None:
    """The ticker's beat: rows that waited over a second have lost their job: queue another (the flag of
    the lost one is cleared), or, with the broker away, handle a few batches here."""
    if not claim.has_waiting(older_than=LATE):
        return
    try:
        HUEY.delete(JOB_FLAG)
        _queue_job()
    except Exception:  # noqa: BLE001 — any broker failure
        log.warning("queue unreachable: the ticker processes inbound messages directly", exc_info=True)
        router.process_due(max_batches=router.BATCHES_PER_JOB)
