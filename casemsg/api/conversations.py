"""Conversations and the inbox, for an officer's own tools: the contacts who wrote (latest first), a contact's
messages and a reply to them (through the send pipeline: consent and opt-out apply, quiet hours do not), and the
inbound messages nothing handled with their state (open, handled, archived) and labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, SEND, WRITE, In, page, project_for
from casemsg.api.messaging import MessageOut
from casemsg.inbound import conversations, inbox
from casemsg.inbound.models import InboxItem, InboxLabel
from casemsg.messaging.models import Message

router = Router(tags=["conversations"])


class ContactOut(Schema):
    key: str = Field(description="The contact's key in …/conversations/{contact}: a case id, or mobile-worker:<id>.")
    type: str = Field(description="case or mobile_worker")
    name: str
    case_id: str | None = None
    mobile_worker_id: int | None = None


def _contact(who: conversations.Contact) -> dict[str, Any]:
    return {
        "key": who.key,
        "type": who.kind,
        "name": who.name,
        "case_id": who.case.case_id if who.case is not None else None,
        "mobile_worker_id": who.worker.pk if who.worker is not None else None,
    }


def _of(m: Message) -> conversations.Contact | None:
    if m.case is None and m.worker is None:
        return None
    return conversations.Contact(case=m.case, worker=m.worker)


class ConversationOut(Schema):
    contact: ContactOut
    last_message: MessageOut = Field(description="The contact's latest inbound message.")
    open_inbox: int = Field(description="Its messages open in the inbox.")


class ConversationList(Schema):
    count: int
    items: list[ConversationOut]


@router.get("/projects/{project}/conversations", auth=READ, response=ConversationList)
def list_conversations(
    request: HttpRequest, project: str, q: str = "", limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """The contacts (cases and mobile workers) who wrote to the project, the latest writer first; `q` finds a
    contact by part of its name or case id, or a username."""
    p = project_for(request, project)
    page([], limit, offset)  # the limits every list takes
    total, convs = conversations.conversations(p, q[:100], limit, offset)
    items = [{"contact": _contact(c.contact), "last_message": c.last, "open_inbox": c.open_items} for c in convs]
    return {"count": total, "items": items}


class ThreadOut(Schema):
    contact: ContactOut
    count: int
    items: list[MessageOut] = Field(description="Every message to and from the contact, newest first.")


class ReplyIn(In):
    text: str = Field(max_length=conversations.REPLY_MAX, description="Sent by SMS as written (no placeholders).")


# (before the thread's GET: its path is the longer one)
@router.post("/projects/{project}/conversations/{contact}/messages", auth=SEND, response={202: MessageOut})
def reply(request: HttpRequest, project: str, contact: str, payload: ReplyIn) -> Status:
    """Answer the contact by SMS through the send pipeline: consent and opt-out apply (a reply that cannot go is
    stored failed, with its error), quiet hours do not (a person answering a person). The contact's open inbox
    messages become handled."""
    p = project_for(request, project)
    msg = conversations.reply(p, conversations.contact(p, contact), payload.text)
    msg.refresh_from_db()
    return Status(202, msg)


@router.get("/projects/{project}/conversations/{contact}", auth=READ, response=ThreadOut)
def thread(request: HttpRequest, project: str, contact: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """A contact's messages, in and out, on every channel, with their status and error; `contact` is a case id
    or `mobile-worker:<id>` (`case:<id>` for a case id that itself starts with one of those prefixes)."""
    p = project_for(request, project)
    who = conversations.contact(p, contact)
    qs = conversations.messages_of(p, who)
    return {"contact": _contact(who), "count": qs.count(), "items": list(page(qs, limit, offset))}


# --- the inbox ---------------------------------------------------------------------------------------
class InboxItemOut(Schema):
    message_id: int
    state: str = Field(description="open, handled or archived")
    labels: list[str]
    received_on: datetime
    changed_on: datetime | None
    changed_by: str = Field(description="Who last changed its state: 'user alice', 'api key cm_AbCd… (name)'.")
    contact: ContactOut | None = Field(description="null for a sender no contact holds the number of")
    message: MessageOut

    @staticmethod
    def resolve_labels(item: InboxItem) -> list[str]:
        return sorted(lb.name for lb in item.labels.all())

    @staticmethod
    def resolve_contact(item: InboxItem) -> dict[str, Any] | None:
        who = _of(item.message)
        return _contact(who) if who is not None else None


class InboxList(Schema):
    count: int
    items: list[InboxItemOut]


@router.get("/projects/{project}/inbox", auth=READ, response=InboxList)
def list_inbox(
    request: HttpRequest,
    project: str,
    state: str = InboxItem.OPEN,
    label: str | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """The inbound messages nothing handled (no opt-out word, consent answer, survey or keyword took them),
    newest first: `state` open (the default), handled, archived or `all`; `label` a label's name; `q` part of
    the text, the number (written any way) or the contact's name."""
    p = project_for(request, project)
    qs = inbox.items(p, inbox.InboxFilter(state=None if state == "all" else state, label=label, search=q))
    return {"count": qs.count(), "items": list(page(qs, limit, offset))}


class InboxPatch(In):
    state: str | None = Field(None, description="open, handled or archived")
    labels: list[str] | None = Field(None, description="Its labels, all of them (a new name makes a label).")


@router.patch("/projects/{project}/inbox/{int:message_id}", auth=WRITE, response=InboxItemOut)
def change_inbox_item(request: HttpRequest, project: str, message_id: int, payload: InboxPatch) -> InboxItem:
    """Change an inbox message's state, its labels, or both (404 MESSAGE_NOT_FOUND for a message that is not
    in the project's inbox)."""
    p = project_for(request, project)
    inbox.item_of(p, message_id)
    if payload.labels is not None:
        inbox.set_labels(p, message_id, payload.labels)
    if payload.state is not None:
        inbox.set_state(p, [message_id], payload.state)
    return inbox.item_of(p, message_id)


class LabelOut(Schema):
    name: str
    open: int = Field(description="Its open messages.")

    @staticmethod
    def resolve_open(label: InboxLabel) -> int:
        return int(getattr(label, "n", 0))


class LabelIn(In):
    name: str = Field(max_length=inbox.LABEL_MAX)


@router.get("/projects/{project}/inbox/labels", auth=READ, response=list[LabelOut])
def list_labels(request: HttpRequest, project: str) -> list[InboxLabel]:
    return inbox.labels(project_for(request, project))


@router.post("/projects/{project}/inbox/labels", auth=WRITE, response={201: LabelOut})
def create_label(request: HttpRequest, project: str, payload: LabelIn) -> Status:
    return Status(201, inbox.label(project_for(request, project), payload.name))


@router.delete("/projects/{project}/inbox/labels/{name}", auth=WRITE, response={204: None})
def delete_label(request: HttpRequest, project: str, name: str) -> Status:
    """Delete a label (its messages keep their state)."""
    inbox.delete_label(project_for(request, project), name)
    return Status(204, None)
