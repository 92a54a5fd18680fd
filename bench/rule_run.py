#!/usr/bin/env python
"""Bench: a conditional alert created over a project's cases, evaluated by the rule run
(casemsg.scheduling.runner.run: chunked, resumable, instances started through lifecycle.start_for_cases),
against the floor: one `INSERT INTO scheduleinstance … SELECT … FROM cases WHERE <the same match>` in the
same run, which writes one plain instance per matching case and computes nothing.

    .venv/bin/python bench/rule_run.py                                    # SQLite, 200,000 cases
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/rule_run.py

On PostgreSQL the default is 1,000,000 cases, in a fresh database `casemsg_bench_rules` on the same server
(dropped at the end), so the database named in the URL is never touched. Goal: the run ≤ 3× the floor,
and 1,000,000 cases ≤ 60 s on PostgreSQL. The cases: 90% of the alert's type (5% of those closed), in
eight zones and none, a due date spread over ±60 days, a risk level; the criteria match about a third.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _database import fresh_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "casemsg_bench_rules"
ZONES = ["Africa/Nairobi", "Asia/Kolkata", "America/New_York", "America/Los_Angeles", "Europe/London", "UTC", "", ""]
CRITERIA = [
    {"property": "edd", "operator": "days_before", "value": 14},
    {"property": "risk", "operator": "not_equal", "value": "low"},
    {"property": "status", "operator": "has_no_value"},
]


def _prepare_database() -> tuple[Callable[[], None], bool]:
    """Point the settings at a fresh, empty database; returns the cleanup and whether it is PostgreSQL."""
    return fresh_database(BENCH_DB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, help="cases to create (default 1,000,000 on PostgreSQL, 200,000 on SQLite)")
    ap.add_argument("--chunk", type=int, default=5000, help="the run's chunk (default 5,000)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile the run and print the top entries")
    ap.add_argument("--keep", action="store_true", help="keep the bench database (PostgreSQL) / data dir")
    args = ap.parse_args()
    cleanup, pg = _prepare_database()
    if args.cases is None:
        args.cases = 1_000_000 if pg else 200_000
    try:
        _run(args)
    finally:
        if not args.keep:
            cleanup()


def _create_cases(project, n: int, seed: int) -> float:
    from django.db import transaction

    from casemsg.cases.models import Case
    from casemsg.core import bulk

    rng = random.Random(seed)
    now = datetime.now(UTC)
    base = now.date()
    started = time.perf_counter()
    batch = 50_000
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            props = {
                "edd": (base + timedelta(days=rng.randrange(-60, 61))).isoformat(),
                "risk": rng.choice(("low", "medium", "high")),
                "contact_phone_number": f"2547{i:08d}",
            }
            zone = rng.choice(ZONES)
            if zone:
                props["time_zone"] = zone
            if rng.random() < 0.1:
                props["status"] = "delivered"
            rows.append(
                {
                    "project_id": project.pk,
                    "case_id": f"c{i:08d}",
                    "case_type": "mother" if i % 10 else "household",
                    "name": f"Case {i}",
                    "properties": props,
                    "closed": i % 20 == 1,
                    "opened_on": now,
                    "modified_on": now,
                }
            )
        with transaction.atomic():
            bulk.insert_rows(Case, rows)
    return time.perf_counter() - started


def _floor(alert, today, now: datetime) -> tuple[float, int]:
    """One INSERT … SELECT of a plain instance per matching open case of the type; (seconds, rows)."""
    from django.db import connection, transaction
    from django.db.models import F, Value

    from casemsg.cases.models import Case
    from casemsg.scheduling import rules
    from casemsg.scheduling.models import ScheduleInstance

    criteria = rules.parse_criteria(alert.criteria)
    assert not rules.python_only(criteria)
    meta = ScheduleInstance._meta
    fixed = {
        "project_id": alert.project_id,
        "alert_id": alert.pk,
        "role": "case",
        "revision": alert.revision,
        "anchor_utc": now,
        "next_due_utc": now,
        "created_on": now,
        "active": True,
    }
    columns, select = [], {}
    for f in meta.concrete_fields:
        if f.primary_key:
            continue
        name = f"_v{len(columns)}"
        if f.attname in ("source_case_id", "case_id"):
            select[name] = F("pk")
        else:
            value = fixed[f.attname] if f.attname in fixed else f.get_default()
            select[name] = Value(value, output_field=f)
        columns.append(connection.ops.quote_name(f.column))
    qs = (
        Case.objects.filter(project_id=alert.project_id, case_type=alert.case_type, closed=False)
        .filter(rules.matching_q(criteria, today))
        .annotate(**select)
        .values(*select)
    )
    sql, params = qs.query.sql_with_params()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({', '.join(columns)}) {sql}", params)
        rows = cur.rowcount
    return time.perf_counter() - started, rows


def _run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from casemsg.cases.models import Case
    from casemsg.projects.services import create_project
    from casemsg.scheduling import runner, schedules
    from casemsg.scheduling.models import ConditionalAlert, ScheduleInstance
    from casemsg.scheduling.rules import Today, matches, parse_criteria

    call_command("migrate", verbosity=0)
    print(f"database: {'PostgreSQL' if settings.IS_POSTGRES else 'SQLite'} ({connection.settings_dict['NAME']})")
    project, _ = create_project("bench", "Rule run bench", time_zone="Africa/Nairobi")
    made = _create_cases(project, args.cases, args.seed)
    if settings.IS_POSTGRES:
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")  # what autovacuum would do soon after a load this size
    evaluated = Case.objects.filter(project=project, case_type="mother", closed=False).count()
    print(f"cases: {args.cases:,} created in {made:.1f} s; {evaluated:,} open cases of the alert's type")

    def alert(name: str) -> ConditionalAlert:
        now = timezone.now()
        return ConditionalAlert.objects.create(
            project=project,
            name=name,
            case_type="mother",
            criteria=CRITERIA,
            content={"channel": "sms", "text": "Your due date is near: please visit the clinic."},
            schedule=schedules.parse_alert_schedule({"type": "offsets", "unit": "days", "offsets": [0, 7]}).as_json(),
            recipients=["case"],
            created_on=now,
            modified_on=now,
        )

    now = timezone.now()
    today = Today(now, project.default_time_zone)
    load = os.getloadavg()
    floor_s, floor_rows = _floor(alert("floor"), today, now)

    measured = alert("measured")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    result = runner.run(measured, chunk=args.chunk, now=now)
    run_s, run_cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    floor2_s, _ = _floor(alert("floor again"), today, now)
    floor_s = min(floor_s, floor2_s)  # the quicker of the two: the ratio errs on the strict side
    load = max(load, os.getloadavg(), key=lambda x: x[0])

    # a fast but wrong run must not pass: the run started exactly the floor's rows, and a sample agrees
    started_n = ScheduleInstance.objects.filter(alert=measured, active=True).count()
    assert result.finished and started_n == result.started == floor_rows, (started_n, result.started, floor_rows)
    criteria = parse_criteria(CRITERIA)
    mine = set(ScheduleInstance.objects.filter(alert=measured).values_list("source_case_id", flat=True))
    sample = Case.objects.filter(project=project, case_type="mother", closed=False).order_by("?")[:2000]
    for case in sample:
        assert (case.pk in mine) == matches(case, criteria, today), case.pk
    measured.refresh_from_db()
    assert measured.run_status == "idle" and measured.run_done == evaluated

    # The same alert again with nothing to change (what a re-run for a new calendar day costs at least).
    runner.request_run(measured, now)
    started = time.perf_counter()
    again = runner.run(measured, chunk=args.chunk, now=now)
    again_s = time.perf_counter() - started
    assert (again.started, again.ended) == (0, 0), again

    rate = evaluated / run_s
    ratio = run_s / floor_s
    print(f"matched: {floor_rows:,} cases ({floor_rows / evaluated:.0%}); chunk {args.chunk:,}")
    print(f"floor (one INSERT … SELECT): {floor_s:7.2f} s  {evaluated / floor_s:10,.0f} cases/s")
    print(
        f"rule run                   : {run_s:7.2f} s  {rate:10,.0f} cases/s  ratio {ratio:.2f}x the floor  "
        f"(this process's CPU {run_cpu:.1f} s, {result.chunks} chunks)"
    )
    print(f"re-run, nothing to change: {again_s:7.2f} s  {evaluated / again_s:10,.0f} cases/s")
    print(f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    goal = ratio <= 3 and (not settings.IS_POSTGRES or args.cases < 1_000_000 or run_s <= 60)
    print(f"goal (<= 3x the floor; 1,000,000 cases <= 60 s on PostgreSQL): {'met' if goal else 'MISSED'}")
    today_date: date = today.project_date
    print(f"(today in the project's zone: {today_date}; criteria: {CRITERIA})")
    if not goal:
        sys.exit(1)


if __name__ == "__main__":
    main()
