#!/usr/bin/env python
"""Bench: the server time of the cases, mobile-workers and message-log pages (lists with their filters,
a case's page, the send form's preview) in a project with 50,000 cases and 100,000 messages, against the
floor: the least any list page must do — one raw SELECT of a page of rows and one COUNT, in the same run.

    .venv/bin/python bench/web_lists.py                                    # SQLite
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/web_lists.py

On PostgreSQL it works in a fresh database `casemsg_bench_web` on the same server (dropped at the end).
Each page is asked for through Django's test client (every middleware, the role check, the template), 5
times; the median counts. Goal: every page under 200 ms. The cases (written through cases.services, so the
phone registry is as in production): Kenyan numbers, US numbers with and without consent, numbers with
dashes, none, 5% closed, 1% opted out; the messages spread over 60 days, a tenth failed.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _database import fresh_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DB = "casemsg_bench_web"
GOAL_MS = 200.0
RUNS = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=50_000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", action="store_true", help="keep the bench database (PostgreSQL) / data dir")
    ap.add_argument("--queries", action="store_true", help="print each page's slowest SQL queries")
    args = ap.parse_args()
    cleanup, _pg = fresh_database(BENCH_DB)
    try:
        _run(args)
    finally:
        if not args.keep:
            cleanup()


def _phone(i: int, rng: random.Random) -> dict[str, str]:
    kind = rng.random()
    if kind < 0.55:
        return {"contact_phone_number": f"2547{i:08d}"}
    if kind < 0.70:
        return {"contact_phone_number": f"1206{i % 10_000_000:07d}", "contact_phone_number_is_verified": "1"}
    if kind < 0.80:
        return {"contact_phone_number": f"1415{i % 10_000_000:07d}"}
    if kind < 0.90:
        return {"contact_phone_number": f"1-312-{i % 1000:03d}-{i % 10000:04d}"}
    return {}


def _seed(project, n_cases: int, n_messages: int, seed: int) -> tuple[float, float]:
    from django.db import transaction

    from casemsg.cases import services
    from casemsg.cases.models import Case
    from casemsg.contacts.models import OptOut
    from casemsg.core import bulk, errors
    from casemsg.messaging.models import Message
    from casemsg.workers import services as workers

    rng = random.Random(seed)
    started = time.perf_counter()
    for start in range(0, n_cases, services.MAX_BULK):
        changes = [
            services.CaseChange(
                case_id=f"c{i:07d}",
                case_type="mother" if i % 10 else "household",
                name=f"Case {i}",
                properties={**_phone(i, rng), "village": rng.choice(["Kisumu", "Nakuru", "Eldoret"])},
                closed=i % 20 == 1,
            )
            for i in range(start, min(n_cases, start + services.MAX_BULK))
        ]
        services.bulk_upsert(project, changes)
    for i in range(200):
        workers.create_worker(project, workers.WorkerChange(username=f"fw{i}", phone_numbers=[f"2541{i:08d}"]))
    now = datetime.now(UTC)
    OptOut.objects.bulk_create(
        [OptOut(phone_number=f"2547{i:08d}", opted_out_on=now) for i in range(0, n_cases, 100)],
        ignore_conflicts=True,
    )
    cases_made = time.perf_counter() - started

    started = time.perf_counter()
    pks = list(Case.objects.filter(project=project).values_list("pk", flat=True))
    batch = 20_000
    for start in range(0, n_messages, batch):
        rows = []
        for _ in range(start, min(n_messages, start + batch)):
            failed = rng.random() < 0.1
            when = now - timedelta(seconds=rng.randrange(60 * 86400))
            rows.append(
                {
                    "project_id": project.pk,
                    "case_id": rng.choice(pks),
                    "direction": "out" if rng.random() < 0.8 else "in",
                    "channel": "sms",
                    "to": f"2547{rng.randrange(n_cases):08d}",
                    "content": {"text": "Hello {case.name}, your visit is due."},
                    "text": "" if failed else "Hello, your visit is due.",
                    "status": Message.FAILED if failed else Message.SENT,
                    "error": rng.choice([errors.NO_CONSENT, errors.INVALID_PHONE_NUMBER]) if failed else "",
                    "created_on": when,
                    "next_attempt_on": when,
                }
            )
        with transaction.atomic():
            bulk.insert_rows(Message, rows)
    return cases_made, time.perf_counter() - started


def _floor(project) -> float:
    """One page of cases and of messages, and their counts, in raw SQL: the least a list page does."""
    from django.db import connection

    from casemsg.cases.models import Case
    from casemsg.messaging.models import Message

    started = time.perf_counter()
    with connection.cursor() as cur:
        for model, order, per_page in ((Case, "modified_on", 50), (Message, "created_on", 50)):
            table = model._meta.db_table
            cur.execute(
                f"SELECT * FROM {table} WHERE project_id = %s ORDER BY {order} DESC LIMIT {per_page}", [project.pk]
            )
            cur.fetchall()
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE project_id = %s", [project.pk])
            cur.fetchall()
    return time.perf_counter() - started


def _timed(seen: list[tuple[float, str]], execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        seen.append((time.perf_counter() - started, sql))


def _time(get: Callable[[], object]) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        get()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from casemsg.messaging.models import Message
    from casemsg.projects.services import create_project

    call_command("migrate", verbosity=0)
    print(f"database: {'PostgreSQL' if settings.IS_POSTGRES else 'SQLite'} ({connection.settings_dict['NAME']})")
    project, _ = create_project("bench", "Web bench", time_zone="Africa/Nairobi")
    cases_s, messages_s = _seed(project, args.cases, args.messages, args.seed)
    if settings.IS_POSTGRES:
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    print(f"cases: {args.cases:,} in {cases_s:.1f} s; messages: {args.messages:,} in {messages_s:.1f} s")

    client = Client(HTTP_HOST="127.0.0.1")  # an allowed host (CASEMSG_ALLOWED_HOSTS)
    client.force_login(get_user_model().objects.create_superuser("bench", "bench@example.org", "pw-bench-1"))
    base = f"/projects/{project.slug}"
    failed = Message.objects.filter(project=project, status=Message.FAILED).first()
    day = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    pages = [
        ("cases list", f"{base}/cases/"),
        ("cases: search by phone", f"{base}/cases/?q=2547000123"),
        ("cases: search by name", f"{base}/cases/?q=Case+4711"),
        ("cases: INVALID_PHONE_NUMBER", f"{base}/cases/?problem=INVALID_PHONE_NUMBER"),
        ("cases: NO_CONSENT", f"{base}/cases/?problem=NO_CONSENT"),
        ("cases: opted out", f"{base}/cases/?consent=opted_out"),
        ("cases: page 500", f"{base}/cases/?page=500"),
        ("a case's page", f"{base}/cases/c0000042/"),
        ("mobile workers", f"{base}/mobile-workers/"),
        ("message log", f"{base}/messages/"),
        ("log: failed NO_CONSENT", f"{base}/messages/?status=failed&error=NO_CONSENT"),
        ("log: one day", f"{base}/messages/?since={day}&until={day}"),
        ("log: search text", f"{base}/messages/?q=visit"),
        ("log: search number", f"{base}/messages/?q=254700001234"),
        ("log: one case", f"{base}/messages/?case={failed.case.case_id if failed and failed.case else 'c0000001'}"),
        ("send form preview", f"{base}/messages/preview/?case=c0000042&text=Hello+%7Bcase.name%7D"),
    ]
    load = os.getloadavg()
    floor_s = min(_floor(project), _floor(project))
    results = []
    for name, url in pages:
        seen: list[tuple[float, str]] = []
        with connection.execute_wrapper(functools.partial(_timed, seen)):
            r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        results.append((name, _time(lambda url=url: client.get(url))))
        if args.queries:
            print(f"{name}: {len(seen)} queries, {sum(t for t, _ in seen) * 1000:.1f} ms in SQL")
            for t, sql in sorted(seen, reverse=True)[:3]:
                print(f"   {t * 1000:7.1f} ms  {sql[:160]}")
    floor_s = min(floor_s, _floor(project))
    load = max(load, os.getloadavg(), key=lambda x: x[0])

    print(f"floor (raw SELECT of a page + COUNT, cases and messages): {floor_s * 1000:7.1f} ms")
    for name, s in results:
        print(f"{name:32} {s * 1000:7.1f} ms  ratio {s / floor_s:5.1f}x the floor")
    worst = max(s for _n, s in results)
    print(f"load average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    verdict = "met" if worst * 1000 < GOAL_MS else "MISSED"
    print(f"goal (every page < {GOAL_MS:.0f} ms): {verdict} (slowest {worst * 1000:.0f} ms)")
    if worst * 1000 >= GOAL_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
