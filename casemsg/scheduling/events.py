"""Event arithmetic: the next occurrence of a schedule for one recipient.

A recipient's series of events is fixed by its *frame* (`Frame`): the owner's schedule, the recipient's
time zone, the anchor (when the broadcast started or the case matched, or the local start of a date
property) and, for a time read from a case property, that time. `events` walks the series; `first_event`
(cached) finds the first event after an instant; `frame_for` and `next_due` read a stored instance's frame.
Nothing here writes: `lifecycle` stores what these compute, the tick (`occurrences`) advances with them.

Time zones: a schedule's named zone, else the recipient's own (a case's ``time_zone`` property, a mobile
worker's ``time_zone``), else the project's ``default_time_zone``, else UTC (``timing.zone_for``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from casemsg.cases.models import Case
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.scheduling import schedules, timing
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance
from casemsg.workers.models import MobileWorker

Owner = Broadcast | ConditionalAlert

EPSILON = timedelta(microseconds=1)
_SCAN_LIMIT = 10_000  # events looked at to find one: a guard, never reached by a valid schedule
TZ_PROPERTY = "time_zone"  # the case property holding a case's own time zone


class Due(NamedTuple):
    """One event of an instance: when it fires (UTC), that instant on the recipient's clock (naive; read
    from the instant, so never a wall time a DST gap skipped), its index."""

    utc: datetime
    local: datetime
    iteration: int


# --------------------------------------------------------------------------------------------------
# Owners and their schedules
# --------------------------------------------------------------------------------------------------


def owner_of(inst: ScheduleInstance) -> Owner:
    owner = inst.broadcast if inst.broadcast_id else inst.alert
    assert owner is not None
    return owner


def owner_kind(owner: Owner) -> str:
    return "broadcast" if isinstance(owner, Broadcast) else "alert"


@functools.lru_cache(maxsize=1024)
def _parsed(kind: str, owner_pk: int, revision: int, frozen: str) -> schedules.Schedule:
    return schedules.schedule_from_json(json.loads(frozen), "broadcast" if kind == "broadcast" else "alert")


def schedule_of(owner: Owner) -> schedules.Schedule:
    """The owner's schedule (parsed once per owner, revision and content)."""
    return _parsed(owner_kind(owner), owner.pk, owner.revision, json.dumps(owner.schedule, sort_keys=True))


def is_running(owner: Owner) -> bool:
    return owner.status == Broadcast.ACTIVE  # the same value for alerts


# --------------------------------------------------------------------------------------------------
# Frames and events
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Everything that fixes one recipient's series of events."""

    schedule: schedules.Schedule
    zone: str
    anchor: datetime  # UTC: offsets count from it; a timed series starts on its local date
    time_of_day: time | None = None  # a time read from a case property
    seed: str = ""  # a random window's pick depends on it (the recipient) and on the day

    @property
    def start_date(self) -> date:
        if self.schedule.start_date is not None:
            return self.schedule.start_date
        return timing.local_date(self.anchor, ZoneInfo(self.zone))


def _local(utc: datetime, zone: str) -> datetime:
    return utc.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def events(frame: Frame, min_index: int, after: datetime) -> Iterator[Due]:
    """The events of `frame` with index ≥ `min_index` and time strictly after `after`, in order."""
    s = frame.schedule
    if s.kind != "timed":
        offsets = s.offsets or (timedelta(0),)
        n = len(offsets)
        reps = s.count if s.repeat_every is not None else 1
        rep = min_index // n
        if s.repeat_every is not None and after > frame.anchor + offsets[-1]:
            rep = max(rep, (after - frame.anchor - offsets[-1]) // s.repeat_every)
        first_k = min_index % n if rep == min_index // n else 0
        while reps is None or rep < reps:
            base = frame.anchor + (s.repeat_every * rep if s.repeat_every is not None else timedelta(0))
            for k in range(first_k, n):
                utc = base + offsets[k]
                if utc > after:
                    yield Due(utc, _local(utc, frame.zone), rep * n + k)
            rep += 1
            first_k = 0
        return
    tz = ZoneInfo(frame.zone)
    window = s.window
    time_of_day = frame.time_of_day if s.time_property else (window[0] if window else None)
    if s.time_property and time_of_day is None:
        return
    # From a matching moment, the series is counted from its first event at or after that moment (the
    # day's earlier times do not use up the count); so is a broadcast's, from when it was created (its
    # anchor, `anchor_for`: "7 times" is seven sends even when today's time had passed); from a date
    # property, from that date's first event.
    matched = s.start_from in ("matched", "fixed")
    rec = schedules.recurrence(s, frame.start_date, time_of_day, unbounded=matched)
    first_index = 0
    if matched:
        first = next(_timed(frame, rec, tz, frame.anchor - EPSILON), None)
        if first is None:
            return
        first_index = first.iteration
    for due in _timed(frame, rec, tz, after):
        iteration = due.iteration - first_index
        if iteration < 0:
            continue
        if matched and s.count is not None and iteration >= s.count:
            return
        if iteration >= min_index:
            yield Due(due.utc, due.local, iteration)


def _timed(frame: Frame, rec: timing.Recurrence, tz: ZoneInfo, after: datetime) -> Iterator[Due]:
    """The recurrence's events strictly after `after`, with their index in the whole series."""
    window = frame.schedule.window
    # a random pick is up to a day after its window's start: look that much earlier
    cursor = after - timedelta(hours=25) if window else after
    scanned = 0
    while scanned < _SCAN_LIMIT:
        batch = timing.occurrences(rec, tz, cursor, 16)
        if not batch:
            return
        for o in batch:
            utc = o.utc
            if window is not None:
                day = o.local.date()
                utc = timing.random_time_in_window(day, window[0], window[1], tz, f"{frame.seed}:{day}")
            if utc > after:
                # the wall time is read back from the instant, not the one planned: a planned 02:30 in a
                # spring-forward gap fires at 03:00, and that is what the coming sends must say
                yield Due(utc, _local(utc, frame.zone), o.index)
        scanned += len(batch)
        cursor = batch[-1].utc


@functools.lru_cache(maxsize=65_536)
def first_event(frame: Frame, min_index: int, after: datetime) -> Due | None:
    """The first event with index ≥ `min_index` strictly after `after` (cached: a broadcast's recipients
    in one zone share their events)."""
    return next(events(frame, min_index, after), None)


def _parse_local(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def current(inst: ScheduleInstance) -> Due | None:
    """The instance's next event as stored."""
    if inst.next_due_utc is None:
        return None
    local = _parse_local(inst.next_local) or _local(inst.next_due_utc, inst.time_zone or "UTC")
    return Due(inst.next_due_utc, local, inst.iteration)


# --------------------------------------------------------------------------------------------------
# Time zones, properties, anchors
# --------------------------------------------------------------------------------------------------


def zone_for_recipient(contact_tz: str | None, project: Project, schedule: schedules.Schedule | None = None) -> str:
    """The zone a recipient's local times are read in: the schedule's named zone, else the contact's
    ``time_zone``, else the project's ``default_time_zone``, else UTC (an invalid name is skipped)."""
    if schedule is not None and schedule.time_zone:
        return schedule.time_zone
    return zone_name(contact_tz or "", project.default_time_zone or "")


@functools.lru_cache(maxsize=4096)
def zone_name(contact_tz: str, project_tz: str) -> str:
    zone, _problem = timing.zone_for(contact_tz, project_tz)
    return zone.key


def contact_time_zone(contact: Case | MobileWorker | None) -> str:
    if contact is None:
        return ""
    if isinstance(contact, Case):
        return str((contact.properties or {}).get(TZ_PROPERTY) or "")
    return contact.time_zone or ""


def property_date(props: Mapping[str, Any], name: str) -> date | None:
    """A date property: YYYY-MM-DD, or the date part of an ISO date-time."""
    value = props.get(name)
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return day if day <= schedules.LAST_DATE else None  # (later: its UTC instant may not exist)


def property_time(props: Mapping[str, Any], name: str) -> time | None:
    value = props.get(name)
    try:
        return schedules.parse_time(str(value).strip(), name) if value not in (None, "") else None
    except InputError:
        return None


def anchor_for(schedule: schedules.Schedule, zone: str, started: datetime, props: Mapping[str, Any]) -> datetime | None:
    """Where a recipient's events are counted from; None while a start date property holds no date. A
    broadcast's timed series counts from the later of its start date's local midnight and `started` (when
    the broadcast was created): events before it are not counted, so `count` is the number of sends."""
    if schedule.start_from == "property":
        day = property_date(props, schedule.start_property)
        if day is None:
            return None
        at = schedule.start_time or time(0)
        return timing.at_local_time(day + timedelta(days=schedule.start_days), at, ZoneInfo(zone))
    if schedule.kind == "timed" and schedule.start_date is not None:
        return max(timing.at_local_time(schedule.start_date, time(0), ZoneInfo(zone)), started)
    return started


def seed_for(owner: Owner, source_case_id: int | None, role: str, case_id: int | None, worker_id: int | None) -> str:
    return f"{owner_kind(owner)}{owner.pk}:{source_case_id or ''}:{role}:{case_id or ''}:{worker_id or ''}"


def frame_for(
    inst: ScheduleInstance, owner: Owner, schedule: schedules.Schedule, props: Mapping[str, Any] | None = None
) -> Frame | None:
    """The instance's frame as stored (its zone and anchor); `props`, the source case's properties, is
    only read for a time property. None when a time property holds no time."""
    time_of_day = None
    if schedule.time_property:
        time_of_day = property_time(props or {}, schedule.time_property)
        if time_of_day is None:
            return None
    seed = seed_for(owner, inst.source_case_id, inst.role, inst.case_id, inst.worker_id)
    return Frame(schedule, inst.time_zone or "UTC", inst.anchor_utc, time_of_day, seed if schedule.window else "")


def next_due(
    inst: ScheduleInstance,
    schedule: schedules.Schedule,
    now: datetime,
    props: Mapping[str, Any] | None = None,
    floor: datetime | None = None,
) -> Due | None:
    """The instance's next event under its current frame: the first with index ≥ its iteration at or after
    `floor`, by default the earlier of `now` and its stored due time (an event already due and not yet sent
    stays due). Used when starting and recomputing; the tick advances with `first_event` after the event it
    sent, and applies the lateness to whatever is due."""
    frame = frame_for(inst, owner_of(inst), schedule, props)
    if frame is None:
        return None
    if floor is None:
        floor = min(now, inst.next_due_utc) if inst.next_due_utc is not None else now
    return first_event(frame, inst.iteration, floor - EPSILON)
