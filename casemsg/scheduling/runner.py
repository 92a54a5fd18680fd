"""Rule runs: evaluating every open case of an alert's type, set-based, in chunks, resumable.

An alert's run is due when it is created, its case type, criteria or schedule change, or it is resumed
(`request_run`, called by the alert service in its transaction), and when a days_before / days_after
criterion may hold for more cases: some zone's calendar day changed since the last run started
(`continue_runs`, the worker ticker's call, checks this and moves runs on within a time budget).

`run` walks the open cases of the alert's type in primary-key order from `run_last_pk`, `chunk` cases at a
time. Per chunk, in one transaction holding the alert's row lock:

1. the chunk's key range: the next `chunk` open cases of the type after `run_last_pk` (the last chunk is
   open-ended, so instances of cases created, closed or re-typed past the end are covered too);
2. end the alert's active instances in the range whose case no longer matches (`lifecycle.end_for_cases`,
   "no_longer_matches", or "case_closed" for a closed case): one query (`rules.matching_q` in a NOT EXISTS);
3. start the matching cases without an active instance: one INSERT … SELECT when the alert's events depend
   on the case's zone alone (`_start_in_sql`), else `lifecycle.start_for_cases` (neither restarts a case
   whose schedule completed while it kept matching). On PostgreSQL, regex criteria are checked in Python
   on the rows the SQL lets through (see `rules`);
4. `run_done` and `run_last_pk` move on in the same transaction, so a crash repeats at most the chunk it
   was in, and a repeat is harmless (what it would start or end is already started or ended).

When the last chunk is done the run is idle again: `run_revision = revision`, `run_finished_on` set.
Between chunks the lock is released, so case writes (and their hook, `casemsg.scheduling.hooks`) go on
during a long run; a change of the criteria during a run starts it again from the first case.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, Expression, F, Field, Func, Max, Min, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.cases.sql import property_text
from casemsg.core.errors import InputError
from casemsg.scheduling import events, lifecycle, recipients, rules
from casemsg.scheduling.models import ConditionalAlert, ScheduleInstance
from casemsg.scheduling.rules import Criterion, Today
from casemsg.scheduling.timing import local_date

__all__ = ["CHUNK", "Progress", "RunResult", "continue_runs", "progress", "request_run", "run"]

log = logging.getLogger("casemsg.scheduling.runner")

CHUNK = 5000
NO_LONGER_MATCHES = "no_longer_matches"
CASE_CLOSED = "case_closed"

ProgressCallback = Callable[[int, int], None]  # (done, total)
_ZoneStart = tuple[str, datetime, events.Due]  # a zone's name, anchor and first event, for a set-based start


@dataclass(frozen=True)
class Progress:
    """An alert's rule run as the API, the page and the CLI show it."""

    status: str  # idle, running, failed
    done: int
    total: int
    started_on: datetime | None
    finished_on: datetime | None
    up_to_date: bool  # the last complete run evaluated the current criteria and schedule

    @property
    def percent(self) -> float:
        if self.status != ConditionalAlert.RUNNING:
            return 100.0 if self.up_to_date else 0.0
        return 100.0 * min(self.done, self.total) / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "percent": round(self.percent, 1),
            "started_on": self.started_on,
            "finished_on": self.finished_on,
            "up_to_date": self.up_to_date,
        }


@dataclass
class RunResult:
    evaluated: int = 0
    started: int = 0
    ended: int = 0
    chunks: int = 0
    finished: bool = False


@dataclass(frozen=True)
class _Plan:
    """The criteria of a run as SQL (built once per call, not per chunk) and what Python checks."""

    criteria: list[Criterion]
    today: Today
    q: Q
    rest: list[Criterion]
    group: int | None = None  # the alert's group: its members only (part of `q`)


def progress(alert: ConditionalAlert) -> Progress:
    return Progress(
        status=alert.run_status,
        done=alert.run_done,
        total=alert.run_total,
        started_on=alert.run_started_on,
        finished_on=alert.run_finished_on,
        up_to_date=alert.run_status == ConditionalAlert.IDLE and alert.run_revision == alert.revision,
    )


def _open_cases(alert: ConditionalAlert) -> QuerySet[Case]:
    return Case.objects.filter(project_id=alert.project_id, case_type=alert.case_type, closed=False)


def request_run(alert: ConditionalAlert, now: datetime | None = None) -> None:
    """Make the alert's run due from its first case (the alert service calls this, in its transaction, after
    creating an alert or changing its criteria, case type or schedule). The worker's ticker does the work
    (`continue_runs`); `run` does it at once. A run already under way starts again from the first case."""
    now = now or timezone.now()
    fields = {
        "run_status": ConditionalAlert.RUNNING,
        "run_total": _open_cases(alert).count(),
        "run_done": 0,
        "run_last_pk": 0,
        "run_started_on": now,
        "run_finished_on": None,
    }
    ConditionalAlert.objects.filter(pk=alert.pk).update(**fields)
    for name, value in fields.items():
        setattr(alert, name, value)


def _refresh(alert: ConditionalAlert, fresh: ConditionalAlert) -> None:
    for f in ("run_status", "run_total", "run_done", "run_last_pk", "run_started_on", "run_finished_on"):
        setattr(alert, f, getattr(fresh, f))
    alert.run_revision = fresh.run_revision


def run(
    alert: ConditionalAlert,
    chunk: int = CHUNK,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
    budget_seconds: float | None = None,
) -> RunResult:
    """Evaluate the alert over its open cases, resuming where its run stopped (a fresh run if it is idle).

    Returns after the last chunk, or after the chunk that used up `budget_seconds` (the ticker's share; the
    run stays "running" and the next call resumes). `now` freezes the clock (tests, the bench)."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    result = RunResult()
    if alert.run_status != ConditionalAlert.RUNNING:
        request_run(alert, now)
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    today: Today | None = None  # one instant for the whole call: the zones' dates are worked out once
    zones: dict[tuple[int, str | None], _ZoneStart | None] = {}  # and their first events
    plan: _Plan | None = None
    while True:
        with transaction.atomic():
            # The row lock serialises two workers on one alert (on SQLite the write transaction does), and
            # re-reading it picks up an edit (a restart from the first case) or a pause between chunks.
            fresh = ConditionalAlert.objects.select_for_update().select_related("project").filter(pk=alert.pk).first()
            if fresh is None:  # deleted meanwhile: nothing left to evaluate
                result.finished = True
                return result
            if fresh.run_status != ConditionalAlert.RUNNING or fresh.status != ConditionalAlert.ACTIVE:
                _refresh(alert, fresh)
                result.finished = fresh.run_status != ConditionalAlert.RUNNING
                return result
            try:
                criteria = rules.parse_criteria(fresh.criteria)
            except InputError as e:  # stored criteria that no longer validate: nothing to evaluate them with
                log.error("alert %s: its criteria are invalid (%s); the run failed", fresh.pk, e.message)
                ConditionalAlert.objects.filter(pk=fresh.pk).update(run_status=ConditionalAlert.FAILED)
                fresh.run_status = ConditionalAlert.FAILED
                _refresh(alert, fresh)
                return result
            if today is None or today.project_zone != fresh.project.default_time_zone:
                today = Today(now or timezone.now(), fresh.project.default_time_zone)
            if plan is None or plan.criteria != criteria or plan.today is not today or plan.group != fresh.group_id:
                q = rules.matching_q(criteria, today)
                if fresh.group_id is not None:
                    q &= recipients.group_cases(fresh.project, fresh.group_id, today.now)
                plan = _Plan(criteria, today, q, rules.python_only(criteria), fresh.group_id)
            _chunk(fresh, plan, chunk, today, result, zones)
            _refresh(alert, fresh)
        if on_progress is not None:
            on_progress(alert.run_done, alert.run_total)
        if result.finished or (deadline is not None and time.monotonic() >= deadline):
            return result


def _chunk(
    alert: ConditionalAlert,
    plan: _Plan,
    size: int,
    today: Today,
    result: RunResult,
    zones: dict[tuple[int, str | None], _ZoneStart | None],
) -> None:
    lo = alert.run_last_pk
    after = _open_cases(alert).filter(pk__gt=lo)
    edge = list(after.order_by("pk").values_list("pk", flat=True)[size - 1 : size])  # the chunk's last case
    final = not edge
    hi = lo if final else edge[0]
    n = after.count() if final else size
    # The last chunk reaches past the last open case: instances of cases closed or re-typed there end too.
    # (Key ranges rather than IN lists of up to `chunk` keys: SQLite caps a statement's parameters.)
    in_range = Q(pk__gt=lo) if final else Q(pk__gt=lo, pk__lte=hi)
    inst_range = Q(source_case_id__gt=lo) if final else Q(source_case_id__gt=lo, source_case_id__lte=hi)
    q = plan.q
    active_here = ScheduleInstance.objects.filter(inst_range, alert=alert, active=True)
    matching: list[Case] | None = None
    if plan.rest:
        # Regex criteria on PostgreSQL: the SQL part narrows, Python decides (see rules).
        candidates = list(_open_cases(alert).filter(in_range).filter(q).order_by("pk")) if n else []
        matching = [c for c in candidates if rules.matches(c, plan.rest, today)]
        to_end = set(active_here.values_list("source_case_id", flat=True)) - {c.pk for c in matching}
    else:
        # The active instances whose case no longer matches (or is closed, or of another type now): first, so
        # that the instances this chunk starts are not looked at again.
        still = Exists(_open_cases(alert).filter(q, pk=OuterRef("source_case_id")))
        to_end = set(active_here.filter(~still).values_list("source_case_id", flat=True))
    if to_end:
        in_project = Case.objects.filter(in_range, project_id=alert.project_id, closed=True)
        closed = to_end & set(in_project.values_list("pk", flat=True))
        if closed:
            result.ended += lifecycle.end_for_cases(alert, sorted(closed), CASE_CLOSED)
        if to_end - closed:
            result.ended += lifecycle.end_for_cases(alert, sorted(to_end - closed), NO_LONGER_MATCHES)
    if matching is not None:
        active = set(active_here.values_list("source_case_id", flat=True))
        new = [c for c in matching if c.pk not in active]
    elif n:
        # The matching cases without an active instance: one INSERT … SELECT when the alert allows it.
        has_one = Exists(ScheduleInstance.objects.filter(alert=alert, active=True, source_case_id=OuterRef("pk")))
        new_qs = _open_cases(alert).filter(in_range).filter(q).filter(~has_one)
        in_chunk = _open_cases(alert).filter(in_range)
        started = _start_in_sql(alert, new_qs, today.now, (lo, None if final else hi), in_chunk, zones)
        new = list(new_qs.order_by("pk")) if started is None else []
        result.started += started or 0
    else:
        new = []
    if new:
        # (start_for_cases leaves alone a case whose schedule completed while it kept matching.)
        result.started += lifecycle.start_for_cases(alert, new, today.now, today.now)

    done = alert.run_done + n
    fields: dict[str, object] = {"run_done": done, "run_last_pk": hi}
    if final:
        fields.update(
            run_status=ConditionalAlert.IDLE,
            run_revision=alert.revision,
            run_finished_on=today.now,
            run_total=max(alert.run_total, done),
        )
    ConditionalAlert.objects.filter(pk=alert.pk).update(**fields)
    for name, value in fields.items():
        setattr(alert, name, value)
    result.evaluated += n
    result.chunks += 1
    result.finished = final


def _start_in_sql(
    alert: ConditionalAlert,
    new: QuerySet[Case],
    now: datetime,
    key_range: tuple[int, int | None] | None = None,
    zones_from: QuerySet[Case] | None = None,
    cache: dict[tuple[int, str | None], _ZoneStart | None] | None = None,
) -> int | None:
    """Start the alert for the cases of `new` (matching, without an active instance, in one key range) in
    one INSERT … SELECT, when every case's first event depends on its time zone alone: the alert messages
    the case itself (no owner or parent to look up) and its schedule counts from when the case matched,
    with no time property or random window. The events are worked out once per zone, in Python, by the
    instances module (`first_event`), and the statement picks a zone's values by the case's time_zone.
    None when the alert does not qualify, or some zone has no event left: `lifecycle.start_for_cases` does
    those, case by case. The rows are the ones start_for_cases writes (tests/scheduling/test_rules.py
    compares them column by column).

    `key_range`: (after, up to) the keys of `new`'s cases, None at the end (read from `new` when not given);
    `zones_from`: a superset of `new` whose time_zone values are read (cheaper than `new`'s own criteria);
    `cache`: the zones' events from earlier chunks of the same run (one `now`).
    """
    schedule = events.schedule_of(alert)
    if list(alert.recipients or []) != [ScheduleInstance.CASE]:
        return None
    if schedule.start_from != "matched" or schedule.reads or schedule.window is not None:
        return None
    project = alert.project
    cache = {} if cache is None else cache
    tz = property_text(rules.TIME_ZONE_PROPERTY)
    groups: dict[str | None, _ZoneStart] = {}
    for raw in (new if zones_from is None else zones_from).annotate(_tz=tz).values_list("_tz", flat=True).distinct():
        key = (alert.revision, raw)
        if key not in cache:
            zone = events.zone_for_recipient(raw or "", project, schedule)
            anchor = events.anchor_for(schedule, zone, now, {})
            due = None
            if anchor is not None:
                due = events.first_event(events.Frame(schedule, zone, anchor), 0, now - events.EPSILON)
            cache[key] = None if anchor is None or due is None else (zone, anchor, due)
        start = cache[key]
        if start is None:
            return None
        groups[raw] = start
    if not groups:
        return 0
    new = new.exclude(pk__in=_completed(alert, new, key_range))
    fields = {f.attname: f for f in ScheduleInstance._meta.concrete_fields if not f.primary_key}

    zone_key = Coalesce(property_text(rules.TIME_ZONE_PROPERTY), Value(""), output_field=fields["time_zone"])

    def by_zone(field: str, pick: Callable[[_ZoneStart], object]) -> Expression:
        """The column's value for the case's zone: a constant when every zone has the same one."""
        out = fields[field]
        by_raw = {raw or "": pick(g) for raw, g in groups.items()}
        if len(set(by_raw.values())) == 1:
            return Value(next(iter(by_raw.values())), output_field=out)
        return _ByKey(zone_key, list(by_raw.items()), output_field=out)

    values: dict[str, Expression | F] = {
        "project_id": Value(alert.project_id, output_field=fields["project_id"]),
        "alert_id": Value(alert.pk, output_field=fields["alert_id"]),
        "source_case_id": F("pk"),
        "case_id": F("pk"),
        "role": Value(ScheduleInstance.CASE, output_field=fields["role"]),
        "revision": Value(alert.revision, output_field=fields["revision"]),
        "reset_value": (
            Coalesce(property_text(alert.reset_property), Value(""), output_field=fields["reset_value"])
            if alert.reset_property
            else Value("", output_field=fields["reset_value"])
        ),
        "time_zone": by_zone("time_zone", lambda g: g[0]),
        "anchor_utc": by_zone("anchor_utc", lambda g: g[1]),
        "iteration": by_zone("iteration", lambda g: g[2].iteration),
        "next_due_utc": by_zone("next_due_utc", lambda g: g[2].utc),
        "next_local": by_zone("next_local", lambda g: g[2].local.isoformat()),
        "created_on": Value(now, output_field=fields["created_on"]),
        "active": Value(True, output_field=fields["active"]),
    }
    # every other column as a new row has it (NULL foreign keys, empty claim and end, no last event)
    annotations = {
        f"_c{i}": values.get(name) or Value(f.get_default(), output_field=f)
        for i, (name, f) in enumerate(fields.items())
    }
    select = new.annotate(**annotations).values(*annotations)
    sql, params = select.query.sql_with_params()
    columns = ", ".join(connection.ops.quote_name(f.column or name) for name, f in fields.items())
    table = connection.ops.quote_name(ScheduleInstance._meta.db_table)
    with connection.cursor() as cur:
        # ON CONFLICT: a case the hook started in the meantime (another transaction) keeps its instance.
        cur.execute(f"INSERT INTO {table} ({columns}) {sql} ON CONFLICT DO NOTHING", params)
        return max(cur.rowcount, 0)


class _ByKey(Func):
    """``CASE key WHEN k1 THEN v1 … END``: the key (a JSON property) is read once per row, where Django's
    ``Case(When(key=k1, …), …)`` would read it again for every branch."""

    def __init__(self, key: Expression, mapping: list[tuple[str, object]], output_field: Field) -> None:
        super().__init__(key, output_field=output_field)
        self.mapping = mapping

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        key_sql, key_params = compiler.compile(self.source_expressions[0])
        parts: list[str] = []
        params: list[Any] = [*key_params]
        for k, v in self.mapping:
            value_sql, value_params = compiler.compile(Value(v, output_field=self.output_field))
            parts.append(f"WHEN %s THEN {value_sql}")
            params += [k, *value_params]
        return f"(CASE {key_sql} {' '.join(parts)} END)", tuple(params)


def _completed(alert: ConditionalAlert, new: QuerySet[Case], key_range: tuple[int, int | None] | None) -> list[int]:
    """The cases of `new` whose latest "case" instance of the alert ran to its end (start_for_cases leaves
    them alone, and so does the INSERT). Read by the cases' key range, of every alert, and sorted out here:
    filtered by alert, the planner may walk all of the alert's instances (the alert_id index) per chunk."""
    if key_range is None:
        keys = new.aggregate(lo=Min("pk"), hi=Max("pk"))
        if keys["lo"] is None:
            return []
        key_range = (keys["lo"] - 1, keys["hi"])
    lo, hi = key_range
    ended = ScheduleInstance.objects.filter(source_case_id__gt=lo, active=False)
    if hi is not None:
        ended = ended.filter(source_case_id__lte=hi)
    rows = ended.values_list("alert_id", "role", "source_case_id", "pk", "end_reason")
    latest: dict[int, tuple[int, str]] = {}
    for alert_id, role, case_pk, pk, reason in rows:
        if alert_id == alert.pk and role == ScheduleInstance.CASE and pk > latest.get(case_pk, (0, ""))[0]:
            latest[case_pk] = (pk, reason)
    return [case_pk for case_pk, (_pk, reason) in latest.items() if reason == lifecycle.COMPLETED]


# --------------------------------------------------------------------------------------------------
# The ticker's part
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _calendar(instant: datetime) -> tuple[tuple[str, object], ...]:
    """Every zone's date at an instant (memoised: the ticker asks about the same few instants)."""
    return tuple((name, local_date(instant, ZoneInfo(name))) for name in sorted(rules.zone_names()))


def _day_changed(since: datetime | None, now: datetime) -> bool:
    """Whether some zone's calendar day changed between the two instants (so a days criterion may hold for
    more cases): at most once per quarter hour, the step of the world's UTC offsets."""
    if since is None:
        return True
    if now - since < timedelta(minutes=1):
        return False
    return _calendar(since.replace(second=0, microsecond=0)) != _calendar(now.replace(second=0, microsecond=0))


def _has_days_criteria(alert: ConditionalAlert) -> bool:
    """Days criteria, or a group (its date and contact conditions change without the cases changing): the
    alert runs again when a calendar day changes."""
    if alert.group_id is not None:
        return True
    raw: Iterable[object] = alert.criteria if isinstance(alert.criteria, list) else []
    return any(isinstance(c, dict) and c.get("operator") in ("days_before", "days_after") for c in raw)


def continue_runs(budget_seconds: float = 2.0, now: datetime | None = None) -> int:
    """The worker ticker's call: continue the runs under way, for about `budget_seconds` in all, and start a
    run for active alerts with days criteria whose cases' calendar day has changed since their last run.
    Returns the number of cases evaluated."""
    now = now or timezone.now()
    deadline = time.monotonic() + budget_seconds
    idle = ConditionalAlert.objects.filter(status=ConditionalAlert.ACTIVE, run_status=ConditionalAlert.IDLE)
    for alert in idle:
        # (since the last run started: its first chunks were evaluated with that day)
        if _has_days_criteria(alert) and _day_changed(alert.run_started_on, now):
            request_run(alert, now)
    evaluated = 0
    due = ConditionalAlert.objects.filter(status=ConditionalAlert.ACTIVE, run_status=ConditionalAlert.RUNNING)
    for alert in due.order_by("run_started_on", "pk"):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        evaluated += run(alert, budget_seconds=left, now=now).evaluated
    return evaluated
