"""The inbound job: claim waiting messages, then handle them batch by batch.

A batch is read set-wise (who each sender is, pending questions, open sessions, keywords: `routing.Lookups`)
and handled in arrival order by the one handler (`handle.act`). Batching decides only *when* the handler's
writes happen: the messages that need nothing but a reply are written together at the end, their replies
queued in one insert; a message that changes state (`handle.changes_state`) is handled in its own
transaction, in its place in the order, and once one changed a contact the rest of the batch is read again.
"""

from __future__ import annotations

import logging

from django.db import transaction

from casemsg.consent import services as consent_services
from casemsg.inbound import claim
from casemsg.inbound.handle import Writes, act, changes_state, handle
from casemsg.inbound.routing import Lookups, Route
from casemsg.inbound.signals import inbound_received
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message

log = logging.getLogger(__name__)

# Batches one inbound job handles before it gives its thread back (to the reply jobs, which send what the
# batches queued); the job then queues itself again while rows wait.
BATCHES_PER_JOB = 5


def process_due(
    ids: list[int] | None = None, newer: bool = False, max_batches: int | None = None, sweep: bool = True
) -> int:
    """The job body: handle the given inbound rows (with `newer`, and any that arrived after them), or
    every row waiting, batch after batch (at most `max_batches`); without ids (and with `sweep`), rows
    of a worker that died go back to the queue first. Returns how many were handled."""
    done = 0
    if ids is None and sweep:
        claim.requeue_stuck()
    batches = 0
    while max_batches is None or batches < max_batches:
        msgs = claim.claim(ids, newer=newer)
        if not msgs:
            break
        process_batch(msgs)
        done += len(msgs)
        batches += 1
    return done


def process_batch(msgs: list[Message]) -> None:
    """Handle claimed messages (at most one per number) in arrival order (see the module's docstring)."""
    with pipeline.replying():  # everything queued here answers a person: claimed before bulk sends
        lookups = Lookups(msgs)
        collected = Writes(eager=False)
        collected_msgs: list[Message] = []
        for i, m in enumerate(msgs):
            route = Route(m, lookups)
            if not changes_state(m, route, lookups):
                act(m, route, lookups, collected)
                collected_msgs.append(m)
                continue
            _flush(collected, collected_msgs, lookups)
            collected_msgs = []
            try:
                handle(m, lookups)
            except Exception:  # noqa: BLE001 — one bad message must not stop the others
                _failed(m)
                lookups.changed = True
            if lookups.changed:
                lookups = Lookups(msgs[i + 1 :])  # read the rest again, after the change
        _flush(collected, collected_msgs, lookups)
        _whatsapp_opt_ins(msgs)
    ids = [m.pk for m in msgs]
    transaction.on_commit(lambda: inbound_received.send(Message, ids=ids))


def _whatsapp_opt_ins(msgs: list[Message]) -> None:
    """WhatsApp's opt-in for messages through an installation gateway: their project is known only now
    that they are routed (a project's own gateway's are recorded by the webhook, inbound.receive; the same
    rule, consent.services.record_whatsapp_opt_ins). Never for a simulated message."""
    entries = [
        (m.project_id, m.to, m.text)
        for m in msgs
        if m.channel == "whatsapp"
        and not m.simulated
        and not m.error
        and m.gateway is not None
        and m.gateway.project_id is None
    ]
    if entries:
        with transaction.atomic():
            consent_services.record_whatsapp_opt_ins(entries)


def _flush(collected: Writes, msgs: list[Message], lookups: Lookups) -> None:
    """Write the collected messages together; if that fails, handle each alone, so one bad message fails
    alone."""
    try:
        collected.flush()
    except Exception:  # noqa: BLE001
        log.exception("a batch of %s inbound messages failed; handling them one by one", len(msgs))
        collected.replies, collected.done = [], []
        for m in msgs:
            try:
                handle(m, lookups)
            except Exception:  # noqa: BLE001
                _failed(m)


def _failed(m: Message) -> None:
    log.exception("inbound message %s failed", m.pk)
    Message.objects.filter(pk=m.pk).update(error_detail="processing failed; see the worker log", claim="")
