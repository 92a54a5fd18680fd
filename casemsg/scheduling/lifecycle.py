"""Schedule instances over their life: started, moved to a new next event, paused, resumed, ended.

One instance per broadcast or alert × recipient holds its next due time in UTC. ``iteration`` is the index
of its next event and only ever grows within a row, so the send key ``si:<instance id>:<iteration>`` names
one occurrence for good; anything that restarts a series (the case matches again, the schedule changed)
makes a new row. What an instance's events are is `events`; who a broadcast reaches is `recipients`; the
tick (`tick`, `occurrences`) advances instances as their events are sent.

Who uses what:

- the rules (``casemsg.scheduling.rules``/``runner``/``hooks``): ``start_for_cases`` and ``end_for_cases``;
- the services: ``start_broadcast``, ``end_removed_recipients``, ``end_instances``, ``pause_instances``,
  ``resume_instances``, ``next_refresh``;
- the tick: ``sync_broadcast`` (a broadcast whose recipients can change reads them again at each
  occurrence: those who left end, those who joined start, with the occurrence due then);
- the after-change hooks (``casemsg.scheduling.hooks``): ``recompute_for_cases``, ``recompute_for_workers``,
  ``recompute_all``.

Call everything that writes inside the transaction of the change. (About 500 lines: starting, recomputing
and ending an instance share its row's shape, `_row` and `_INSTANCE_FIELDS`, so they stay together.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.core import bulk
from casemsg.projects.models import Project
from casemsg.scheduling import recipients, schedules
from casemsg.scheduling.events import (
    EPSILON,
    TZ_PROPERTY,
    Due,
    Frame,
    Owner,
    anchor_for,
    contact_time_zone,
    first_event,
    is_running,
    next_due,
    property_time,
    schedule_of,
    seed_for,
    zone_for_recipient,
)
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance
from casemsg.workers.models import MobileWorker

# why an instance ended (ScheduleInstance.end_reason); the rules add their own (no_longer_matches, …)
COMPLETED = "completed"
CANCELLED = "cancelled"
SCHEDULE_CHANGED = "schedule_changed"
RECIPIENT_REMOVED = "recipient_removed"
NO_LONGER_MATCHES = "no_longer_matches"  # a broadcast's recipient left its case type, filters or group

CHUNK = 5000


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
    frame: Frame | None = None,
) -> dict[str, Any]:
    running = is_running(owner)
    ended = due is None and not waiting and running
    last_event: dict[str, Any] = {}
    if waiting:
        last_event = {"at": now.isoformat(), "outcome": "waiting", "detail": waiting}
    elif ended:
        last_event = _nothing_due(now, frame)
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


# the start of time for "the first event of a series, however long ago" (a schedule's dates are after it)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _nothing_due(now: datetime, frame: Frame | None) -> dict[str, Any]:
    """Why an instance ends as it starts: its events were all before `now` (a start date, or a date property,
    already past when the case matched or the broadcast started). The first of them is recorded
    (`first_due_utc`) so that the pages can say when it was, in the project's zone."""
    out: dict[str, Any] = {"at": now.isoformat(), "outcome": "no_events", "detail": "No event of the schedule is left."}
    first = first_event(frame, 0, _EPOCH) if frame is not None else None
    if first is not None and first.utc <= now:
        out.update(
            reason="first_send_past",
            first_due_utc=first.utc.isoformat(),
            detail=f"The first send ({first.utc:%Y-%m-%d %H:%M} UTC) was already past when the schedule started "
            f"({now:%Y-%m-%d %H:%M} UTC): nothing was due.",
        )
    return out


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
    roles = [r for r in recipients.ROLES if r in (alert.recipients or [])]
    pks = [c.pk for c in cases]
    latest: dict[tuple[int, str], tuple[int, bool, str]] = {}
    for pk, source, role, active, reason in ScheduleInstance.objects.filter(
        alert=alert, source_case_id__in=pks
    ).values_list("pk", "source_case_id", "role", "active", "end_reason"):
        if (source, role) not in latest or latest[(source, role)][0] < pk:
            latest[(source, role)] = (pk, active, reason)
    owners = recipients.owners_by_key(cases, project) if "owner" in roles else {}
    parents = recipients.parents(cases, project) if "parent" in roles else {}
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
    schedule: schedules.Schedule,
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
    seed = seed_for(alert, case.pk, role, case_pk, worker_pk) if schedule.window else ""
    frame = Frame(schedule, zone, anchor, time_of_day, seed)
    due = first_event(frame, 0, now - EPSILON)
    return _row(alert, now, role, case.pk, case_pk, worker_pk, zone, anchor, due, reset_value, frame=frame)


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


def _pages(qs: QuerySet[Any, tuple[Any, ...]], chunk: int) -> Iterator[tuple[Any, ...]]:
    last = 0
    while True:
        page = list(qs.filter(pk__gt=last).order_by("pk")[:chunk])
        yield from page
        if len(page) < chunk:
            return
        last = page[-1][0]


def start_broadcast(
    broadcast: Broadcast,
    now: datetime | None = None,
    chunk: int = CHUNK,
    queued_now: bool = False,
    since: datetime | None = None,
    selected: recipients.Selected | None = None,
) -> int:
    """Create an instance for every recipient that has no active one yet; returns how many. Set-based:
    the case recipients are selected once into a temporary table (`recipients.Selected`, or `selected`, the
    caller's) and written by one INSERT … SELECT per time zone from it (the zone's first event computed
    once; the cases' zones read with one DISTINCT query over the table, or none when the schedule names its
    zone), the mobile workers (few) in chunks. Call inside the transaction of the change (services).

    Every recipient's events are the broadcast's series, counted from its start (`anchor_for`: a count
    counts sends from when the broadcast was created), from `since` on (default `now`): a recipient that
    joins at an occurrence (`sync_broadcast`) gets the occurrence due then, and the ones after it.

    `queued_now`: the caller queues, in the same transaction, the message of every instance whose only
    event is due now (`tick.queue_started`, a "now" broadcast): those instances are written completed,
    their event recorded as queued, so that no UPDATE of them follows."""
    now = now or timezone.now()
    after = (since or now) - EPSILON
    project = broadcast.project
    schedule = schedule_of(broadcast)
    # a timed series counts from the broadcast's creation; a "now" event is when it starts
    started_on = (broadcast.created_on or now) if schedule.kind == "timed" else (since or now)
    only_new = ScheduleInstance.objects.filter(broadcast=broadcast, active=True).exists()
    skip_done = ScheduleInstance.objects.filter(broadcast=broadcast, revision=broadcast.revision).exists()
    cases, workers = recipients.recipient_querysets(broadcast, since or now)
    if (only_new or skip_done) and workers is not None:
        workers = workers.filter(~Exists(_had(broadcast).filter(worker_id=OuterRef("pk"))))
    templates: dict[str, dict[str, Any]] = {}

    def template(zone: str) -> dict[str, Any]:
        if zone not in templates:
            anchor = anchor_for(schedule, zone, started_on, {})
            frame = Frame(schedule, zone, anchor or now)
            due = first_event(frame, 0, after) if anchor else None
            row = templates[zone] = _row(
                broadcast, now, "", None, None, None, zone, anchor, due, frame=frame if anchor else None
            )
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
        # those with a running instance, or one of this revision that completed, are left out (a `now`
        # broadcast is never sent twice to one recipient)
        skip, skip_params = "", []
        if only_new or skip_done:
            table = connection.ops.quote_name(ScheduleInstance._meta.db_table)
            skip = (
                f" AND NOT EXISTS (SELECT 1 FROM {table} AS i WHERE i.broadcast_id = %s AND i.case_id = s.id"
                " AND (i.active OR (i.revision = %s AND i.end_reason = %s)))"
            )
            skip_params = [broadcast.pk, broadcast.revision, COMPLETED]
        with _selected(cases, selected) as sel:
            assert sel is not None
            for zone, where, params in sel.by_zone(project, schedule):
                row = {k: v for k, v in template(zone).items() if k not in ("case_id", "source_case_id")}
                row["role"] = ScheduleInstance.CASE
                started += bulk.insert_select(
                    ScheduleInstance,
                    row,
                    {"case_id": "s.id", "source_case_id": "s.id"},
                    f"{sel.table} AS s WHERE {where}{skip}",
                    [*params, *skip_params],
                    # (one active instance per recipient: a concurrent start of the same recipient is skipped)
                    ignore_conflicts=True,
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


def _had(broadcast: Broadcast) -> QuerySet[ScheduleInstance]:
    """The instances that keep a recipient from starting again: running, or of this revision and completed."""
    return ScheduleInstance.objects.filter(
        Q(active=True) | Q(revision=broadcast.revision, end_reason=COMPLETED), broadcast=broadcast
    )


@contextmanager
def _selected(cases: QuerySet[Case] | None, given: recipients.Selected | None) -> Iterator[recipients.Selected | None]:
    """The caller's selection, or a new one for this call."""
    if given is not None:
        yield given
        return
    with recipients.selected_cases(cases) as sel:
        yield sel


def end_removed_recipients(
    broadcast: Broadcast,
    now: datetime,
    reason: str = RECIPIENT_REMOVED,
    at: datetime | None = None,
    selected: recipients.Selected | None = None,
) -> int:
    """End the active instances whose recipient the broadcast no longer selects at `at` (default `now`):
    after its recipients changed (`recipient_removed`), or at an occurrence (`sync_broadcast`:
    `no_longer_matches`); new recipients are then added by `start_broadcast`. The case recipients are
    compared with their selection in a temporary table (`recipients.Selected`; `selected`, the caller's)."""
    cases, workers = recipients.recipient_querysets(broadcast, at or now)
    base = ScheduleInstance.objects.filter(broadcast=broadcast, active=True)
    ended = 0
    if cases is None:
        ended += end_instances(base.filter(case__isnull=False), reason, now)
    else:
        with _selected(cases, selected) as sel:
            assert sel is not None
            ended += _end_unselected(broadcast, sel, reason, now)
    gone_workers = base.filter(worker__isnull=False)
    if workers is not None:
        gone_workers = gone_workers.filter(~Exists(workers.filter(pk=OuterRef("worker_id"))))
    ended += end_instances(gone_workers, reason, now)
    return ended


# --------------------------------------------------------------------------------------------------
# Recipients read at each occurrence
# --------------------------------------------------------------------------------------------------


def _end_unselected(broadcast: Broadcast, sel: recipients.Selected, reason: str, now: datetime) -> int:
    """End the broadcast's running case instances whose case is not in the selection (one UPDATE)."""
    table = connection.ops.quote_name(ScheduleInstance._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET active = %s, ended_on = %s, end_reason = %s, next_due_utc = NULL, next_local = '', "
            f"claim = '' WHERE broadcast_id = %s AND active AND case_id IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {sel.table} AS s WHERE s.id = {table}.case_id)",
            [False, at, reason, broadcast.pk],
        )
        return int(cur.rowcount)


def reads_recipients_again(broadcast: Broadcast) -> bool:
    """Whether the broadcast reads its recipients again at each occurrence: who it selects can change (a
    case type, a group, case owners, every mobile worker) and it has events to come (not a `now`)."""
    if schedule_of(broadcast).kind == "now":
        return False
    return recipients.broadcast_recipients_from_json(broadcast.recipients).is_dynamic


def next_refresh(
    broadcast: Broadcast, after: datetime, inclusive: bool = False, zones: set[str] | None = None
) -> datetime | None:
    """When the broadcast next reads its recipients: its first occurrence after `after` (at or after with
    `inclusive`) in any zone its recipients are in (`zones`, those of a selection just made, else the zones
    of its running instances; and the project's default zone, for those who will join), or in the
    schedule's named zone. None when it does not read them again or no event is left."""
    if not reads_recipients_again(broadcast):
        return None
    schedule = schedule_of(broadcast)
    project = broadcast.project
    if schedule.time_zone:
        zones = {schedule.time_zone}
    else:
        if zones is None:
            running = ScheduleInstance.objects.filter(broadcast=broadcast, active=True).order_by()
            zones = set(running.values_list("time_zone", flat=True).distinct())
        zones = {*zones, zone_for_recipient("", project, schedule)}
    started_on = broadcast.created_on or after
    soonest: datetime | None = None
    for zone in sorted(zones):
        anchor = anchor_for(schedule, zone, started_on, {})
        if anchor is None:
            continue
        due = first_event(Frame(schedule, zone, anchor), 0, after - EPSILON if inclusive else after)
        if due is not None and (soonest is None or due.utc < soonest):
            soonest = due.utc
    return soonest


def sync_broadcast(broadcast: Broadcast, at: datetime, now: datetime) -> tuple[int, int, datetime | None]:
    """Read the broadcast's recipients again at its occurrence `at` (its `refresh_due_utc`, passed): the
    instances of recipients it no longer selects end (`no_longer_matches`), and those it newly selects
    start with their events from `at` on — the occurrence due at `at` included. The case recipients are
    selected once (`recipients.Selected`: one INSERT … SELECT of the group's or type's SQL), and both steps
    compare with that. Returns (started, ended, the next reading: `next_refresh` after `now`). Call inside
    the transaction that holds the broadcast's row (`tick.refresh_broadcasts`); the tick claims none of its
    instances until the refresh is written."""
    cases, _workers = recipients.recipient_querysets(broadcast, at)
    with recipients.selected_cases(cases) as sel:
        ended = end_removed_recipients(broadcast, now, NO_LONGER_MATCHES, at, selected=sel)
        started = start_broadcast(broadcast, now, since=at, selected=sel)
        zones = sel.zones(broadcast.project, schedule_of(broadcast)) if sel is not None else set()
    workers = ScheduleInstance.objects.filter(broadcast=broadcast, active=True, worker__isnull=False).order_by()
    zones |= set(workers.values_list("time_zone", flat=True).distinct())
    return started, ended, next_refresh(broadcast, max(at, now), zones=zones)


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
        return recompute_all(qs, now, floor)
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


def recompute_all(qs: QuerySet[ScheduleInstance], now: datetime, floor: datetime | None = None) -> int:
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


def _set_due(inst: ScheduleInstance, due: Due | None) -> None:
    if due is None:
        inst.next_due_utc, inst.next_local = None, ""
    else:
        inst.next_due_utc, inst.next_local, inst.iteration = due.utc, due.local.isoformat(), due.iteration


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
            zone_changed = not schedule.time_zone and TZ_PROPERTY in keys.get(inst.case_id or 0, set())
            reads_changed = bool(schedule.reads & keys.get(inst.source_case_id or 0, set()))
            if not (zone_changed or reads_changed):
                continue
        raw_tz = (
            worker_tz.get(inst.worker_id or 0, "")
            if inst.worker_id
            else str(props.get(inst.case_id or 0, {}).get(TZ_PROPERTY) or "")
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
