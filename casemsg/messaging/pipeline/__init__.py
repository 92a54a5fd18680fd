"""The one send path. Every outbound message — API call, broadcast, alert, survey question, keyword
reply — is created here and delivered here:

    queue → claim → eligibility (contact rules, consent, opt-out, two-way) → render + translation →
    gateway choice → loop guard → rate limit (segments/second, shared) → send → status

Workers claim due rows with a conditional UPDATE (plus `FOR UPDATE SKIP LOCKED` on PostgreSQL), so a
message is never sent twice by two workers; a sweeper re-queues rows stuck in `sending`.

The package's modules, in the order a message meets them: `queue` (creating messages), `claim` (a worker
takes due rows), `checks` (the contact rules at send time, the loop guard, quiet hours), `send` (a claimed
batch: render, route, pace and send window by window), `results` (outcomes and delivery reports),
`sweeper` (stale and stuck rows). This module is the path's one door: callers use the names below.
"""

from casemsg.messaging.pipeline.checks import subject_to_quiet_hours
from casemsg.messaging.pipeline.claim import BATCH, claim
from casemsg.messaging.pipeline.queue import MessageSpec, queue, queue_each, queue_select, replying
from casemsg.messaging.pipeline.results import apply_status_updates
from casemsg.messaging.pipeline.send import SEND_WINDOW, deliver_due, process, reserve_slots
from casemsg.messaging.pipeline.sweeper import close_db, expire_stale, has_due, sweep

__all__ = [
    "BATCH",
    "SEND_WINDOW",
    "MessageSpec",
    "apply_status_updates",
    "claim",
    "close_db",
    "deliver_due",
    "expire_stale",
    "has_due",
    "process",
    "queue",
    "queue_each",
    "queue_select",
    "replying",
    "reserve_slots",
    "subject_to_quiet_hours",
    "sweep",
]
