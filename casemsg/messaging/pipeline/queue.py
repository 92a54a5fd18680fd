"""Creating messages: every outbound message of casemsg is queued here (one row each, due now or later),
checked at once for what cannot go, and a worker is woken."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.core import bulk
from casemsg.gateways.models import Gateway
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.messaging.pipeline.checks import eligibility
from casemsg.messaging.pipeline.claim import BATCH
from casemsg.messaging.signals import messages_queued
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)


@dataclass
class MessageSpec:
    """What to send to whom. Exactly one of case / worker / to (a bare number, e.g. an unknown sender)."""

    channel: str = "sms"
    case: Case | None = None
    worker: MobileWorker | None = None
    to: str = ""
    text: str | None = None
    translations: dict[str, str] | None = None
    subject: str = ""
    html: str = ""
    default_language: str = ""
    kind: str = Message.NORMAL
    requires_two_way: bool = False
    send_after: datetime | None = None  # an aware datetime (UTC); None = now
    gateway: Gateway | None = None  # replies go back through the gateway the inbound message came on
    send_key: str = ""  # a scheduled occurrence's unique key (see Message.send_key)
    # The case a message to a mobile worker is about (an alert to the case's owner): its {case.…} fields
    # render from this case. Kept in the content, so it needs no column.
    about: Case | None = None
    priority: int | None = None  # Message.REPLY or BULK; None: REPLY inside `replying()`, else BULK
    simulated: bool = False  # a reply to the phone simulator (Message.simulated)
    # WhatsApp (channel "whatsapp"): the template outside the window and whether SMS may replace it,
    # {"template", "language", "variables", "fallback_sms"}; a question's buttons or list (casemsg.messaging.whatsapp)
    whatsapp: dict[str, Any] | None = None
    interactive: dict[str, Any] | None = None


# Set while the router handles inbound messages: whatever it queues (keyword and compliance replies, and
# the next question a survey engine queues after an answer) is a reply, claimed before bulk sends.
_replying: contextvars.ContextVar[bool] = contextvars.ContextVar("casemsg_replying", default=False)


@contextmanager
def replying() -> Iterator[None]:
    """Messages queued inside this block answer a person who is waiting (Message.REPLY priority)."""
    token = _replying.set(True)
    try:
        yield
    finally:
        _replying.reset(token)


def _priority(s: MessageSpec) -> int:
    if s.priority is not None:
        return s.priority
    return Message.REPLY if _replying.get() else Message.BULK


def _content(s: MessageSpec) -> dict[str, Any]:
    """What to say, kept as templates: rendered at send time, in the language chosen then."""
    content: dict[str, Any] = {}
    if s.text is not None:
        content["text"] = s.text
    if s.translations:
        content["translations"] = s.translations
    if s.subject:
        content["subject"] = s.subject  # the template; `subject` holds it rendered once sent
    if s.about is not None and s.case is None:
        content["about_case"] = s.about.pk
    if s.whatsapp:
        content["whatsapp"] = s.whatsapp
    if s.interactive:
        content["interactive"] = s.interactive
    return content


def queue(
    project: Project | None, specs: list[MessageSpec], event: MessagingEvent | None, precheck: bool | None = None
) -> list[Message]:
    """Create messages (queued) in bulk, fail at once those that cannot go now, and wake a worker.

    `precheck` (default: for a single message) runs the eligibility checks at once so an API caller
    learns straight away why a message cannot go; bulk callers (broadcasts) skip it — the same checks
    run at send time — and take the fast insert path, which returns no rows.
    Opens its own transaction (nested in the caller's); the worker is woken after commit."""
    now = timezone.now()
    if precheck is None:
        precheck = len(specs) == 1
    if not precheck:
        _insert_queued(project, specs, event, now)
        return []
    rows = []
    for s in specs:
        content = _content(s)
        rows.append(
            Message(
                project=project,
                event=event,
                channel=s.channel,
                kind=s.kind,
                priority=_priority(s),
                requires_two_way=s.requires_two_way,
                case=s.case,
                worker=s.worker,
                to=s.to,
                content=content,
                default_language=s.default_language,
                subject=s.subject,
                html=s.html,
                gateway=s.gateway,
                gateway_name=s.gateway.name if s.gateway else "",
                simulated=s.simulated,
                created_on=now,
                next_attempt_on=s.send_after or now,
            )
        )
    with transaction.atomic():
        # Tell the caller at once what cannot go (the same checks run again at send time). Checked before
        # the rows are written, so every row, queued ones too, is stored with the number or address found.
        eligibility(rows)
        Message.objects.bulk_create(rows, batch_size=BATCH)
        for m in rows:
            m.project = project
        if any(m.status == Message.QUEUED for m in rows):
            transaction.on_commit(wake_replies if any(m.priority for m in rows) else wake)
    return rows


def _row(project: Project | None, s: MessageSpec, event: MessagingEvent | None, now: datetime) -> dict[str, Any]:
    """The message row (attname: value) of one spec, as queued without the precheck."""
    return {
        "project_id": project.pk if project else None,
        "event_id": event.pk if event else None,
        "channel": s.channel,
        "kind": s.kind,
        "priority": _priority(s),
        "requires_two_way": s.requires_two_way,
        "case_id": s.case.pk if s.case else None,
        "worker_id": s.worker.pk if s.worker else None,
        "to": s.to,
        "content": _content(s),
        "default_language": s.default_language,
        "subject": s.subject,
        "html": s.html,
        "gateway_id": s.gateway.pk if s.gateway else None,
        "gateway_name": s.gateway.name if s.gateway else "",
        "next_attempt_on": s.send_after or now,
        "created_on": now,
        "send_key": s.send_key,
        "simulated": s.simulated,
    }


def _insert_queued(
    project: Project | None, specs: list[MessageSpec], event: MessagingEvent | None, now: datetime
) -> None:
    """Bulk insert through casemsg.core.bulk (one prepared statement): Django's bulk_create rebuilds its SQL for
    every ~30-row batch on SQLite, which made queueing a broadcast slower than sending it."""
    if not specs:
        return
    rows = [_row(project, s, event, now) for s in specs]
    with transaction.atomic():
        # Scheduled occurrences carry a unique send key: one already queued (an earlier tick that got this
        # far) is skipped by the database, never sent twice.
        bulk.insert_rows(Message, rows, ignore_conflicts=any(s.send_key for s in specs))
        transaction.on_commit(wake_replies if any(r["priority"] for r in rows) else wake)


def queue_each(entries: list[tuple[Project | None, MessageSpec, MessagingEvent | None]]) -> None:
    """Queue messages of different projects and events (a batch of inbound messages' replies) in one bulk
    insert, as `queue(…, precheck=False)` would queue each; the worker is woken once, after commit."""
    if not entries:
        return
    now = timezone.now()
    rows = [_row(project, s, event, now) for project, s, event in entries]
    with transaction.atomic():
        bulk.insert_rows(Message, rows)
        transaction.on_commit(wake_replies if any(r["priority"] for r in rows) else wake)


def queue_select(
    project: Project | None,
    spec: MessageSpec,
    event: MessagingEvent | None,
    source: str,
    params: list[Any],
    recipients: dict[str, str],
) -> int:
    """Queue one message per row of `source` (SQL after FROM, with `params`) in one INSERT … SELECT: the
    same message as `queue(…, precheck=False)` would store for `spec`, except the columns `recipients` names
    (attname → SQL over the source: "case_id", "worker_id", "send_key"), which differ per row. Rows whose
    send key was already queued are skipped (ON CONFLICT DO NOTHING). Returns how many were queued; the
    worker is woken after commit."""
    row = _row(project, spec, event, timezone.now())
    with transaction.atomic():
        n = bulk.insert_select(Message, row, recipients, source, params, ignore_conflicts=True)
        transaction.on_commit(wake)
    return n


def wake() -> None:
    messages_queued.send(Message)


def wake_replies() -> None:
    messages_queued.send(Message, replies=True)
