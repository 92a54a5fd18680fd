#!/usr/bin/env python
"""Bench: the server time of each main page of a big project (100,000 messages over 40 days, 50,000 cases
with phone numbers, 1,000 mobile workers), rendered through Django's test client with the whole middleware
stack (session, login, the project access check), beside a bare view's time measured in the same run.

    .venv/bin/python bench/pages.py                       # SQLite in a temporary data dir
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/x .venv/bin/python bench/pages.py

On PostgreSQL the script creates a fresh database `casemsg_bench_pages` on the same server (dropped at
the end). Goal (issue 11): every page < 200 ms server time. Each figure is the median of --runs requests
after one warm-up; the query count of the last request is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._database import fresh_database  # noqa: E402

BENCH_DB = "casemsg_bench_pages"
GOAL_MS = 200.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", action="store_true", help="keep the bench database / data dir")
    args = ap.parse_args()
    cleanup, _pg = fresh_database(BENCH_DB)
    try:
        _run(args)
    finally:
        if not args.keep:
            cleanup()


def _run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.http import HttpResponse
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.urls import NoReverseMatch, include, path, reverse
    from django.utils import timezone

    from casemsg.cases import services as cases
    from casemsg.cases.models import Case
    from casemsg.consent.models import ConsentRecord
    from casemsg.contacts.models import OptOut
    from casemsg.gateways import services as gateways
    from casemsg.messaging.models import Message
    from casemsg.projects.services import add_member, create_project
    from casemsg.workers import services as workers
    from casemsg.workers.models import MobileWorker

    call_command("migrate", verbosity=0)
    print(f"database: {'PostgreSQL' if settings.IS_POSTGRES else 'SQLite'} ({connection.settings_dict['NAME']})")
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    project, _key = create_project("big", "Big program", time_zone="Africa/Nairobi")
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")

    # cases through the bulk path (phone registry included), in its batch size
    changes = [
        cases.CaseChange(
            case_id=f"c-{i:06d}",
            case_type="mother",
            name=f"Case {i}",
            properties={"contact_phone_number": f"2547{10_000_000 + i:08d}", "district": f"d{i % 40}"},
        )
        for i in range(args.cases)
    ]
    for start in range(0, len(changes), cases.MAX_BULK):
        cases.bulk_upsert(project, changes[start : start + cases.MAX_BULK])
    case_pks = list(Case.objects.filter(project=project).values_list("pk", flat=True))
    for i in range(args.workers):  # through the service: it registers the numbers (seeding only, not timed)
        workers.create_worker(
            project,
            workers.WorkerChange(username=f"fw{i}", name=f"Worker {i}", phone_numbers=[f"2547{20_000_000 + i}"]),
        )
    now = timezone.now()
    statuses = [Message.DELIVERED] * 6 + [Message.SENT] * 2 + [Message.FAILED, Message.QUEUED]
    errors = ["NO_CONSENT", "INVALID_PHONE_NUMBER", "PHONE_OPTED_OUT", "GATEWAY_ERROR"]
    batch: list[Message] = []
    for i in range(args.messages):
        inbound = rng.random() < 0.15
        status = Message.RECEIVED if inbound else rng.choice(statuses)
        pk = rng.choice(case_pks)
        batch.append(
            Message(
                project=project,
                case_id=pk,
                direction=Message.IN if inbound else Message.OUT,
                to=f"2547{10_000_000 + pk % args.cases:08d}",
                text=f"Message {i}: please come to the clinic on Friday",
                status=status,
                error=rng.choice(errors) if status == Message.FAILED else "",
                segments=1,
                created_on=now - timedelta(seconds=rng.randrange(40 * 86400)),
            )
        )
        if len(batch) == 5000:
            Message.objects.bulk_create(batch)
            batch = []
    Message.objects.bulk_create(batch)
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                phone_number=f"2547{10_000_000 + i:08d}",
                project=project,
                kind=rng.choice(["consent", "opt_out", "opt_in", "refusal"]),
                source="api",
                created_on=now - timedelta(days=rng.randrange(60)),
            )
            for i in range(5000)
        ],
        batch_size=1000,
    )
    OptOut.objects.bulk_create(
        [OptOut(phone_number=f"2547{10_000_000 + i:08d}", opted_out_on=now) for i in range(0, args.cases, 50)]
    )
    if settings.IS_POSTGRES:
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    print(
        f"data: {Message.objects.count():,} messages, {Case.objects.count():,} cases, "
        f"{MobileWorker.objects.count():,} workers in {time.perf_counter() - t0:.0f} s"
    )

    user = get_user_model().objects.create_user("officer", password="pw-officer-1")
    add_member(project, user, "owner")
    client = Client(SERVER_NAME="localhost")  # an allowed host outside pytest
    client.force_login(user)

    # The floor: a view that does nothing, behind the same middleware (session, login, CSRF, htmx …).
    def bare(request):  # noqa: ANN001, ANN202
        return HttpResponse("ok")

    class Urls:
        urlpatterns = [path("bench-floor/", bare), path("", include("casemsg.urls"))]

    slug, case_id = project.slug, "c-000123"
    worker_id = MobileWorker.objects.filter(project=project).order_by("pk").values_list("pk", flat=True).first()
    wanted: list[tuple[str, dict[str, object], str]] = [
        ("home", {}, ""),
        ("project", {"slug": slug}, ""),
        ("cases", {"slug": slug}, ""),
        ("cases", {"slug": slug}, "?q=Case 4999"),
        ("case", {"slug": slug, "case_id": case_id}, ""),
        ("workers", {"slug": slug}, ""),
        ("worker", {"slug": slug, "worker_id": worker_id}, ""),
        ("messages", {"slug": slug}, ""),
        ("messages", {"slug": slug}, "?status=failed"),
        ("messages", {"slug": slug}, "?q=254710000123"),
        ("simulator", {"slug": slug}, ""),
        ("consents", {"slug": slug}, ""),
        ("keywords", {"slug": slug}, ""),
        ("gateways", {"slug": slug}, ""),
        ("routes", {"slug": slug}, ""),
        ("settings", {"slug": slug}, ""),
        ("api_keys", {"slug": slug}, ""),
        ("members", {"slug": slug}, ""),
        ("broadcasts", {"slug": slug}, ""),
        ("alerts", {"slug": slug}, ""),
        ("surveys", {"slug": slug}, ""),
    ]

    def timed(url: str) -> tuple[float, int, int]:
        client.get(url)  # warm-up
        times = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as q:
                t = time.perf_counter()
                r = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times), len(q.captured_queries), r.status_code

    with override_settings(ROOT_URLCONF=Urls):
        floor, _n, _s = timed("/bench-floor/")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}   (2 cores shared)")
        print(f"floor (bare view, same middleware): {floor:.1f} ms")
        scan = []
        for _ in range(args.runs):
            t = time.perf_counter()
            Message.objects.filter(project=project, created_on__gte=now - timedelta(days=30)).count()
            scan.append((time.perf_counter() - t) * 1000)
        print(f"database floor (COUNT of the project's messages of 30 days): {statistics.median(scan):.1f} ms\n")
        print(f"{'page':<44}{'ms':>8}{'x floor':>9}{'queries':>9}  status")
        slow = []
        for name, kwargs, query in wanted:
            try:
                url = reverse(f"web:{name}", kwargs=kwargs) + query
            except NoReverseMatch:
                print(f"{name:<44}{'—':>8}   (no such page in this tree)")
                continue
            ms, queries, status = timed(url)
            flag = "" if ms < GOAL_MS and status == 200 else "  <-- over goal" if status == 200 else ""
            print(f"{url[:43]:<44}{ms:>8.1f}{ms / floor:>9.0f}{queries:>9}  {status}{flag}")
            if ms >= GOAL_MS or status != 200:
                slow.append(url)
    print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"goal < {GOAL_MS:.0f} ms per page: {'met' if not slow else 'MISSED for ' + ', '.join(slow)}")
    sys.exit(1 if slow else 0)


if __name__ == "__main__":
    main()
