from __future__ import annotations

from huey.contrib.djhuey import HUEY, task

from casemsg.inbound import router


# Inbound jobs jump the queue: an answer to STOP or to a consent question must not wait for a broadcast.
@task(priority=10)
def process_inbound(ids: list[int]) -> int:
    return router.process_due(ids)


def kick(ids: list[int]) -> None:
    if HUEY.immediate:
        router.process_due(ids)
        return
    process_inbound(ids)
