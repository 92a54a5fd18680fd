"""Schedule instances: one per broadcast or alert × recipient, holding its next due time in UTC.

An instance's series of events is fixed by its *frame*: the owner's schedule, the recipient's time zone,
the anchor (when the broadcast started or the case matched, or the local start of a date property) and,
for a time read from a case property, that time. ``iteration`` is the index of the next event and only
ever grows within a row, so the send key ``si:<instance id>:<iteration>`` names one occurrence for good;
anything that restarts a series (the case matches again, the schedule changed) makes a new row.

Who uses what:

- the rules (``casemsg.scheduling.rules``/``runner``): ``start_for_cases`` and ``end_for_cases``;
- the services: ``start_broadcast``, ``end_instances``, ``pause_instances``, ``resume_instances``;
- the case and worker after-change hooks (connected in ``SchedulingConfig.ready``): ``on_cases_changed``
  and ``on_workers_changed`` → ``recompute_for_cases`` / ``recompute_for_workers``;
- the tick (``casemsg.scheduling.tick``): ``Frame``, ``first_event``;
- the case schedule (``GET …/cases/{case_id}/schedule``): ``schedule_for_case``.

Time zones: a schedule's named zone, else the recipient's own (a case's ``time_zone`` property, a mobile
worker's ``time_zone``), else the project's ``default_time_zone``, else UTC (``timing.zone_for``).
A case's ``owner_id`` names its mobile worker by username, or else by id (the digits of its primary key).
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.contacts.status import resolve_language
from casemsg.core import bulk
from casemsg.core.errors import InputError
from casemsg.messaging import render
from casemsg.projects.models import Project
from casemsg.scheduling import specs, timing
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance
from casemsg.surveys import engine as survey_engine
from casemsg.surveys.models import Survey
from casemsg.workers.models import MobileWorker

log = logging.getLogger(__name__)

Owner = Broadcast | ConditionalAlert

# why an instance ended (ScheduleInstance.end_reason); the rules add their own (no_longer_matches, …)
COMPLETED = "completed"
CANCELLED = "cancelled"
SCHEDULE_CHANGED = "schedule_changed"
RECIPIENT_REMOVED = "recipient_removed"

EPSILON = timedelta(microseconds=1)
CHUNK = 5000
_SCAN_LIMIT = 10_000  # events looked at to find one: a guard, never reached by a valid schedule
_TZ_PROPERTY = "time_zone"


class Due(NamedTuple):
    """One event of an instance: when it fires (UTC), the local wall time planned, its index."""

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
def _parsed(kind: str, owner_pk: int, revision: int, frozen: str) -> specs.Schedule:
    return specs.schedule_from_json(json.loads(frozen), "broadcast" if kind == "broadcast" else "alert")


def schedule_of(owner: Owner) -> specs.Schedule:
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

    schedule: specs.Schedule
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
    # day's earlier times do not use up the count); from a date, from that date's first event.
    matched = s.start_from == "matched"
    rec = specs.recurrence(s, frame.start_date, time_of_day, unbounded=matched)
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
            utc, local = o.utc, o.local
            if window is not None:
                day = o.local.date()
                utc = timing.random_time_in_window(day, window[0], window[1], tz, f"{frame.seed}:{day}")
                local = _local(utc, frame.zone)
            if utc > after:
                yield Due(utc, local, o.index)
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


def zone_for_recipient(contact_tz: str | None, project: Project, schedule: specs.Schedule | None = None) -> str:
    """The zone a recipient's local times are read in: the schedule's named zone, else the contact's
    ``time_zone``, else the project's ``default_time_zone``, else UTC (an invalid name is skipped)."""
    if schedule is not None and schedule.time_zone:
        return schedule.time_zone
    return _zone_name(contact_tz or "", project.default_time_zone or "")


@functools.lru_cache(maxsize=4096)
def _zone_name(contact_tz: str, project_tz: str) -> str:
    zone, _problem = timing.zone_for(contact_tz, project_tz)
    return zone.key


def contact_time_zone(contact: Case | MobileWorker | None) -> str:
    if contact is None:
        return ""
    if isinstance(contact, Case):
        return str((contact.properties or {}).get(_TZ_PROPERTY) or "")
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
    return day if day <= specs.LAST_DATE else None  # (later: its UTC instant may not exist)


def property_time(props: Mapping[str, Any], name: str) -> time | None:
    value = props.get(name)
    try:
        return specs.parse_time(str(value).strip(), name) if value not in (None, "") else None
    except InputError:
        return None


def anchor_for(schedule: specs.Schedule, zone: str, started: datetime, props: Mapping[str, Any]) -> datetime | None:
    """Where a recipient's events are counted from; None while a start date property holds no date."""
    if schedule.start_from == "property":
        day = property_date(props, schedule.start_property)
        if day is None:
            return None
        at = schedule.start_time or time(0)
        return timing.at_local_time(day + timedelta(days=schedule.start_days), at, ZoneInfo(zone))
    if schedule.kind == "timed" and schedule.start_date is not None:
        return timing.at_local_time(schedule.start_date, time(0), ZoneInfo(zone))
    return started


def _seed(owner: Owner, source_case_id: int | None, role: str, case_id: int | None, worker_id: int | None) -> str:
    return f"{owner_kind(owner)}{owner.pk}:{source_case_id or ''}:{role}:{case_id or ''}:{worker_id or ''}"


def frame_for(
    inst: ScheduleInstance, owner: Owner, schedule: specs.Schedule, props: Mapping[str, Any] | None = None
) -> Frame | None:
    """The instance's frame as stored (its zone and anchor); `props`, the source case's properties, is
    only read for a time property. None when a time property holds no time."""
    time_of_day = None
    if schedule.time_property:
        time_of_day = property_time(props or {}, schedule.time_property)
        if time_of_day is None:
            return None
    seed = _seed(owner, inst.source_case_id, inst.role, inst.case_id, inst.worker_id)
    return Frame(schedule, inst.time_zone or "UTC", inst.anchor_utc, time_of_day, seed if schedule.window else "")


def next_due(
    inst: ScheduleInstance,
    schedule: specs.Schedule,
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


def _set_due(inst: ScheduleInstance, due: Due | None) -> None:
    if due is None:
        inst.next_due_utc, inst.next_local = None, ""
    else:
        inst.next_due_utc, inst.next_local, inst.iteration = due.utc, due.local.isoformat(), due.iteration


# --------------------------------------------------------------------------------------------------
# Starting and ending
# --------------------------------------------------------------------------------------------------

_INSTANCE_FIELDS = [
    "time_zone",
    "anchor_utc",
    "iteration",
    "next_due_utc",
    "next_local",
    "active",
    "claim",
    "ended_on",
    "end_reason",
    "last_event",
]


def _row(
    owner: Owner,
    now: datetime,
    role: str,
    source_case: int | None,
    case: int | None,
    worker: int | None,
    zone: str,
    anchor: datetime | None,
    due: Due | None,
    reset_value: str = "",
    waiting: str = "",
) -> dict[str, Any]:
    running = is_running(owner)
    ended = due is None and not waiting and running
    last_event: dict[str, Any] = {}
    if waiting:
        last_event = {"at": now.isoformat(), "outcome": "waiting", "detail": waiting}
    elif ended:
        last_event = {"at": now.isoformat(), "outcome": "no_events", "detail": "No event of the schedule is left."}
    return {
        "project_id": owner.project_id,
        "broadcast_id": owner.pk if isinstance(owner, Broadcast) else None,
        "alert_id": owner.pk if isinstance(owner, ConditionalAlert) else None,
        "source_case_id": source_case,
        "role": role,
        "case_id": case,
        "worker_id": worker,
        "revision": owner.revision,
        "reset_value": reset_value,
        "anchor_utc": anchor or now,
        "time_zone": zone,
        "iteration": due.iteration if due is not None and running else 0,
        "next_due_utc": due.utc if due is not None and running else None,
        "next_local": due.local.isoformat() if due is not None and running else "",
        "active": not ended,
        "created_on": now,
        "ended_on": now if ended else None,
        "end_reason": COMPLETED if ended else "",
        # (left out when empty: the bulk insert then prepares the default once, not per row)
        **({"last_event": last_event} if last_event else {}),
    }


def _owners_by_key(cases: Sequence[Case], project: Project) -> dict[str, MobileWorker]:
    """Mobile workers named by the cases' owner_id: by username first, else by id."""
    keys = {c.owner_id for c in cases if c.owner_id}
    if not keys:
        return {}
    ids = [int(k) for k in keys if k.isdigit()]
    found: dict[str, MobileWorker] = {}
    rows = MobileWorker.objects.filter(Q(username__in=keys) | Q(pk__in=ids), project=project)
    for w in sorted(rows, key=lambda w: w.username not in keys):  # usernames win over ids
        if w.username in keys:
            found.setdefault(w.username, w)
        if str(w.pk) in keys:
            found.setdefault(str(w.pk), w)
    return found


def _parents(cases: Sequence[Case], project: Project) -> dict[str, Case]:
    ids = {c.parent_id for c in cases if c.parent_id}
    if not ids:
        return {}
    return {p.case_id: p for p in Case.objects.filter(project=project, case_id__in=ids)}


def start_for_cases(
    alert: ConditionalAlert,
    cases: Sequence[Case],
    now: datetime | None = None,
    matched_on: datetime | Mapping[int, datetime] | None = None,
    restart: Iterable[int] = (),
) -> int:
    """Start the alert's schedule for these (matching) cases, one instance per recipient role; returns
    how many instances started. Bulk: a fixed number of queries for the whole list.

    A (case, role) whose latest instance is still active, or ran to its end (completed) while the case
    kept matching, is left alone: a schedule restarts only after `end_for_cases` ended it (the case
    stopped matching, its reset property changed) or the schedule itself changed; `restart` (case pks)
    names the cases whose completed schedule starts again (the case hook: its reset value changed, or it
    matches again after it stopped matching). `matched_on` (one
    instant, or one per case pk; default `now`) is when each case matched: "from matched" schedules count
    from it, and events before `now` are not sent. Call inside the transaction of the change."""
    now = now or timezone.now()
    cases = list({c.pk: c for c in cases}.values())  # each case once
    if not cases:
        return 0
    project = alert.project
    schedule = schedule_of(alert)
    roles = [r for r in specs.ROLES if r in (alert.recipients or [])]
    pks = [c.pk for c in cases]
    latest: dict[tuple[int, str], tuple[int, bool, str]] = {}
    for pk, source, role, active, reason in ScheduleInstance.objects.filter(
        alert=alert, source_case_id__in=pks
    ).values_list("pk", "source_case_id", "role", "active", "end_reason"):
        if (source, role) not in latest or latest[(source, role)][0] < pk:
            latest[(source, role)] = (pk, active, reason)
    owners = _owners_by_key(cases, project) if "owner" in roles else {}
    parents = _parents(cases, project) if "parent" in roles else {}
    again = set(restart)
    rows = []
    for case in cases:
        props = case.properties or {}
        started = matched_on.get(case.pk, now) if isinstance(matched_on, Mapping) else (matched_on or now)
        for role in roles:
            prev = latest.get((case.pk, role))
            if prev is not None and (prev[1] or (prev[2] == COMPLETED and case.pk not in again)):
                continue
            recipient: Case | MobileWorker | None
            if role == "case":
                recipient = case
            elif role == "owner":
                recipient = owners.get(case.owner_id) if case.owner_id else None
            else:
                recipient = parents.get(case.parent_id) if case.parent_id else None
            if recipient is None:
                continue  # no owner / parent to message: nothing to start
            rows.append(_alert_row(alert, project, schedule, case, role, recipient, props, started, now))
    bulk.insert_rows(ScheduleInstance, rows, ignore_conflicts=True)
    return sum(1 for r in rows if r["active"])


def _alert_row(
    alert: ConditionalAlert,
    project: Project,
    schedule: specs.Schedule,
    case: Case,
    role: str,
    recipient: Case | MobileWorker,
    props: Mapping[str, Any],
    started: datetime,
    now: datetime,
) -> dict[str, Any]:
    zone = zone_for_recipient(contact_time_zone(recipient), project, schedule)
    case_pk = recipient.pk if isinstance(recipient, Case) else None
    worker_pk = recipient.pk if isinstance(recipient, MobileWorker) else None
    reset_value = str(props.get(alert.reset_property) or "") if alert.reset_property else ""
    anchor = anchor_for(schedule, zone, started, props)
    if anchor is None:
        detail = f"The case property {schedule.start_property} holds no date (YYYY-MM-DD)."
        return _row(alert, now, role, case.pk, case_pk, worker_pk, zone, None, None, reset_value, detail)
    time_of_day = property_time(props, schedule.time_property) if schedule.time_property else None
    if schedule.time_property and time_of_day is None:
        detail = f"The case property {schedule.time_property} holds no time of day (HH:MM)."
        return _row(alert, now, role, case.pk, case_pk, worker_pk, zone, anchor, None, reset_value, detail)
    seed = _seed(alert, case.pk, role, case_pk, worker_pk) if schedule.window else ""
    due = first_event(Frame(schedule, zone, anchor, time_of_day, seed), 0, now - EPSILON)
    return _row(alert, now, role, case.pk, case_pk, worker_pk, zone, anchor, due, reset_value)


def end_for_cases(alert: ConditionalAlert, case_pks: Iterable[int], reason: str, now: datetime | None = None) -> int:
    """End the alert's active instances started by these cases (every role); returns how many ended."""
    now = now or timezone.now()
    pks = list(case_pks)
    ended = 0
    for start in range(0, len(pks), 1000):
        ended += end_instances(
            ScheduleInstance.objects.filter(alert=alert, source_case_id__in=pks[start : start + 1000]), reason, now
        )
    return ended


def end_instances(qs: QuerySet[ScheduleInstance], reason: str, now: datetime) -> int:
    """End the active instances of `qs` (one statement)."""
    return qs.filter(active=True).update(
        active=False, ended_on=now, end_reason=reason, next_due_utc=None, next_local="", claim=""
    )


# --------------------------------------------------------------------------------------------------
# Broadcast recipients
# --------------------------------------------------------------------------------------------------


def _matching_cases(project: Project, sel: specs.CaseSelection) -> Q:
    q = Q(case_type=sel.case_type, closed=False)
    for i, value in enumerate(sel.filters.values()):
        q &= Q(**{f"_prop{i}": value})
    return q


def _with_filters(qs: QuerySet[Case], sel: specs.CaseSelection) -> QuerySet[Case]:
    for i, key in enumerate(sel.filters):
        # KeyTextTransform takes the name literally (see casemsg.cases.queries)
        qs = qs.annotate(**{f"_prop{i}": Cast(KeyTextTransform(key, "properties"), output_field=TextField())})
    return qs


def recipient_querysets(broadcast: Broadcast) -> tuple[QuerySet[Case] | None, QuerySet[MobileWorker] | None]:
    """The broadcast's case recipients and mobile-worker recipients as two querysets (None: none of that
    kind). Open cases of the type matching every filter (exact values), plus the listed case_ids (open or
    not: a closed one gets a failed message saying so); the listed workers, or every active one for
    "all", plus the owners of matching open cases."""
    project = broadcast.project
    who = specs.broadcast_recipients_from_json(broadcast.recipients)
    cases: QuerySet[Case] | None = None
    if who.cases is not None or who.case_ids:
        qs = Case.objects.filter(project=project)
        q = Q(pk__in=[])
        if who.cases is not None:
            qs = _with_filters(qs, who.cases)
            q |= _matching_cases(project, who.cases)
        if who.case_ids:
            q |= Q(case_id__in=list(who.case_ids))
        cases = qs.filter(q)
    workers: QuerySet[MobileWorker] | None = None
    if who.mobile_workers or who.owners_of is not None:
        wq = Q(pk__in=[])
        if who.mobile_workers == "all":
            wq |= Q(active=True)
        elif who.mobile_workers:
            wq |= Q(pk__in=[w for w in who.mobile_workers if isinstance(w, int)])
            wq |= Q(username__in=[w for w in who.mobile_workers if isinstance(w, str)])
        wqs = MobileWorker.objects.filter(project=project)
        if who.owners_of is not None:
            owner_ids = (
                _with_filters(Case.objects.filter(project=project), who.owners_of)
                .filter(_matching_cases(project, who.owners_of))
                .exclude(owner_id="")
                .values("owner_id")
            )
            wqs = wqs.annotate(_pk_text=Cast("pk", CharField()))
            wq |= Q(username__in=owner_ids) | Q(_pk_text__in=owner_ids)
        workers = wqs.filter(wq)
    return cases, workers


def _pages(qs: QuerySet[Any, tuple[Any, ...]], chunk: int) -> Iterator[tuple[Any, ...]]:
    last = 0
    while True:
        page = list(qs.filter(pk__gt=last).order_by("pk")[:chunk])
        yield from page
        if len(page) < chunk:
            return
        last = page[-1][0]


def start_broadcast(
    broadcast: Broadcast, now: datetime | None = None, chunk: int = CHUNK, queued_now: bool = False
) -> int:
    """Create an instance for every recipient that has no active one yet; returns how many. Set-based:
    the case recipients are written by one INSERT … SELECT per time zone (the zone's first event computed
    once; the cases' zones read with one DISTINCT query, or none when the schedule names its zone), the
    mobile workers (few) in chunks. Call inside the transaction of the change (services).

    `queued_now`: the caller queues, in the same transaction, the message of every instance whose only
    event is due now (`tick.queue_started`, a "now" broadcast): those instances are written completed,
    their event recorded as queued, so that no UPDATE of them follows."""
    now = now or timezone.now()
    project = broadcast.project
    schedule = schedule_of(broadcast)
    only_new = ScheduleInstance.objects.filter(broadcast=broadcast, active=True).exists()
    cases, workers = _recipients_to_start(broadcast, only_new)
    templates: dict[str, dict[str, Any]] = {}

    def template(zone: str) -> dict[str, Any]:
        if zone not in templates:
            anchor = anchor_for(schedule, zone, now, {})
            frame = Frame(schedule, zone, anchor or now)
            due = first_event(frame, 0, now - EPSILON) if anchor else None
            row = templates[zone] = _row(broadcast, now, "", None, None, None, zone, anchor, due)
            if queued_now and due is not None and due.utc <= now and first_event(frame, 1, due.utc) is None:
                row.update(
                    active=False,
                    next_due_utc=None,
                    next_local="",
                    ended_on=now,
                    end_reason=COMPLETED,
                    last_event={
                        "at": now.isoformat(),
                        "outcome": "queued",
                        "iteration": due.iteration,
                        "due_utc": due.utc.isoformat(),
                        "local": due.local.isoformat(),
                    },
                )
        return templates[zone]

    started = 0
    if cases is not None:
        case_table = connection.ops.quote_name(Case._meta.db_table)
        for zone, selection in _cases_by_zone(cases, project, schedule).items():
            row = {k: v for k, v in template(zone).items() if k not in ("case_id", "source_case_id")}
            row["role"] = ScheduleInstance.CASE
            sql, params = selection.values("pk").order_by().query.sql_with_params()
            started += bulk.insert_select(
                ScheduleInstance,
                row,
                {"case_id": "c.id", "source_case_id": "c.id"},
                f"{case_table} AS c WHERE c.id IN ({sql})",
                list(params),
            )
    if workers is not None:
        rows: list[dict[str, Any]] = []
        for pk, zone in _pages(workers.values_list("pk", "time_zone"), chunk):
            row = template(zone_for_recipient(zone or "", project, schedule)).copy()
            row["role"] = ScheduleInstance.WORKER
            row["worker_id"] = pk
            rows.append(row)
            if len(rows) >= chunk:
                bulk.insert_rows(ScheduleInstance, rows)
                started, rows = started + len(rows), []
        bulk.insert_rows(ScheduleInstance, rows)
        started += len(rows)
    return started


def _cases_by_zone(cases: QuerySet[Case], project: Project, schedule: specs.Schedule) -> dict[str, QuerySet[Case]]:
    """The case recipients split by the zone their local times are read in: all of them when the schedule
    names a zone; otherwise by their `time_zone` property (one DISTINCT query: there are few distinct
    values, and an invalid one falls back like any, see `zone_for_recipient`)."""
    if schedule.time_zone:
        return {schedule.time_zone: cases}
    tz = Cast(KeyTextTransform(_TZ_PROPERTY, "properties"), output_field=TextField())
    annotated = cases.annotate(_tz=tz)
    raw_by_zone: dict[str, list[str | None]] = defaultdict(list)
    for raw in annotated.order_by().values_list("_tz", flat=True).distinct():
        raw_by_zone[zone_for_recipient(raw or "", project, schedule)].append(raw)
    out: dict[str, QuerySet[Case]] = {}
    for zone, raws in raw_by_zone.items():
        named = [r for r in raws if r is not None]
        q = Q(_tz__in=named) if named else Q(pk__in=[])
        if None in raws:
            q |= Q(_tz__isnull=True)
        out[zone] = annotated.filter(q)
    return out


def _recipients_to_start(
    broadcast: Broadcast, only_new: bool
) -> tuple[QuerySet[Case] | None, QuerySet[MobileWorker] | None]:
    """The recipients `start_broadcast` gives an instance: `only_new` skips those with an active one; and
    whenever the broadcast has instances at its current revision, those whose instance of this revision
    completed are skipped too (a `now` broadcast is never sent twice to one recipient)."""
    cases, workers = recipient_querysets(broadcast)
    skip_done = ScheduleInstance.objects.filter(broadcast=broadcast, revision=broadcast.revision).exists()
    had = ScheduleInstance.objects.filter(
        Q(active=True) | Q(revision=broadcast.revision, end_reason=COMPLETED), broadcast=broadcast
    )
    if only_new or skip_done:
        if cases is not None:
            cases = cases.filter(~Exists(had.filter(case_id=OuterRef("pk"))))
        if workers is not None:
            workers = workers.filter(~Exists(had.filter(worker_id=OuterRef("pk"))))
    return cases, workers


def end_removed_recipients(broadcast: Broadcast, now: datetime) -> int:
    """End the active instances whose recipient the broadcast no longer selects (after its recipients
    changed); new recipients are then added by `start_broadcast`."""
    cases, workers = recipient_querysets(broadcast)
    base = ScheduleInstance.objects.filter(broadcast=broadcast, active=True)
    ended = 0
    gone_cases = base.filter(case__isnull=False)
    if cases is not None:
        gone_cases = gone_cases.filter(~Exists(cases.filter(pk=OuterRef("case_id"))))
    ended += end_instances(gone_cases, RECIPIENT_REMOVED, now)
    gone_workers = base.filter(worker__isnull=False)
    if workers is not None:
        gone_workers = gone_workers.filter(~Exists(workers.filter(pk=OuterRef("worker_id"))))
    ended += end_instances(gone_workers, RECIPIENT_REMOVED, now)
    return ended


# --------------------------------------------------------------------------------------------------
# Pausing, resuming, recomputing
# --------------------------------------------------------------------------------------------------


def owner_instances(owner: Owner) -> QuerySet[ScheduleInstance]:
    if isinstance(owner, Broadcast):
        return ScheduleInstance.objects.filter(broadcast=owner)
    return ScheduleInstance.objects.filter(alert=owner)


def pause_instances(owner: Owner) -> int:
    """A paused owner's instances are due never: the tick does not even see them. Resuming recomputes."""
    return owner_instances(owner).filter(active=True).update(next_due_utc=None, next_local="", claim="")


def resume_instances(owner: Owner, now: datetime) -> int:
    """Give every active instance of a (now active) owner its next unsent event again, from `now` minus
    the lateness on: the tick then sends the latest one that is due (if any) and skips the older ones, so
    a resumed schedule neither floods nor loses what is still timely. One UPDATE per (zone, anchor,
    iteration) group where every recipient of the group has the same events (broadcasts); instance by
    instance, in chunks, otherwise."""
    schedule = schedule_of(owner)
    floor = now - timedelta(minutes=owner.max_lateness_minutes)
    qs = owner_instances(owner).filter(active=True)
    if schedule.per_recipient:
        return _recompute_chunks(qs, now, floor)
    n = 0
    groups = qs.values_list("time_zone", "anchor_utc", "iteration").distinct()
    for zone, anchor, iteration in list(groups):
        due = first_event(Frame(schedule, zone, anchor), iteration, floor - EPSILON)
        group = qs.filter(time_zone=zone, anchor_utc=anchor, iteration=iteration)
        if due is None:
            n += end_instances(group, COMPLETED, now)
        else:
            n += group.update(next_due_utc=due.utc, next_local=due.local.isoformat(), iteration=due.iteration)
    return n


def _recompute_chunks(qs: QuerySet[ScheduleInstance], now: datetime, floor: datetime | None = None) -> int:
    n = 0
    last = 0
    while True:
        page = list(qs.filter(pk__gt=last).order_by("pk")[:1000])
        if not page:
            return n
        n += recompute(page, now, force=True, floor=floor)
        last = page[-1].pk


def recompute_for_cases(
    case_pks: Iterable[int], now: datetime | None = None, changed: Mapping[int, Iterable[str]] | None = None
) -> int:
    """A case's time zone or a property a schedule reads changed: recompute the next event of the active
    instances that message it or that it started. `changed` ({case pk: property names}) limits the work to
    instances whose zone or read properties changed (without it every one is recomputed). Returns how many
    instances changed."""
    pks = list(case_pks)
    total = 0
    for start in range(0, len(pks), 1000):
        part = pks[start : start + 1000]
        insts = list(ScheduleInstance.objects.filter(Q(case_id__in=part) | Q(source_case_id__in=part), active=True))
        total += recompute(insts, now or timezone.now(), changed=changed)
    return total


def recompute_for_workers(worker_pks: Iterable[int], now: datetime | None = None) -> int:
    """A mobile worker's time zone may have changed: recompute its active instances."""
    pks = list(worker_pks)
    total = 0
    for start in range(0, len(pks), 1000):
        insts = list(ScheduleInstance.objects.filter(worker_id__in=pks[start : start + 1000], active=True))
        total += recompute(insts, now or timezone.now())
    return total


def recompute(
    insts: Sequence[ScheduleInstance],
    now: datetime,
    changed: Mapping[int, Iterable[str]] | None = None,
    force: bool = False,
    floor: datetime | None = None,
) -> int:
    """Recompute zone, anchor and next event of these active instances; write those that changed (one
    statement). Instances of a paused or ended owner keep no due time."""
    if not insts:
        return 0
    brs = Broadcast.objects.in_bulk({i.broadcast_id for i in insts if i.broadcast_id})
    als = ConditionalAlert.objects.in_bulk({i.alert_id for i in insts if i.alert_id})
    projects = Project.objects.in_bulk({i.project_id for i in insts})
    case_pks = {i.case_id for i in insts if i.case_id} | {i.source_case_id for i in insts if i.source_case_id}
    props = dict(Case.objects.filter(pk__in=case_pks).values_list("pk", "properties")) if case_pks else {}
    worker_pks = {i.worker_id for i in insts if i.worker_id}
    worker_tz = (
        dict(MobileWorker.objects.filter(pk__in=worker_pks).values_list("pk", "time_zone")) if worker_pks else {}
    )
    keys = {pk: set(v) for pk, v in changed.items()} if changed is not None else None
    out = []
    for inst in insts:
        owner: Owner | None = brs.get(inst.broadcast_id) if inst.broadcast_id else als.get(inst.alert_id or 0)
        if owner is None or not is_running(owner):
            continue
        if isinstance(owner, Broadcast):
            inst.broadcast = owner
        else:
            inst.alert = owner
        schedule = schedule_of(owner)
        if keys is not None and not force:
            zone_changed = not schedule.time_zone and _TZ_PROPERTY in keys.get(inst.case_id or 0, set())
            reads_changed = bool(schedule.reads & keys.get(inst.source_case_id or 0, set()))
            if not (zone_changed or reads_changed):
                continue
        raw_tz = (
            worker_tz.get(inst.worker_id or 0, "")
            if inst.worker_id
            else str(props.get(inst.case_id or 0, {}).get(_TZ_PROPERTY) or "")
        )
        zone = zone_for_recipient(raw_tz, projects[inst.project_id], schedule)
        source_props = props.get(inst.source_case_id or 0, {})
        before = (inst.time_zone, inst.anchor_utc, inst.next_due_utc, inst.iteration, inst.last_event)
        # a "matched" anchor is an instant (a timed series starts on its local date in the new zone); the
        # others are local times, read again in the (new) zone
        anchor = anchor_for(schedule, zone, inst.anchor_utc, source_props)
        inst.time_zone = zone
        if anchor is None:
            _set_due(inst, None)
            inst.last_event = {
                "at": now.isoformat(),
                "outcome": "waiting",
                "detail": f"The case property {schedule.start_property} holds no date (YYYY-MM-DD).",
            }
        else:
            inst.anchor_utc = anchor
            due = next_due(inst, schedule, now, source_props, floor)
            if due is None and schedule.time_property and property_time(source_props, schedule.time_property) is None:
                _set_due(inst, None)
                inst.last_event = {
                    "at": now.isoformat(),
                    "outcome": "waiting",
                    "detail": f"The case property {schedule.time_property} holds no time of day (HH:MM).",
                }
            elif due is None:
                _set_due(inst, None)
                inst.active, inst.ended_on, inst.end_reason = False, now, COMPLETED
            else:
                _set_due(inst, due)
                if (inst.last_event or {}).get("outcome") == "waiting":
                    inst.last_event = {}
        if (
            inst.time_zone,
            inst.anchor_utc,
            inst.next_due_utc,
            inst.iteration,
            inst.last_event,
        ) != before or not inst.active:
            inst.claim = ""
            out.append(inst)
    bulk.update_rows(out, _INSTANCE_FIELDS)
    return len(out)


# --------------------------------------------------------------------------------------------------
# The after-change hooks (connected in SchedulingConfig.ready)
# --------------------------------------------------------------------------------------------------


def on_cases_changed(
    sender: object, *, cases: Sequence[Case], previous: Mapping[int, Mapping[str, Any]] | None = None, **_kw: object
) -> None:
    """Cases changed: recompute the instances whose zone or read properties changed (same transaction)."""
    changed: dict[int, set[str]] = {}
    for c in cases:
        before = (previous or {}).get(c.pk)
        if before is None:
            continue
        after = c.properties or {}
        keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        if keys:
            changed[c.pk] = keys
    if changed:
        recompute_for_cases(list(changed), changed=changed)


def on_workers_changed(sender: object, *, workers: Sequence[MobileWorker], **_kw: object) -> None:
    recompute_for_workers([w.pk for w in workers])


def on_project_settings_changed(sender: object, *, project: Project, changed: Mapping[str, Any], **_kw: object) -> None:
    """The project's default time zone changed: recompute the active instances read in the old default
    zone (contacts without a zone of their own; the others keep theirs), in the same transaction."""
    if "default_time_zone" not in changed:
        return
    old_zone = _zone_name("", str(changed["default_time_zone"] or ""))
    qs = ScheduleInstance.objects.filter(project=project, active=True, time_zone=old_zone)
    _recompute_chunks(qs, timezone.now())


# --------------------------------------------------------------------------------------------------
# One case's coming sends
# --------------------------------------------------------------------------------------------------


def schedule_for_case(case: Case, limit: int = 10, now: datetime | None = None) -> list[dict[str, Any]]:
    """The next `limit` messages this case will receive, across every alert and broadcast, soonest first:
    {source ("alert"/"broadcast"), id, name, iteration, due_utc, local_time, time_zone, channel, language,
    text (rendered for this case as it would be now), subject (emails)}."""
    now = now or timezone.now()
    project = case.project
    insts = list(
        ScheduleInstance.objects.filter(case=case, active=True, next_due_utc__isnull=False)
        .select_related("broadcast", "alert")
        .order_by("next_due_utc")
    )
    source_pks = {i.source_case_id for i in insts if i.source_case_id and i.source_case_id != case.pk}
    source_props = dict(Case.objects.filter(pk__in=source_pks).values_list("pk", "properties")) if source_pks else {}
    source_props[case.pk] = case.properties or {}
    upcoming: list[tuple[Due, ScheduleInstance, Owner]] = []
    for inst in insts:
        taken = 0
        owner = owner_of(inst)
        if not is_running(owner):
            continue
        schedule = schedule_of(owner)
        frame = frame_for(inst, owner, schedule, source_props.get(inst.source_case_id or 0, {}))
        due = current(inst)
        while due is not None and taken < limit:
            upcoming.append((due, inst, owner))
            taken += 1
            due = first_event(frame, due.iteration + 1, due.utc) if frame is not None else None
    upcoming.sort(key=lambda u: (u[0].utc, u[1].pk))
    parent = Case.objects.filter(project=project, case_id=case.parent_id).first() if case.parent_id else None
    contact_lang, source, _problem = resolve_language(str((case.properties or {}).get("language_code") or ""), project)
    ctx = render.Context(case=case, parent=parent, recipient_name=case.name)
    out = []
    for due, inst, owner in upcoming[:limit]:
        content = specs.content_from_json(owner.content or {})
        chain = [contact_lang if source == "contact" else "", owner.default_language, project.default_language]
        template, lang = render.choose_text(owner.content or {}, chain)
        text = _render(template, ctx)
        if content.channel == "survey":
            lang, text = _survey_opening(content.survey_id, case, project)
        item: dict[str, Any] = {
            "source": owner_kind(owner),
            "id": owner.pk,
            "name": owner.name,
            "iteration": due.iteration,
            "due_utc": due.utc,
            "local_time": due.local.isoformat(),
            "time_zone": inst.time_zone,
            "channel": content.channel,
            "language": lang,
            "text": text,
        }
        if content.channel == "email":
            item["subject"] = _render(content.subject_for(chain), ctx)
        out.append(item)
    return out


def _survey_opening(survey_id: int | None, case: Case, project: Project) -> tuple[str, str]:
    """(language, text) of the first SMS the case would get from this survey now ("" once deleted)."""
    survey = Survey.objects.select_related("current_version").filter(pk=survey_id or 0).first()
    if survey is None or survey.current_version is None:
        return "", ""
    version = survey.current_version
    language = survey_engine.survey_language(survey_engine.definition(version), case, project)
    return language, survey_engine.opening_texts(version).get(language, "")


def _render(template: str | None, ctx: render.Context) -> str:
    if template is None:
        return ""
    try:
        return render.render(template, ctx)
    except render.RenderError:
        return template
