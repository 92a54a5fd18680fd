from __future__ import annotations

from huey.contrib.djhuey import HUEY, task

from casemsg.inbound import router


# Inbound jobs jump the queue: an answer to STOP or to a consent question must not wait for a broadcast.
@task(priority=10)
def process_inbound(ids: list[int]) -> None:
    # its rows and any that arrived since: under load one job handles a batch, the next ones little.
    # Returns nothing, so the queue stores no result (one write less per message).
    router.process_due(ids, newer=True)


def kick(ids: list[int]) -> None:
    if HUEY.immediate:
        router.process_due(ids)
        return
    process_inbound(ids)
