"""Conversations: the contacts (cases and mobile workers) who wrote to the project, newest first, and each one's
thread — every message to and from them, on every channel, with its status and error — with a reply that a
person writes and the one send pipeline sends.

A reply is an ordinary message to the contact (`messaging.services.send`), so every rule of the send path
applies: a number without consent or opted out gets nothing and the message says why. It is sent as a reply
(claimed before bulk sends) and quiet hours never hold it: quiet hours hold scheduled sends and consent
questions, not a person answering a person (`messaging.pipeline.subject_to_quiet_hours`). Its text is sent as
written (braces are not placeholders). Answering a contact marks its open inbox items handled.

A contact is named in URLs and the API by a **contact key**: the case id for a case (`case:<case id>` when the
id itself starts with `case:` or `mobile-worker:`), `mobile-worker:<id>` for a mobile worker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max, Q, QuerySet

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.inbound import inbox
from casemsg.messaging import pipeline, render, services
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

WORKER_PREFIX, CASE_PREFIX = "mobile-worker:", "case:"
THREAD_LENGTH = 100  # the newest messages a thread shows
REPLY_MAX = 1600  # ten SMS segments


@dataclass(frozen=True)
class Contact:
    """A case or a mobile worker of the project: the other end of a conversation."""

    case: Case | None = None
    worker: MobileWorker | None = None

    @property
    def key(self) -> str:
        if self.worker is not None:
            return f"{WORKER_PREFIX}{self.worker.pk}"
        assert self.case is not None
        cid = self.case.case_id
        return f"{CASE_PREFIX}{cid}" if cid.startswith((WORKER_PREFIX, CASE_PREFIX)) else cid

    @property
    def name(self) -> str:
        if self.worker is not None:
            return self.worker.name or self.worker.username
        assert self.case is not None
        return self.case.name or self.case.case_id

    @property
    def kind(self) -> str:
        return "mobile_worker" if self.worker is not None else "case"

    def messages(self) -> Q:
        return Q(worker=self.worker) if self.worker is not None else Q(case=self.case)


def contact(project: Project, key: str) -> Contact:
    """The project's contact with this key (404 CASE_NOT_FOUND or MOBILE_WORKER_NOT_FOUND)."""
    if key.startswith(WORKER_PREFIX):
        raw = key[len(WORKER_PREFIX) :]
        worker = MobileWorker.objects.filter(project=project, pk=int(raw)).first() if raw.isdigit() else None
        if worker is None:
            raise InputError(errors.MOBILE_WORKER_NOT_FOUND, f"No mobile worker {raw!r} in this project.", 404)
        return Contact(worker=worker)
    case_id = key[len(CASE_PREFIX) :] if key.startswith(CASE_PREFIX) else key
    case = Case.objects.filter(project=project, case_id=case_id).first()
    if case is None:
        raise InputError(errors.CASE_NOT_FOUND, f"No case '{case_id}' in this project.", 404)
    return Contact(case=case)


@dataclass
class Conversation:
    contact: Contact
    last: Message  # the contact's latest inbound message
    open_items: int  # its messages open in the inbox


def conversations(
    project: Project, search: str = "", limit: int = 50, offset: int = 0
) -> tuple[int, list[Conversation]]:
    """(how many, one page of) the contacts who wrote to the project, the latest writer first; `search` finds a
    contact by part of its name or case id, or a username. A fixed number of queries whatever the page."""
    inbound = Message.objects.filter(project=project, direction=Message.IN).filter(
        Q(case__isnull=False) | Q(worker__isnull=False)
    )
    search = search.strip()
    if search:
        inbound = inbound.filter(
            Q(case__name__icontains=search)
            | Q(case__case_id__icontains=search)
            | Q(worker__name__icontains=search)
            | Q(worker__username__icontains=search)
        )
    groups = inbound.values("case_id", "worker_id").annotate(last=Max("id")).order_by("-last")
    total = groups.count()
    page = list(groups[offset : offset + limit])
    lasts = Message.objects.select_related("case", "worker").in_bulk([g["last"] for g in page])
    opened = inbox.open_counts(
        project, [g["case_id"] for g in page if g["case_id"]], [g["worker_id"] for g in page if g["worker_id"]]
    )
    out = []
    for g in page:
        m = lasts[g["last"]]
        who = Contact(case=m.case) if m.case is not None else Contact(worker=m.worker)
        key = ("case", g["case_id"]) if g["case_id"] else ("worker", g["worker_id"])
        out.append(Conversation(who, m, opened.get(key, 0)))
    return total, out


def messages_of(project: Project, who: Contact) -> QuerySet[Message]:
    """Every message to and from the contact, newest first, with its case and worker (the API pages it)."""
    qs = Message.objects.filter(project=project).filter(who.messages()).select_related("case", "worker")
    return qs.order_by("-created_on", "-pk")


def thread(project: Project, who: Contact, limit: int = THREAD_LENGTH) -> list[Message]:
    """The contact's newest `limit` messages, in and out, every channel, oldest first (as a phone shows them)."""
    return list(messages_of(project, who)[:limit])[::-1]


def thread_count(project: Project, who: Contact) -> int:
    return Message.objects.filter(project=project).filter(who.messages()).count()


def version(msgs: list[Message]) -> str:
    """What a thread looks like, in a few characters: it changes when a message arrives or changes status (the
    thread page polls it and redraws only then)."""
    seen = "|".join(f"{m.pk}:{m.status}:{m.error}" for m in msgs)
    return f"{len(msgs)}-" + hashlib.blake2b(seen.encode(), digest_size=6).hexdigest()


def reply(project: Project, who: Contact, text: str, person: tuple[str, str] | None = None) -> Message:
    """Answer the contact by SMS through the one pipeline (consent and opt-out apply, quiet hours do not): sent
    as written, as a reply; the contact's open inbox items become handled. `person` (username, name): a person
    on the pages (the reports name them); None: an API call."""
    if not text.strip():
        raise InputError(errors.MESSAGE_BLANK, "The reply is empty.")
    if len(text) > REPLY_MAX:
        raise InputError(errors.VALIDATION_ERROR, f"A reply has at most {REPLY_MAX} characters.")
    req = services.SendRequest(
        channel="sms",
        case_id=who.case.case_id if who.case is not None else None,
        mobile_worker_id=who.worker.pk if who.worker is not None else None,
        text=render.literal(text),
    )
    with transaction.atomic(), pipeline.replying():
        msg = services.send(project, req, source="api", person=person)
        inbox.handled_for_contact(
            project, who.case.pk if who.case is not None else None, who.worker.pk if who.worker is not None else None
        )
    return msg
