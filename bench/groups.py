#!/usr/bin/env python
"""Bench: a dynamic group resolved at a broadcast's occurrence, against a floor measured in the same run.

    .venv/bin/python bench/groups.py                                  # SQLite, 200,000 cases
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/groups.py
    .venv/bin/python bench/groups.py --cases 20000                    # a quick run

N cases (1,000,000 on PostgreSQL, 200,000 on SQLite) of one type in five time zones; a dynamic group —
district is North or East, and a date property within the next 180 days, about 40 % of them — and a daily
broadcast to it in each recipient's zone. Then, between two occurrences, 1 % of the members stop matching
(their district changes) and new matching cases are created (1 % of N), with plain SQL (not timed). Timed:

1. **the occurrence's resolution** — `tick.refresh_broadcasts` at the occurrence: the group evaluated in SQL
   over the N cases, the instances of the leavers ended, the joiners' instances started (their first event
   the occurrence's), the next reading planned;
2. **the broadcast's start** — `services.create_broadcast`: the group evaluated and an instance written per
   member (one INSERT … SELECT per zone);
3. **the floor**: one `INSERT … SELECT` of the same rows — the group's own SQL (the query the broadcast
   reads) into a plain table of one column.

Goal: (1) ≤ 3 × the floor (the verdict; the run exits 1 on a miss); (2) is printed beside it. The load
average is printed, since the machine may be shared. On PostgreSQL a scratch database `casemsg_bench_groups`
is created and dropped; on SQLite a temporary data directory is used. Data is created with
casemsg.core.bulk in batches, not the ORM row by row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _database import fresh_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "casemsg_bench_groups"
ZONES = ["Africa/Nairobi", "America/New_York", "Asia/Kolkata", "Europe/Berlin", ""]
DISTRICTS = ["North", "East", "South", "West"]
GOAL = 3.0


def _prepare_database() -> Callable[[], None]:
    os.environ["CASEMSG_QUEUE_IMMEDIATE"] = "0"  # queueing only: no worker delivers here
    cleanup, _is_postgres = fresh_database(BENCH_DB, prefix="casemsg-bench-groups-")
    return cleanup


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=0, help="cases (default 1,000,000 on PostgreSQL, 200,000 on SQLite)")
    args = ap.parse_args()
    cleanup = _prepare_database()
    try:
        return run(args)
    finally:
        cleanup()


def run(args: argparse.Namespace) -> int:
    subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], check=True, cwd=ROOT, env=os.environ)
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "casemsg.settings"
    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    from casemsg.cases.models import Case
    from casemsg.core import bulk
    from casemsg.groups import queries as group_queries
    from casemsg.groups import services as group_services
    from casemsg.projects.services import create_project
    from casemsg.scheduling import services, tick
    from casemsg.scheduling.models import Broadcast, ScheduleInstance

    db = "PostgreSQL" if settings.IS_POSTGRES else "SQLite"
    n = args.cases or (1_000_000 if settings.IS_POSTGRES else 200_000)
    print(f"{db}; {n:,} cases; {os.cpu_count()} CPUs; load average {load()}")

    # --- data: n cases through casemsg.core.bulk, in chunks (not timed) --------------------------------
    project, _key = create_project("bench", "Bench")
    created = datetime(2027, 6, 1, 5, 0, tzinfo=UTC)  # before the day's first 09:00 in any of the zones
    today = date(2027, 6, 1)
    t = time.perf_counter()
    chunk = 20_000

    def case_rows(first: int, last: int, district: str | None = None) -> list[dict]:
        rows = []
        for i in range(first, last):
            props = {
                "contact_phone_number": f"2547{10000000 + i}",
                "district": district or DISTRICTS[i % 4],
                "edd": (today + timedelta(days=(i * 7) % 365)).isoformat(),
            }
            zone = ZONES[i % len(ZONES)]
            if zone:
                props["time_zone"] = zone
            rows.append(
                {
                    "project_id": project.pk,
                    "case_id": f"c{i}",
                    "case_type": "mother",
                    "name": f"Mother {i}",
                    "properties": props,
                    "opened_on": created,
                    "modified_on": created,
                }
            )
        return rows

    for start in range(0, n, chunk):
        with transaction.atomic():
            bulk.insert_rows(Case, case_rows(start, min(n, start + chunk)))
    if settings.IS_POSTGRES:
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {Case._meta.db_table}")
    print(f"setup: {n:,} cases in {time.perf_counter() - t:.1f} s (not timed)")

    group = group_services.create_group(
        project,
        {
            "name": "Due within 180 days, North and East",
            "kind": "dynamic",
            "case_type": "mother",
            "conditions": [
                {"property": "district", "operator": "in", "value": ["North", "East"]},
                {"property": "edd", "operator": "within_next_days", "value": 180},
            ],
        },
        created,
    )
    body = {
        "name": "Daily tip",
        "content": {"text": "Good morning {case.name}"},
        "recipients": {"group": group.pk},
        "schedule": {"type": "daily", "time": "09:00", "start_date": "2027-06-01"},
    }

    # --- 2. the broadcast's start: the group evaluated, an instance per member ---------------------------
    connection.close()
    t = time.perf_counter()
    b = services.create_broadcast(project, body, created)
    t_start = time.perf_counter() - t
    members = ScheduleInstance.objects.filter(broadcast=b, active=True).count()
    assert b.refresh_due_utc is not None
    print(f"\nthe group: {group_queries.describe(group)}: {members:,} of {n:,} cases ({100 * members / n:.0f} %)")

    # --- between two occurrences: 1 % leave, 1 % of n join (plain SQL, not timed) ------------------------
    first_due = b.refresh_due_utc
    tick.tick(first_due + timedelta(seconds=30))  # the first occurrence read and sent (not timed)
    b.refresh_from_db()
    at = b.refresh_due_utc
    assert at is not None
    leave = max(1, members // 100)
    join = max(1, n // 100)
    leavers = list(
        ScheduleInstance.objects.filter(broadcast=b, active=True)
        .order_by("case_id")
        .values_list("case_id", flat=True)[:: max(1, members // leave)][:leave]
    )
    for s in range(0, len(leavers), 1000):
        part = leavers[s : s + 1000]
        with connection.cursor() as cur:
            if settings.IS_POSTGRES:
                cur.execute(
                    f"UPDATE {Case._meta.db_table} SET properties = jsonb_set(properties, '{{district}}', '\"West\"') "
                    f"WHERE id = ANY(%s)",
                    [part],
                )
            else:
                cur.execute(
                    f"UPDATE {Case._meta.db_table} SET properties = json_set(properties, '$.district', 'West') "
                    f"WHERE id IN ({', '.join(['%s'] * len(part))})",
                    part,
                )
    for start in range(n, n + join, chunk):
        with transaction.atomic():
            bulk.insert_rows(Case, case_rows(start, min(n + join, start + chunk), district="North"))
    joiners = group_queries.members(group, at).filter(case_id__in=[f"c{i}" for i in range(n, n + join)]).count()
    if settings.IS_POSTGRES:
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {Case._meta.db_table}")
            cur.execute(f"ANALYZE {ScheduleInstance._meta.db_table}")

    # --- 1. the occurrence's resolution ------------------------------------------------------------------
    connection.close()  # a fresh connection, as a worker's ticker has
    t = time.perf_counter()
    refreshed = tick.refresh_broadcasts(at + timedelta(seconds=1))
    t_refresh = time.perf_counter() - t
    assert refreshed == 1
    running = ScheduleInstance.objects.filter(broadcast=b, active=True).count()
    assert running == members - len(leavers) + joiners, (running, members, len(leavers), joiners)
    left = ScheduleInstance.objects.filter(broadcast=b, end_reason="no_longer_matches").count()
    assert left == len(leavers), (left, len(leavers))
    assert Broadcast.objects.get(pk=b.pk).refresh_due_utc not in (None, at)

    # --- 3. the floor: one INSERT … SELECT of the same rows (the group's SQL) -----------------------------
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE bench_floor (case_id bigint NOT NULL)")
    selection = group_queries.members(group, at).order_by().values("pk")
    sql, params = selection.query.sql_with_params()
    connection.close()
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"INSERT INTO bench_floor (case_id) {sql}", params)
        floor_rows = cur.rowcount
    t_floor = time.perf_counter() - t
    assert floor_rows == running, (floor_rows, running)

    ratio = t_refresh / t_floor
    met = ratio <= GOAL
    print(f"\nload average {load()}")
    print(
        f"1. the occurrence's resolution: {t_refresh:.2f} s — the group over {n + join:,} cases, "
        f"{len(leavers):,} left, {joiners:,} joined, {running:,} recipients"
    )
    print(
        f"2. the broadcast's start: {t_start:.2f} s — {members:,} instances written ({t_start / t_floor:.2f} × floor)"
    )
    print(f"3. floor: one INSERT … SELECT of the same {floor_rows:,} rows: {t_floor:.2f} s")
    print(f"resolution / floor: {ratio:.2f} (goal ≤ {GOAL:.0f}): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
