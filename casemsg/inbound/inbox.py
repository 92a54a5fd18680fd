"""The inbox: the inbound messages nothing handled — no compliance word, consent answer, survey or keyword took
them (`handle.act`'s outcomes `unhandled` and `unknown_sender`) — waiting for a person, with their state (open,
handled, archived) and the project's labels.

The handler writes an item with the message it handled, in the same transaction (`handle.Writes` calls `add`),
so a message nothing handled is never missing from the inbox. Everything else that reads or changes the inbox
— the pages, the API — goes through this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.core import actor, errors
from casemsg.core.errors import InputError
from casemsg.inbound.models import InboxItem, InboxLabel
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

_MESSAGES = Prefetch("message", queryset=Message.objects.select_related("case", "worker"))
# The handler's outcomes that leave a message to a person.
UNHANDLED = frozenset({"unhandled", "unknown_sender"})
STATES = InboxItem.STATES
LABEL_MAX = 40
LABELS_MAX = 200  # per project


def outcome(m: Message) -> str:
    """The handler's outcome recorded in an inbound message's history ("" when it has none)."""
    return next((str(h["outcome"]) for h in reversed(m.history or []) if "outcome" in h), "")


def add(msgs: Iterable[Message]) -> int:
    """Put the handled messages whose outcome left them to a person into their project's inbox (inside the
    handler's transaction); a message already there stays as it is. Returns how many were added."""
    items = [
        InboxItem(
            project_id=m.project_id,
            message_id=m.pk,
            case_id=m.case_id,
            worker_id=m.worker_id,
            number=m.to,
            text=m.text,
            received_on=m.created_on,
        )
        for m in msgs
        if m.project_id is not None and m.direction == Message.IN and outcome(m) in UNHANDLED
    ]
    if items:
        InboxItem.objects.bulk_create(items, ignore_conflicts=True)
    return len(items)


@dataclass(frozen=True)
class InboxFilter:
    state: str | None = InboxItem.OPEN  # None: every state
    label: str | None = None  # a label's name
    search: str | None = None  # part of the text, of the number (written any way) or of the contact's name
    since_id: int | None = None  # only items newer than this one (the pages' live updates)


def _checked_state(state: str) -> str:
    if state not in STATES:
        raise InputError(errors.VALIDATION_ERROR, f"state must be one of {', '.join(STATES)}.")
    return state


def items(project: Project, f: InboxFilter) -> QuerySet[InboxItem]:
    """The project's inbox items matching `f`, newest first, with their message, its contact and the labels."""
    qs = InboxItem.objects.filter(project=project)
    if f.state:
        qs = qs.filter(state=_checked_state(f.state))
    if f.label:
        qs = qs.filter(labels__project=project, labels__name=f.label)
    if f.since_id:
        qs = qs.filter(pk__gt=f.since_id)
    search = (f.search or "").strip()
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        # numbers are stored as digits: "+254 711-222 333" finds 254711222333
        by_number = Q(number__icontains=digits) if len(digits) >= 3 and digits != search else Q(pk__in=[])
        qs = qs.filter(
            Q(text__icontains=search)
            | Q(number__icontains=search)
            | by_number
            # the contacts named so, found once (not joined to every item)
            | Q(case_id__in=Case.objects.filter(project=project, name__icontains=search).values("pk"))
            | Q(worker_id__in=MobileWorker.objects.filter(project=project, name__icontains=search).values("pk"))
        )
    # the page's messages in a query of their own (by primary key): joined, the planner may scan the table
    return qs.prefetch_related("labels", _MESSAGES).order_by("-received_on", "-pk")


def state_counts(project: Project) -> dict[str, int]:
    """{state: items} for the project's inbox, in one query."""
    rows = InboxItem.objects.filter(project=project).values("state").annotate(n=Count("pk")).order_by()
    out = dict.fromkeys(STATES, 0)
    out.update({r["state"]: r["n"] for r in rows})
    return out


def version(project: Project, f: InboxFilter) -> str:
    """What the inbox looks like, in a few characters: it changes when an item arrives, changes state or label,
    or goes (the pages poll it and redraw only then; their tabs count every state, so any change counts)."""
    if f.state:
        _checked_state(f.state)
    agg = InboxItem.objects.filter(project=project).aggregate(n=Count("pk"), last=Max("pk"), changed=Max("changed_on"))
    changed = agg["changed"].timestamp() if agg["changed"] else 0
    labels = InboxItem.labels.through.objects.filter(inboxitem__project=project).aggregate(
        n=Count("pk"), last=Max("pk")
    )
    return f"{agg['n']}-{agg['last'] or 0}-{changed:.6f}-{labels['n']}-{labels['last'] or 0}"


def item_of(project: Project, message_id: int) -> InboxItem:
    """The inbox item of one of the project's messages (404 MESSAGE_NOT_FOUND when it has none)."""
    item = (
        InboxItem.objects.filter(project=project, message_id=message_id).prefetch_related("labels", _MESSAGES).first()
    )
    if item is None:
        raise InputError(errors.MESSAGE_NOT_FOUND, f"No message {message_id} in this project's inbox.", 404)
    return item


def set_state(project: Project, message_ids: Sequence[int], state: str) -> int:
    """Move the inbox items of these messages to `state` (open, handled, archived), naming who did it (the
    current actor); returns how many changed."""
    _checked_state(state)
    who = actor.current()
    return InboxItem.objects.filter(project=project, message_id__in=list(message_ids)).update(
        state=state, changed_on=timezone.now(), changed_by=(who.who or who.source)[:200]
    )


def handled_for_contact(project: Project, case_pk: int | None, worker_pk: int | None) -> int:
    """A person answered the contact: its open items are handled."""
    if case_pk is None and worker_pk is None:
        return 0
    contact = Q(case_id=case_pk) if case_pk is not None else Q(worker_id=worker_pk)
    ids = InboxItem.objects.filter(Q(project=project, state=InboxItem.OPEN) & contact).values_list(
        "message_id", flat=True
    )
    return set_state(project, list(ids), InboxItem.HANDLED)


def open_counts(project: Project, case_pks: Iterable[int], worker_pks: Iterable[int]) -> dict[tuple[str, int], int]:
    """{("case", pk) or ("worker", pk): open items} for these contacts, in one query."""
    case_pks, worker_pks = list(case_pks), list(worker_pks)
    if not case_pks and not worker_pks:
        return {}
    rows = (
        InboxItem.objects.filter(project=project, state=InboxItem.OPEN)
        .filter(Q(case_id__in=case_pks) | Q(worker_id__in=worker_pks))
        .values("case_id", "worker_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    out: dict[tuple[str, int], int] = {}
    for r in rows:
        if r["case_id"] is not None:
            out[("case", r["case_id"])] = r["n"]
        elif r["worker_id"] is not None:
            out[("worker", r["worker_id"])] = r["n"]
    return out


# --- labels ----------------------------------------------------------------------------------------
def labels(project: Project) -> list[InboxLabel]:
    """The project's labels by name, each with `n`: its open items."""
    return list(
        InboxLabel.objects.filter(project=project)
        .annotate(n=Count("items", filter=Q(items__state=InboxItem.OPEN)))
        .order_by("name")
    )


def _label_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > LABEL_MAX:
        raise InputError(errors.VALIDATION_ERROR, f"A label is a name of 1–{LABEL_MAX} characters.")
    if "\x00" in name:
        raise InputError(errors.INVALID_VALUE, "A label may not contain a NUL character.")
    return " ".join(name.split())


def label(project: Project, name: str) -> InboxLabel:
    """The project's label of this name, made if it is new (at most LABELS_MAX labels)."""
    clean = _label_name(name)
    found = InboxLabel.objects.filter(project=project, name=clean).first()
    if found is not None:
        return found
    if InboxLabel.objects.filter(project=project).count() >= LABELS_MAX:
        raise InputError(errors.VALIDATION_ERROR, f"A project has at most {LABELS_MAX} inbox labels.")
    try:
        with transaction.atomic():
            return InboxLabel.objects.create(project=project, name=clean)
    except IntegrityError:  # made meanwhile by someone else
        return InboxLabel.objects.get(project=project, name=clean)


def delete_label(project: Project, name: str) -> None:
    deleted, _ = InboxLabel.objects.filter(project=project, name=_label_name(name)).delete()
    if not deleted:
        raise InputError(errors.NOT_FOUND, f"The inbox has no label '{name}'.", 404)


def set_labels(project: Project, message_id: int, names: Sequence[str]) -> InboxItem:
    """Give one inbox item exactly these labels (new names become labels)."""
    item = item_of(project, message_id)
    with transaction.atomic():
        item.labels.set([label(project, n) for n in dict.fromkeys(_label_name(n) for n in names)])
    return item_of(project, message_id)


def add_label(project: Project, message_id: int, name: str) -> InboxItem:
    item = item_of(project, message_id)
    item.labels.add(label(project, name))
    return item_of(project, message_id)


def remove_label(project: Project, message_id: int, name: str) -> InboxItem:
    item = item_of(project, message_id)
    found = InboxLabel.objects.filter(project=project, name=_label_name(name)).first()
    if found is not None:
        item.labels.remove(found)
    return item_of(project, message_id)
