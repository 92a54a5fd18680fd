"""One due occurrence: what an instance does when its event is due, and the message it queues.

`advance` decides, for one claimed instance (or the stand-in of a group of broadcast instances that share
everything): send its latest due event (the message, `message`, carries the send key
``si:<instance id>:<iteration>``, `send_key`), skip the events more than the owner's
``max_lateness_minutes`` late, wait (a time property holds no time), or end. It changes the instance in
memory only: the tick (`casemsg.scheduling.tick`) claims, queues and writes, one batch per transaction.

`Plan` is an owner as the tick reads it once per batch (its parsed schedule and content, its messaging
event); `owners`, `source_properties` and `languages` read what a batch of instances needs in a fixed
number of queries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db.models import Model, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from casemsg.cases.models import Case
from casemsg.messaging import pipeline
from casemsg.messaging.models import MessagingEvent
from casemsg.projects.models import Project
from casemsg.scheduling import contents, events, lifecycle, schedules
from casemsg.scheduling.events import Due, Owner
from casemsg.scheduling.lifecycle import COMPLETED
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance
from casemsg.workers.models import MobileWorker

log = logging.getLogger("casemsg.scheduling.tick")  # the tick's log, as before the split: logs are filtered by it

_M = TypeVar("_M", bound=Model)


def send_key(inst_pk: int, iteration: int) -> str:
    """The unique key of one occurrence (Message.send_key)."""
    return f"si:{inst_pk}:{iteration}"


def owner_key(inst: ScheduleInstance) -> tuple[str, int]:
    """The instance's owner as a key of a batch's plans: ("broadcast" | "alert", pk)."""
    return ("broadcast", inst.broadcast_id) if inst.broadcast_id else ("alert", inst.alert_id or 0)


def owners(insts: Sequence[ScheduleInstance]) -> dict[tuple[str, int], Owner]:
    """The owners of these instances, by `owner_key` (two queries)."""
    out: dict[tuple[str, int], Owner] = {}
    for pk, b in Broadcast.objects.in_bulk({i.broadcast_id for i in insts if i.broadcast_id}).items():
        out[("broadcast", pk)] = b
    for pk, a in ConditionalAlert.objects.in_bulk({i.alert_id for i in insts if i.alert_id}).items():
        out[("alert", pk)] = a
    return out


@dataclass
class Plan:
    """An owner as the tick uses it: read once per batch."""

    owner: Owner
    schedule: schedules.Schedule
    content: contents.Content
    translations: dict[str, str] | None
    _event: int | None = None

    @classmethod
    def of(cls, owner: Owner) -> Plan:
        content = contents.content_from_json(owner.content or {})
        return cls(owner, events.schedule_of(owner), content, dict(content.translations) or None)

    def event_id(self) -> int:
        if self._event is None:
            self._event = _event_id(self.owner)
        return self._event


def _ref(model: type[_M], pk: int) -> _M:
    """A reference to a row by primary key for `pipeline.queue`'s bulk path, which reads only `.pk`:
    building a whole model instance per message cost a fifth of a large tick."""
    obj = model.__new__(model)
    obj.__dict__[model._meta.pk.attname] = pk
    return obj


def source_properties(insts: Sequence[ScheduleInstance], plans: dict[tuple[str, int], Plan]) -> dict[int, dict]:
    """Properties of the source cases whose schedule reads a time from one (one query, only then)."""
    pks = {i.source_case_id for i in insts if i.source_case_id and plans[owner_key(i)].schedule.time_property}
    return dict(Case.objects.filter(pk__in=pks).values_list("pk", "properties")) if pks else {}


def languages(insts: Sequence[ScheduleInstance], plans: dict[tuple[str, int], Plan]) -> dict[tuple[str, int], str]:
    """The recipients' own languages, for email subjects (the body's language is chosen at send time)."""
    emails = [i for i in insts if plans[owner_key(i)].content.channel == "email"]
    if not emails:
        return {}
    out: dict[tuple[str, int], str] = {}
    case_pks = {i.case_id for i in emails if i.case_id}
    lang_text = Cast(KeyTextTransform("language_code", "properties"), output_field=TextField())
    for pk, lang in Case.objects.filter(pk__in=case_pks).annotate(_lang=lang_text).values_list("pk", "_lang"):
        out[("case", pk)] = str(lang or "")
    worker_pks = {i.worker_id for i in emails if i.worker_id}
    for pk, lang in MobileWorker.objects.filter(pk__in=worker_pks).values_list("pk", "language_code"):
        out[("worker", pk)] = lang or ""
    return out


def _event_id(owner: Owner) -> int:
    """The owner's messaging event (created once, on its first message if the owner has none yet)."""
    if owner.event_id is None:
        event = MessagingEvent.objects.create(
            project_id=owner.project_id,
            source="broadcast" if isinstance(owner, Broadcast) else "alert",
            source_id=str(owner.pk),
            description=owner.name[:255],
        )
        type(owner).objects.filter(pk=owner.pk, event__isnull=True).update(event=event)
        owner.event_id = type(owner).objects.filter(pk=owner.pk).values_list("event_id", flat=True).first() or event.pk
    return owner.event_id


def advance(
    inst: ScheduleInstance,
    plan: Plan,
    project: Project,
    now: datetime,
    props: dict | None,
    languages: dict[tuple[str, int], str],
) -> pipeline.MessageSpec | None:
    """Decide what this due instance does now: send its (latest due) event, skip late ones, wait, or end.
    Returns the message to queue, if any; the instance is updated in memory."""
    owner = plan.owner
    if owner.status == Broadcast.CANCELLED or owner.status == Broadcast.DONE:
        _end(
            inst,
            now,
            lifecycle.CANCELLED,
            {"outcome": "not_sent", "detail": f"The {events.owner_kind(owner)} is {owner.status}."},
        )
        return None
    if owner.status != Broadcast.ACTIVE:  # paused: no due time until it resumes
        inst.next_due_utc, inst.next_local = None, ""
        return None
    schedule = plan.schedule
    frame = events.frame_for(inst, owner, schedule, props)
    cur = events.current(inst)
    assert cur is not None  # it was claimed by its due time
    if frame is None:  # a time property holds no time any more: wait for the property to change
        inst.next_due_utc, inst.next_local = None, ""
        inst.last_event = _log(
            now, "waiting", cur, detail=f"The case property {schedule.time_property} holds no time of day."
        )
        return None
    floor = now - timedelta(minutes=owner.max_lateness_minutes)
    skipped = 0
    late_first = cur
    if cur.utc < floor:
        nxt = events.first_event(frame, cur.iteration + 1, floor - events.EPSILON)
        skipped = (nxt.iteration if nxt is not None else cur.iteration + 1) - cur.iteration
        cur = nxt
    # several events due at once (a backlog within the lateness): only the latest is sent
    following = events.first_event(frame, cur.iteration + 1, cur.utc) if cur is not None else None
    while cur is not None and following is not None and following.utc <= now:
        skipped += following.iteration - cur.iteration
        cur, following = following, events.first_event(frame, following.iteration + 1, following.utc)
    if skipped:
        log.info(
            "schedule instance %s: %s event(s) from #%s (due %s) skipped as too late",
            inst.pk,
            skipped,
            late_first.iteration,
            late_first.utc.isoformat(),
        )
    if cur is None:
        _end(inst, now, COMPLETED, _log(now, "skipped_late", late_first, skipped=skipped))
        return None
    if cur.utc > now:  # every due event was too late; the next one is still to come
        _set(inst, cur)
        inst.last_event = _log(now, "skipped_late", late_first, skipped=skipped)
        return None
    key = send_key(inst.pk, cur.iteration)
    spec = message(inst, plan, project, cur, key, languages)
    inst.last_event = _log(now, "queued", cur, send_key=key, skipped=skipped)
    if following is None:
        _end(inst, now, COMPLETED, inst.last_event)
    else:
        _set(inst, following)
    return spec


def _set(inst: ScheduleInstance, due: Due) -> None:
    inst.next_due_utc, inst.next_local, inst.iteration = due.utc, due.local.isoformat(), due.iteration


def _end(inst: ScheduleInstance, now: datetime, reason: str, last_event: dict[str, Any]) -> None:
    inst.active, inst.ended_on, inst.end_reason = False, now, reason
    inst.next_due_utc, inst.next_local = None, ""
    inst.last_event = last_event if "at" in last_event else {"at": now.isoformat(), **last_event}


def _log(now: datetime, outcome: str, due: Due, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": now.isoformat(),
        "outcome": outcome,
        "iteration": due.iteration,
        "due_utc": due.utc.isoformat(),
        "local": due.local.isoformat(),
    }
    out.update({k: v for k, v in extra.items() if v})
    return out


def message(
    inst: ScheduleInstance,
    plan: Plan,
    project: Project,
    due: Due,
    key: str,
    languages: dict[tuple[str, int], str],
) -> pipeline.MessageSpec:
    owner, content = plan.owner, plan.content
    case = _ref(Case, inst.case_id) if inst.case_id else None
    worker = _ref(MobileWorker, inst.worker_id) if inst.worker_id else None
    # a message to a case's owner is about that case: its {case.…} fields render from it
    about = _ref(Case, inst.source_case_id) if worker is not None and inst.source_case_id else None
    subject = ""
    if content.channel == "email":
        own = languages.get(("case", inst.case_id) if inst.case_id else ("worker", inst.worker_id or 0), "")
        own = own if own in (project.sms_languages or []) else ""
        subject = content.subject_for([own, owner.default_language, project.default_language])
    return pipeline.MessageSpec(
        channel=content.channel,
        case=case,
        worker=worker,
        text=content.text,
        translations=plan.translations,
        subject=subject,
        default_language=owner.default_language,
        send_after=due.utc,
        send_key=key,
        about=about,
        whatsapp=dict(content.whatsapp) or None,  # the template outside the window (messaging.whatsapp)
    )
