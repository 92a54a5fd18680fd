#!/usr/bin/env python
"""Bench: the scheduler tick and a large broadcast, each against a floor measured in the same run.

    .venv/bin/python bench/tick.py                                  # SQLite, 200,000 rows
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/tick.py

1. **The tick costs what is due, not what exists.** N schedule instances (1,000,000 on PostgreSQL,
   200,000 on SQLite), of which 10,000 are due, then 1,000: one tick each. Prints the seconds, their
   ratio (≈ 10 when the cost follows the due rows; the total is the same), an idle tick, and the floor:
   one server-side INSERT … SELECT of the same 10,000 messages. Goal: ≤ 10 × the floor, and a tenth of the
   due rows in ≤ half the time.
2. **A broadcast to N cases** ("now"): the time to start it (one instance per case) plus the ticks that
   queue its N messages, against one server-side INSERT … SELECT of the same N message rows into the
   same (empty) table in the same run. Goal: ≥ 0.25 × the floor's rate (it writes two rows per recipient),
   and the process's peak memory (VmHWM) ≤ 300 MB.

Each floor is measured before and after its subject and the faster kept; every goal prints met or MISSED
and the run exits 1 on a miss (bench/_report.py).

On PostgreSQL a scratch database `casemsg_bench_tick` is created and dropped (the URL's database is never
touched); on SQLite a temporary data directory is used. Data is created with casemsg.core.bulk (COPY on
PostgreSQL), not the ORM row by row. `--size N` overrides the number of rows.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _database import fresh_database
from _report import Verdicts, load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "casemsg_bench_tick"
ZONES = ["Africa/Nairobi", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", ""]


def _prepare_database() -> Callable[[], None]:
    os.environ["CASEMSG_QUEUE_IMMEDIATE"] = "0"  # queueing only: no worker delivers here
    cleanup, _is_postgres = fresh_database(BENCH_DB, prefix="casemsg-bench-tick-")
    return cleanup


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return -1.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=0, help="rows (default 1,000,000 on PostgreSQL, 200,000 on SQLite)")
    ap.add_argument("--due", type=int, default=10_000, help="due instances in the first tick (default 10,000)")
    args = ap.parse_args()
    cleanup = _prepare_database()
    try:
        run(args)
    finally:
        cleanup()


def run(args: argparse.Namespace) -> None:
    subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], check=True, cwd=ROOT, env=os.environ)
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "casemsg.settings"
    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    from casemsg.cases.models import Case
    from casemsg.core import bulk
    from casemsg.messaging.models import Message, MessagingEvent
    from casemsg.projects.services import create_project
    from casemsg.scheduling import services, tick
    from casemsg.scheduling.models import Broadcast, ScheduleInstance

    db = "PostgreSQL" if settings.IS_POSTGRES else "SQLite"
    n = args.size or (1_000_000 if settings.IS_POSTGRES else 200_000)
    due_big, due_small = args.due, args.due // 10
    print(f"{db}; {n:,} rows; {os.cpu_count()} CPUs; load average {load()}")

    # --- data: n cases through casemsg.core.bulk, in chunks --------------------------------------------
    project, _key = create_project("bench", "Bench")
    now = datetime.now(UTC).replace(microsecond=0)
    t = time.perf_counter()
    rng = random.Random(7)
    chunk = 20_000
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            props = {"contact_phone_number": f"2547{10000000 + i}"}
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
                    "opened_on": now,
                    "modified_on": now,
                }
            )
        with transaction.atomic():
            bulk.insert_rows(Case, rows)
    print(f"setup: {n:,} cases in {time.perf_counter() - t:.1f} s (not timed below)")
    first_pk, last_pk = (
        Case.objects.order_by("pk").values_list("pk", flat=True).first(),
        Case.objects.order_by("-pk").values_list("pk", flat=True).first(),
    )
    assert first_pk is not None and last_pk is not None
    connection.close()
    verdicts = Verdicts("bench/tick.py")
    event = MessagingEvent.objects.create(project=project, source="broadcast", description="floor")
    case_table = connection.ops.quote_name(Case._meta.db_table)

    def empty_table() -> None:
        """Removes the floor's rows and, on PostgreSQL, vacuums the table: each measurement finds the
        message table in the same state."""
        Message.objects.filter(event=event).delete()
        if settings.IS_POSTGRES:
            with connection.cursor() as cur:
                cur.execute(f"VACUUM ANALYZE {Message._meta.db_table}")

    def insert_select_floor(content: dict[str, object], k: int) -> float:
        """The floor: k message rows (one per case) written by one server-side INSERT … SELECT."""
        t = time.perf_counter()
        with transaction.atomic():
            got = bulk.insert_select(
                Message,
                {
                    "project_id": project.pk,
                    "event_id": event.pk,
                    "content": content,
                    "next_attempt_on": now,
                    "created_on": now,
                },
                {"case_id": "id", "send_key": "'floor:' || id"},
                f"{case_table} WHERE project_id = %s AND id < %s",
                [project.pk, first_pk + k],
            )
        elapsed = time.perf_counter() - t
        assert got == k, (got, k)
        empty_table()
        return elapsed

    broadcast_content = {"translations": {"en": "Hello {case.name}, your visit is due"}}
    floor_before = insert_select_floor(broadcast_content, n)

    # --- 2. a broadcast to every case, started and queued -------------------------------------------
    # (first, so that the process's peak memory is this part's: the data setup above works in chunks)
    body = {
        "name": "Everyone",
        "content": {"translations": {"en": "Hello {case.name}, your visit is due"}},
        "recipients": {"case_type": "mother"},
        "schedule": {"type": "now"},
    }
    t0 = time.perf_counter()
    # a "now" broadcast starts its instances and queues its messages when it is created (set-wise per
    # zone); a tick after it finds nothing left
    b = services.create_broadcast(project, body, now)
    t_start = time.perf_counter() - t0
    t1 = time.perf_counter()
    queued = tick.tick(now)
    t_queue = time.perf_counter() - t1
    total = time.perf_counter() - t0
    messages = Message.objects.filter(event_id=b.event_id).count()
    assert messages == n and queued == 0, (messages, n, queued)
    b.refresh_from_db()
    peak = peak_mb()
    rate = n / total

    peak_ok = peak <= 300

    # floor: the same n message rows written by one server-side INSERT … SELECT from the cases, into the
    # message table in the state the broadcast found it (empty): measured before the broadcast and after
    # its rows are gone, and the faster kept (bench/_report.py)
    Message.objects.filter(event_id=b.event_id).delete()
    empty_table()
    floor_rate = n / min(floor_before, insert_select_floor(broadcast_content, n))
    print(f"\n2. broadcast to {n:,} cases (status {b.status}); load average {load()}")
    print(f"   create (instances + {n:,} messages queued): {t_start:.1f} s; a tick after it: {t_queue:.1f} s")
    print(
        f"   {rate:,.0f} messages/s queued; floor: one INSERT … SELECT of the same rows {floor_rate:,.0f}/s "
        f"(faster of before/after); ratio to the floor {rate / floor_rate:.2f}"
    )
    # the broadcast writes two rows per recipient (its schedule instance and its message) where the floor
    # writes one: a quarter of the floor's rate leaves it half the floor's speed per row
    verdicts.check(
        f"broadcast ≥ 0.25 × the INSERT … SELECT floor ({n:,} cases)",
        rate >= 0.25 * floor_rate,
        f"{rate / floor_rate:.2f} × ({rate:,.0f}/s)",
    )
    verdicts.check("broadcast peak memory (VmHWM) ≤ 300 MB", peak_ok, f"{peak:.0f} MB")

    # --- 1. the tick: n instances, due_big due, then due_small ----------------------------------------
    daily = Broadcast.objects.create(
        project=project,
        name="Daily",
        content={"channel": "sms", "text": "Daily tip for {case.name}"},
        recipients={"case_type": "mother"},
        schedule={"type": "daily", "times": ["09:00"], "start_date": "2020-01-01", "time_zone": "UTC"},
        created_on=now,
        modified_on=now,
    )
    t = time.perf_counter()
    future = [now + timedelta(days=1 + (i % 300)) for i in range(1000)]
    due_at = now - timedelta(minutes=1)
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            pk = first_pk + i
            rows.append(
                {
                    "project_id": project.pk,
                    "broadcast_id": daily.pk,
                    "source_case_id": pk,
                    "role": "case",
                    "case_id": pk,
                    "anchor_utc": datetime(2020, 1, 1, tzinfo=UTC),
                    "time_zone": "UTC",
                    "iteration": 1,
                    "next_due_utc": future[i % 1000],
                    "next_local": "",
                    "active": True,
                    "created_on": now,
                }
            )
        with transaction.atomic():
            bulk.insert_rows(ScheduleInstance, rows)
    if settings.IS_POSTGRES:
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {ScheduleInstance._meta.db_table}")
    print(f"\n1. tick: {n:,} active instances created in {time.perf_counter() - t:.1f} s (setup)")
    live = ScheduleInstance.objects.filter(broadcast=daily)

    def make_due(k: int) -> None:
        ids = sorted(rng.sample(range(first_pk, first_pk + n), k))
        for s in range(0, k, 1000):
            live.filter(case_id__in=ids[s : s + 1000]).update(next_due_utc=due_at, next_local="")

    def timed_tick(k: int) -> float:
        make_due(k)
        connection.close()  # a fresh connection, as a worker's ticker has
        t = time.perf_counter()
        got = tick.tick(now)
        elapsed = time.perf_counter() - t
        assert got == k, (got, k)
        return elapsed

    last_before_tick = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    tick_content = {"text": "Daily tip for {case.name}"}
    floors = [insert_select_floor(tick_content, due_big)]
    t_idle = time.perf_counter()
    assert tick.tick(now) == 0
    t_idle = time.perf_counter() - t_idle
    t_big = timed_tick(due_big)
    t_small = timed_tick(due_small)
    # floor: the same due_big messages by one INSERT … SELECT, into the table as the ticks found it (their
    # messages removed first), measured before the ticks and after; the faster is kept
    Message.objects.filter(pk__gt=last_before_tick).exclude(event=event).delete()
    empty_table()
    floors.append(insert_select_floor(tick_content, due_big))
    t_floor = min(floors)
    print(f"   load average {load()}")
    print(f"   idle tick (nothing due of {n:,}): {t_idle * 1000:.1f} ms")
    print(f"   {due_big:,} due: {t_big:.2f} s (goal ≤ 2 s); {due_small:,} due: {t_small:.2f} s")
    print(
        f"   ratio {due_big:,}/{due_small:,} due: {t_big / t_small:.1f} "
        f"(≈ {due_big // due_small} when the cost follows what is due)"
    )
    print(
        f"   floor: one INSERT … SELECT of {due_big:,} messages {t_floor:.2f} s (faster of before/after); "
        f"tick / floor {t_big / t_floor:.1f}"
    )
    print(f"   {due_big / t_big:,.0f} instances/s")
    # a tick does per due row what the floor does (its message) plus its schedule's next due time
    verdicts.check(f"tick of {due_big:,} due ≤ 10 × the floor", t_big <= 10 * t_floor, f"{t_big / t_floor:.1f} ×")
    # the cost follows what is due: a tenth of the due rows costs well under half the time
    verdicts.check(
        f"tick cost follows what is due ({due_small:,} due ≤ 0.5 × {due_big:,} due)",
        t_small <= 0.5 * t_big,
        f"{t_small:.2f} s vs {t_big:.2f} s",
    )
    verdicts.check("idle tick ≤ 50 ms", t_idle <= 0.05, f"{t_idle * 1000:.1f} ms")
    verdicts.finish()


if __name__ == "__main__":
    main()
