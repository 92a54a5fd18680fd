#!/usr/bin/env python
"""Bench: the report pages (the messaging history by source, a broadcast's and an alert's delivery report and
their CSVs, the consent report) and the inbox, conversations and thread pages, over a project with 1,000,000
messages spread over 40 days (broadcasts, alerts, API calls, keyword and survey replies, people's replies,
received messages, a tenth failed), rendered through Django's test client with the whole middleware stack,
beside a bare view's time measured in the same run (the floor) and the load average.

    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/x .venv/bin/python bench/reports.py
    .venv/bin/python bench/reports.py --messages 100000          # a quicker run (SQLite without the URL)

On PostgreSQL the script works in a fresh database `casemsg_bench_reports` on the same server (dropped at the
end). The messages are written with COPY (SQLite: executemany), then the reports' roll-up counts the settled
days once, as a running worker does every minute (its time is printed); today and the hours of yesterday that
have not settled are counted live on every view. Goal (issue 18): every page < 300 ms server time, the median
of --runs requests after a warm-up. The export of the whole message log as CSV (every message) is streamed
and its peak memory printed: it must not grow with the rows. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._database import fresh_database  # noqa: E402

BENCH_DB = "casemsg_bench_reports"
GOAL_MS = 300.0
DAYS = 40
# What the outbound messages come from (share of them), and the statuses and errors they end in.
SOURCES = [("broadcast", 0.50), ("alert", 0.16), ("api", 0.08), ("keyword", 0.14), ("survey", 0.06), ("person", 0.03)]
SOURCES.append(("system", 1 - sum(share for _s, share in SOURCES)))
STATUSES = ["delivered"] * 6 + ["sent"] * 2 + ["failed", "queued"]
ERRORS = ["NO_CONSENT", "INVALID_PHONE_NUMBER", "PHONE_OPTED_OUT", "GATEWAY_ERROR", "LOOP_DETECTED"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--no-export", action="store_true", help="skip streaming the whole log as CSV")
    ap.add_argument("--keep", action="store_true", help="keep the bench database / data dir")
    args = ap.parse_args()
    cleanup, _pg = fresh_database(BENCH_DB)
    try:
        ok = _run(args)
    finally:
        if not args.keep:
            cleanup()
    sys.exit(0 if ok else 1)


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _run(args: argparse.Namespace) -> bool:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.http import HttpResponse
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django.urls import include, path
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from casemsg.cases import services as cases
    from casemsg.cases.models import Case
    from casemsg.consent.models import ConsentRecord
    from casemsg.gateways import services as gateways
    from casemsg.messaging import reports
    from casemsg.messaging.models import CountedDay, Message, MessagingEvent
    from casemsg.projects.services import add_member, create_project
    from casemsg.scheduling.models import Broadcast, ConditionalAlert

    call_command("migrate", verbosity=0)
    pg = settings.IS_POSTGRES
    print(f"database: {'PostgreSQL' if pg else 'SQLite'} ({connection.settings_dict['NAME']})")
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    project, _key = create_project("big", "Big program", time_zone="Africa/Nairobi")
    gw = gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    now = timezone.now()

    changes = [
        cases.CaseChange(
            case_id=f"c-{i:06d}",
            case_type="mother",
            name=f"Case {i}",
            properties={"contact_phone_number": f"2547{10_000_000 + i:08d}", "contact_phone_number_is_verified": "1"},
        )
        for i in range(args.cases)
    ]
    for start in range(0, len(changes), cases.MAX_BULK):
        cases.bulk_upsert(project, changes[start : start + cases.MAX_BULK])
    case_pks = list(Case.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))

    # the broadcasts and alerts (their rows and one event each), a few people, and the events of the rest
    owners: dict[str, list[int]] = {"broadcast": [], "alert": []}
    for i in range(20):
        b = Broadcast.objects.create(
            project=project, name=f"Broadcast {i}", content={"text": "Tip"}, created_on=now, modified_on=now
        )
        e = MessagingEvent.objects.create(project=project, source="broadcast", source_id=str(b.pk), description=b.name)
        Broadcast.objects.filter(pk=b.pk).update(event=e)
        owners["broadcast"].append(e.pk)
    for i in range(10):
        a = ConditionalAlert.objects.create(
            project=project, name=f"Alert {i}", case_type="mother", created_on=now, modified_on=now
        )
        e = MessagingEvent.objects.create(project=project, source="alert", source_id=str(a.pk), description=a.name)
        ConditionalAlert.objects.filter(pk=a.pk).update(event=e)
        owners["alert"].append(e.pk)
    people = [
        MessagingEvent.objects.create(
            project=project, source="person", source_id=f"officer{i}", description=f"Officer {i}"
        ).pk
        for i in range(5)
    ]
    # one event per API call, keyword reply, survey session and system message, as the areas make them
    many: dict[str, list[int]] = {}
    for source, n in (("api", 2000), ("keyword", 5000), ("survey", 2000), ("system", 1000)):
        MessagingEvent.objects.bulk_create(
            [MessagingEvent(project=project, source=source, description=source) for _ in range(n)], batch_size=2000
        )
        many[source] = list(MessagingEvent.objects.filter(project=project, source=source).values_list("pk", flat=True))
    events = {"broadcast": owners["broadcast"], "alert": owners["alert"], "person": people, **many}
    biggest_broadcast_event = owners["broadcast"][0]

    # the messages: one COPY (PostgreSQL) or executemany (SQLite)
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    defaults = {f.attname: f.get_default() for f in fields}
    cum, acc = [], 0.0
    for source, share in SOURCES:
        acc += share
        cum.append((acc, source))
    inbound_unhandled = 0

    def rows():  # noqa: ANN202
        nonlocal inbound_unhandled
        for i in range(args.messages):
            created = now - timedelta(seconds=rng.randrange(DAYS * 86400))
            pk = case_pks[rng.randrange(len(case_pks))]
            row = dict(defaults)
            row.update(project_id=project.pk, case_id=pk, to=f"2547{10_000_000 + pk % 100_000_000:08d}")
            row.update(created_on=created, gateway_id=gw.pk, gateway_name=gw.name, segments=1)
            if rng.random() < 0.15:
                row.update(direction="in", status="received", text=f"Reply {i}: when is my next visit?")
                if rng.random() < 0.2:
                    row["error_detail"] = "No keyword matched."
                    inbound_unhandled += 1
            else:
                r = rng.random()
                source = next(s for edge, s in cum if r <= edge)
                pool = events[source]
                # the first broadcast is the biggest: a fifth of the broadcasts' messages
                event = biggest_broadcast_event if source == "broadcast" and rng.random() < 0.2 else rng.choice(pool)
                status = rng.choice(STATUSES)
                row.update(event_id=event, status=status, text=f"Message {i}: please come to the clinic on Friday")
                if status == "failed":
                    row["error"] = rng.choice(ERRORS)
                if status in ("sent", "delivered"):
                    row["sent_on"] = created
            yield [_value(f, row[f.attname]) for f in fields]

    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}

    def _value(field, value):  # noqa: ANN001, ANN202
        if field.attname in json_fields:
            return Jsonb(value) if pg else json.dumps(value)
        return value

    with transaction.atomic():
        if pg:
            quoted = ", ".join(f'"{c}"' for c in columns)
            with connection.cursor() as cur:
                with cur.cursor.copy(f"COPY {Message._meta.db_table} ({quoted}) FROM STDIN") as copy:
                    for row in rows():
                        copy.write_row(row)
        else:
            marks = ", ".join("%s" for _ in columns)
            quoted = ", ".join(f'"{c}"' for c in columns)
            sql = f"INSERT INTO {Message._meta.db_table} ({quoted}) VALUES ({marks})"
            batch = []
            with connection.cursor() as cur:
                for row in rows():
                    batch.append(
                        [connection.ops.adapt_datetimefield_value(v) if hasattr(v, "tzinfo") else v for v in row]
                    )
                    if len(batch) == 5000:
                        cur.executemany(sql, batch)
                        batch = []
                if batch:
                    cur.executemany(sql, batch)
    with connection.cursor() as cur:  # the inbox: the received messages nothing handled
        cur.execute(
            "INSERT INTO inbound_inboxitem "
            "(project_id, message_id, case_id, worker_id, number, text, state, received_on, changed_by) "
            "SELECT project_id, id, case_id, worker_id, \"to\", text, 'open', created_on, '' FROM messaging_message "
            "WHERE direction = 'in' AND error_detail = 'No keyword matched.'"
        )
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                phone_number=f"2547{10_000_000 + i:08d}",
                project=project,
                kind=rng.choice(["consent", "opt_out", "opt_in", "refusal", "request"]),
                source=rng.choice(["survey", "keyword", "api", "page"]),
                created_on=now - timedelta(seconds=rng.randrange(DAYS * 86400)),
            )
            for i in range(20_000)
        ],
        batch_size=2000,
    )
    if pg:
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")  # (autocommit) the visibility map index-only scans read
    print(
        f"data: {Message.objects.filter(project=project).count():,} messages ({inbound_unhandled:,} in the inbox), "
        f"{len(case_pks):,} cases in {time.perf_counter() - t0:.0f} s"
    )

    user = get_user_model().objects.create_user("officer", password="pw-officer-1")
    add_member(project, user, "owner")
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)

    def bare(request):  # noqa: ANN001, ANN202
        return HttpResponse("ok")

    class Urls:
        urlpatterns = [path("bench-floor/", bare), path("", include("casemsg.urls"))]

    def timed(url: str, runs: int = args.runs) -> tuple[float, int, int]:
        client.get(url)  # warm-up
        times = []
        status = 0
        for _ in range(runs):
            with CaptureQueriesContext(connection) as q:
                t = time.perf_counter()
                r = client.get(url)
                if r.streaming:
                    b"".join(r.streaming_content)
                times.append((time.perf_counter() - t) * 1000)
                status = r.status_code
        return statistics.median(times), len(q.captured_queries), status

    slug = project.slug
    first_broadcast = Broadcast.objects.filter(project=project).order_by("pk").first()
    an_alert = ConditionalAlert.objects.filter(project=project).order_by("pk").first()
    writer = (
        Message.objects.filter(project=project, direction="in")
        .order_by("-pk")
        .values_list("case__case_id", flat=True)
        .first()
    )
    since_all = (reports.today(project) - timedelta(days=DAYS)).isoformat()
    pages = [
        ("history, the last 30 days", f"/projects/{slug}/reports/"),
        (f"history, all {DAYS + 1} days", f"/projects/{slug}/reports/?since={since_all}"),
        ("history as CSV", f"/projects/{slug}/reports/history.csv?since={since_all}&until={reports.today(project)}"),
        ("the biggest broadcast's delivery report", f"/projects/{slug}/reports/broadcasts/{first_broadcast.pk}/"),
        ("… as CSV", f"/projects/{slug}/reports/broadcasts/{first_broadcast.pk}/delivery.csv"),
        ("an alert's delivery report", f"/projects/{slug}/reports/alerts/{an_alert.pk}/"),
        ("consent and opt-outs", f"/projects/{slug}/reports/consent/"),
        ("the inbox", f"/projects/{slug}/inbox/"),
        ("the inbox, searched", f"/projects/{slug}/inbox/?q=visit"),
        ("conversations", f"/projects/{slug}/conversations/"),
        ("a thread", f"/projects/{slug}/conversations/{writer}/"),
    ]
    # not a report: the log pages every message of the project, and its COUNT of them all is its own floor
    informational = [("the message log (with its source column)", f"/projects/{slug}/messages/")]

    ok = True
    with override_settings(ROOT_URLCONF=Urls):
        floor, _n, _s = timed("/bench-floor/")
        cold, _n, _s = timed(pages[0][1], runs=1)
        t = time.perf_counter()
        counted = reports.roll_up(project, max_days=None)
        roll_up_s = time.perf_counter() - t
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}   (2 cores shared)")
        print(f"floor (bare view, same middleware): {floor:.1f} ms")
        scan = []
        for _ in range(args.runs):
            t = time.perf_counter()
            Message.objects.filter(project=project, created_on__gte=now - timedelta(days=30)).count()
            scan.append((time.perf_counter() - t) * 1000)
        print(f"database floor (COUNT of the project's messages of 30 days): {statistics.median(scan):.1f} ms")
        print(
            f"the roll-up (what a worker does once; then a day a day): {counted} days in {roll_up_s:.1f} s, "
            f"{CountedDay.objects.filter(project=project).count()} days counted"
        )
        print(f"history page with nothing rolled up yet (counted live): {cold:.0f} ms\n")
        print(f"{'page':<46}{'ms':>8}{'x floor':>9}{'queries':>9}  status")
        for name, url in pages:
            ms, queries, status = timed(url)
            miss = ms >= GOAL_MS or status != 200
            ok = ok and not miss
            flag = "  <-- over goal" if ms >= GOAL_MS else ("" if status == 200 else "  <-- not 200")
            print(f"{name[:45]:<46}{ms:>8.1f}{ms / floor:>9.0f}{queries:>9}  {status}{flag}")
        for name, url in informational:
            ms, queries, status = timed(url)
            print(f"{name[:45]:<46}{ms:>8.1f}{ms / floor:>9.0f}{queries:>9}  {status}  (no goal here: bench/pages.py)")

        if not args.no_export:
            gc.collect()
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass
            before = _rss_kb()
            Path("/proc/self/clear_refs").write_text("5")
            t = time.perf_counter()
            r = client.get(f"/projects/{slug}/messages.csv")
            size = lines = 0
            for chunk in r.streaming_content:
                size += len(chunk)
                lines += chunk.count(b"\n")
            took = time.perf_counter() - t
            extra = (_peak_kb() - before) / 1024
            print(
                f"\nthe whole log as CSV, streamed: {lines - 1:,} rows, {size / 1e6:.0f} MB in {took:.0f} s, "
                f"peak memory +{extra:.0f} MB"
            )
            if extra > 100:
                print("  <-- the export's memory grew with its rows")
                ok = False
    print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"goal < {GOAL_MS:.0f} ms per page over {args.messages:,} messages: {'met' if ok else 'NOT met'}")
    return ok


if __name__ == "__main__":
    main()
