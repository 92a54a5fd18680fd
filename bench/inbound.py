"""Inbound at scale: the webhook's CPU against a bare Django view, the worker's processing rate on a
backlog, and webhook and reply latency under a steady load. Real processes throughout: gunicorn serving
casemsg (as `casemsg serve` starts it), Twilio-format inbound SMS signed with X-Twilio-Signature sent
from this process over HTTP, replies sent through the Twilio gateway to a fake Twilio on 127.0.0.1.

    .venv/bin/python bench/inbound.py                          # embedded: SQLite + SqliteHuey
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    CASEMSG_QUEUE_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/inbound.py

Three phases (--phases to choose):

1. **cpu** — the floor first: a bare Django view that this script writes into its temporary directory
   (no middleware, one URL; it parses the same form, checks the same Twilio HMAC with the same library
   and inserts one row into the same message table with one INSERT), served by the same gunicorn command
   (workers, threads, config) as casemsg. Then casemsg's own webhook (`casemsg serve --no-worker`). Each
   gets --rate signed webhooks per second for --cpu-seconds; the web processes' CPU per request is read
   from /proc. Goal: casemsg ≤ 1.5× the floor.
2. **backlog** — --backlog (50,000) waiting inbound messages, each a keyword ("CLINIC hours?") from a
   distinct registered contact, handled by one worker process (this one, running the inbound job's body
   `router.process_due()` on one thread): routed, keyword matched, reply queued. Goal: ≥ 1,000 msg/s.
3. **latency** — `casemsg serve` (web + one worker) at a rate this machine sustains with headroom: the
   floor's rate on one core (1 / its CPU per request) × 0.5, or --latency-rate. Goal: webhook p99 ≤ 50 ms
   and reply sent ≤ 1 s (p99) after its webhook arrived, every webhook answered by one sent reply.

The machine's load average is printed with each phase (other processes compete for its cores). On
PostgreSQL a scratch database `casemsg_bench_inbound` is created and dropped; the Redis queue uses its
own database number (--redis-db, default 4), flushed at the start. On SQLite a temporary data directory
is used (kept with --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_DB = "casemsg_bench_inbound"
KEYWORD_REPLY = "The clinic is open 8:00-17:00, Monday to Saturday."
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# --- the floor: a bare Django view, written into the temporary directory -----------------------------
FLOOR_SETTINGS = """
from casemsg.settings import *  # noqa: F403
MIDDLEWARE = []
ROOT_URLCONF = "bench_floor_urls"
"""
FLOOR_WSGI = """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "bench_floor_settings"
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
"""
FLOOR_URLS = (
    '''
"""The floor: parse the form, check Twilio's HMAC, insert one row, answer. Nothing else."""
import os

from django.db import connection
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from twilio.request_validator import RequestValidator

from casemsg.messaging.models import Message

VALIDATOR = RequestValidator(os.environ["BENCH_FLOOR_AUTH_TOKEN"])
GATEWAY = int(os.environ["BENCH_FLOOR_GATEWAY"])
FIELDS = [f for f in Message._meta.concrete_fields if not f.primary_key]
SQL = "INSERT INTO {table} ({columns}) VALUES ({marks})".format(
    table=connection.ops.quote_name(Message._meta.db_table),
    columns=", ".join(connection.ops.quote_name(f.column) for f in FIELDS),
    marks=", ".join(["%s"] * len(FIELDS)),
)
_defaults = None


def inbound(request, name, key):
    global _defaults
    form = request.POST
    if not VALIDATOR.validate(request.build_absolute_uri(), form, request.headers.get("X-Twilio-Signature", "")):
        return HttpResponse("", status=403)
    if _defaults is None:
        _defaults = {f.attname: f.get_db_prep_save(f.get_default(), connection) for f in FIELDS}
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    row = dict(_defaults)
    row.update(
        direction="in", status="received", to=form.get("From", "").lstrip("+"), text=form.get("Body", ""),
        provider_id=form.get("MessageSid", ""), gateway_id=GATEWAY, created_on=now, sent_on=now,
        next_attempt_on=now,
    )
    with connection.cursor() as cur:
        cur.execute(SQL, [row[f.attname] for f in FIELDS])
    return HttpResponse(\''''
    + TWIML
    + """\', content_type="text/xml")


urlpatterns = [path("floor/<str:name>/<str:key>/inbound", inbound)]
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
    return values[k]


def number(i: int) -> str:
    return f"254711{i:06d}"  # Kenya, valid mobile numbers: one-way needs no consent


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


def tree_cpu(root_pid: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by a process and its descendants, per pid."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(d)] = fields
        children.setdefault(int(fields[1]), []).append(int(d))
    out: dict[int, float] = {}
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = (int(stats[pid][11]) + int(stats[pid][12])) / tick
        todo += children.get(pid, [])
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no answer at {url}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- the load: a fixed rate, open loop (a slow answer does not delay the next request) -------------
async def drive(url: str, bodies: list[bytes], signatures: list[str], rate: float) -> tuple[list[float], dict, float]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    lag = 0.0
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: bytes, sig: str) -> None:
            t = time.perf_counter()
            try:
                async with session.post(url, data=body, headers={**headers, "X-Twilio-Signature": sig}) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            latencies.append(time.perf_counter() - t)
            if status != 200:
                errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1

        tasks = []
        start = time.perf_counter() + 0.05
        for i, (body, sig) in enumerate(zip(bodies, signatures, strict=True)):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag = max(lag, -delay)
            tasks.append(asyncio.create_task(one(body, sig)))
        await asyncio.gather(*tasks)
    return latencies, errors, lag


class Webhooks:
    """Signed Twilio inbound webhooks, prepared before the clock starts."""

    def __init__(self, token: str, account_sid: str):
        from twilio.request_validator import RequestValidator

        self.validator = RequestValidator(token)
        self.account_sid = account_sid

    def make(self, url: str, senders: range) -> tuple[list[bytes], list[str]]:
        bodies, sigs = [], []
        for i in senders:
            sid = "SM" + uuid.uuid4().hex
            fields = {
                "ToCountry": "KE",
                "SmsMessageSid": sid,
                "NumMedia": "0",
                "SmsSid": sid,
                "SmsStatus": "received",
                "Body": "CLINIC hours?",
                "To": "+254700000000",
                "NumSegments": "1",
                "MessageSid": sid,
                "AccountSid": self.account_sid,
                "From": "+" + number(i),
                "ApiVersion": "2010-04-01",
            }
            bodies.append(urlencode(fields).encode())
            sigs.append(self.validator.compute_signature(url, fields))
        return bodies, sigs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phases", default="cpu,backlog,latency", help="which phases (default all three)")
    ap.add_argument("--rate", type=float, default=300.0, help="webhooks per second in the CPU phase (default 300)")
    ap.add_argument("--cpu-seconds", type=float, default=15.0, help="length of each CPU run (default 15)")
    ap.add_argument("--backlog", type=int, default=50_000, help="waiting messages in the backlog phase (50,000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the latency run (default 20)")
    ap.add_argument("--latency-rate", type=float, default=0.0, help="webhooks/s in the latency run (default: derived)")
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    ap.add_argument("--redis-db", type=int, default=4, help="Redis database number for the bench's queue")
    ap.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for all replies")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = ap.parse_args()
    phases = set(args.phases.split(","))

    env = os.environ.copy()
    tmp = tempfile.mkdtemp(prefix="casemsg-bench-inbound-")
    env["CASEMSG_DATA_DIR"] = tmp
    env["CASEMSG_QUEUE_IMMEDIATE"] = "0"
    env["DJANGO_SETTINGS_MODULE"] = "casemsg.settings"
    env["CASEMSG_GATEWAY_ALLOW_PRIVATE"] = "1"  # the fake provider listens on 127.0.0.1
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tmp, str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTEST_VERSION", None)
    pg_url = env.get("CASEMSG_DATABASE_URL", "")
    admin = None
    if pg_url:
        import psycopg

        parts = urlsplit(pg_url)
        admin = psycopg.connect(pg_url, autocommit=True)
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_DB}")
        env["CASEMSG_DATABASE_URL"] = urlunsplit(parts._replace(path="/" + PG_DB))
    queue_url = env.get("CASEMSG_QUEUE_URL", "")
    if queue_url.startswith("redis://"):
        import redis

        parts = urlsplit(queue_url)
        env["CASEMSG_QUEUE_URL"] = urlunsplit(parts._replace(path=f"/{args.redis_db}"))
        redis.Redis.from_url(env["CASEMSG_QUEUE_URL"]).flushdb()
    os.environ.update(env)
    sys.path.insert(0, tmp)
    for name, text in [
        ("bench_floor_settings.py", FLOOR_SETTINGS),
        ("bench_floor_wsgi.py", FLOOR_WSGI),
        ("bench_floor_urls.py", FLOOR_URLS),
    ]:
        Path(tmp, name).write_text(text)

    from fakes.gateways import FakeGatewayProcess

    fake = FakeGatewayProcess("twilio", lean=True).start()
    config = fake.gateway_config()

    def cli(*a: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "casemsg", *a], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    cli("migrate", "-v", "0")
    cli("project", "create", "bench", "--name", "Inbound bench", "--json")
    import django

    django.setup()
    from django.db import connection

    from casemsg.cases import services as cases
    from casemsg.core import bulk
    from casemsg.gateways import services as gateways
    from casemsg.inbound import router
    from casemsg.inbound.models import Keyword
    from casemsg.messaging.models import Message, MessagingEvent
    from casemsg.projects.models import Project

    cli("gateway", "add", "tw", "--type", "twilio", "--project", "bench", "--config", json.dumps(config))
    cli("gateway", "map", "*", "tw", "--project", "bench")
    project = Project.objects.get(slug="bench")
    Keyword.objects.create(project=project, keyword="CLINIC", reply={"en": KEYWORD_REPLY})
    gw = gateways.Gateway.objects.get(name="tw")
    hooks = Webhooks(gw.config["auth_token"], config["account_sid"])
    env["BENCH_FLOOR_AUTH_TOKEN"], env["BENCH_FLOOR_GATEWAY"] = gw.config["auth_token"], str(gw.pk)
    db = "PostgreSQL" if pg_url else "SQLite"
    queue = "Redis" if queue_url.startswith("redis") else "SqliteHuey"
    print(f"{db} + {queue}; gunicorn {args.web_workers} workers × 4 threads (as `casemsg serve`); {load()}")

    def clear() -> None:
        Message.objects.all().delete()
        MessagingEvent.objects.all().delete()

    n_contacts = max(args.backlog if "backlog" in phases else 0, 1)
    t = time.perf_counter()
    for start in range(0, n_contacts, 1000):
        cases.bulk_upsert(
            project,
            [
                cases.CaseChange(
                    case_type="patient",
                    name=f"Patient {i}",
                    properties={"contact_phone_number": number(i), "contact_phone_number_is_verified": "1"},
                )
                for i in range(start, min(n_contacts, start + 1000))
            ],
        )
    print(f"setup: {n_contacts:,} registered, verified contacts in {time.perf_counter() - t:.1f} s")
    connection.close()

    def gunicorn(app: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            "127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--threads",
            "4",
            "--log-level",
            "warning",
            "--config",
            "python:casemsg.ops.gunicorn_conf",
        ]

    def serve(command: list[str], ready_path: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        command = [c.replace("{port}", str(port)) for c in command]
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + ready_path)
        return proc, base

    def warm(url: str) -> None:
        for _ in range(20):  # every gunicorn worker loads its code (not counted)
            try:
                urllib.request.urlopen(url, timeout=5).read()
            except urllib.error.HTTPError:
                pass

    def cpu_run(proc: subprocess.Popen, url: str, senders: range, rate: float) -> tuple[float, list[float], dict]:
        bodies, sigs = hooks.make(url, senders)
        cpu0 = tree_cpu(proc.pid)
        latencies, errors, _lag = asyncio.run(drive(url, bodies, sigs, rate))
        cpu1 = tree_cpu(proc.pid)
        web = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items() if "gunicorn" in cmdline(k))
        return web / len(bodies), latencies, errors

    summary: list[str] = []
    floor_ms = 0.0
    fail = False
    try:
        # --- 1. webhook CPU: the floor, then casemsg, at the same rate ---------------------------------
        if "cpu" in phases or ("latency" in phases and not args.latency_rate):
            n = int(args.rate * args.cpu_seconds)
            proc, base = serve(gunicorn("bench_floor_wsgi:application"), "/floor/x/y/inbound")
            warm(base + "/floor/x/y/inbound")
            floor_cpu, floor_lat, floor_err = cpu_run(proc, base + "/floor/tw/key/inbound", range(n), args.rate)
            stop(proc)
            floor_ms = floor_cpu * 1000
            print(
                f"floor (bare Django view: form, HMAC, one INSERT): {floor_ms:.2f} ms CPU per webhook at "
                f"{args.rate:g}/s; p99 {pct(floor_lat, 99) * 1000:.1f} ms; errors {floor_err or 0}; {load()}"
            )
        if "cpu" in phases:
            proc, base = serve(
                [sys.executable, "-m", "casemsg", "serve", "--port", "{port}", "--web-workers", str(args.web_workers)]
                + ["--no-worker"],
                "/api/v1/errors",
            )
            warm(base + "/api/v1/errors")
            url = base + gateways.inbound_url(gw)
            web_cpu, web_lat, web_err = cpu_run(proc, url, range(n, 2 * n), args.rate)
            stop(proc)
            ratio = web_cpu * 1000 / floor_ms
            stored = Message.objects.filter(direction="in", gateway=gw, created_on__isnull=False).count()
            line = (
                f"webhook CPU: casemsg {web_cpu * 1000:.2f} ms per webhook vs floor {floor_ms:.2f} ms = "
                f"{ratio:.2f}× (goal ≤ 1.5×) at {args.rate:g}/s; casemsg p99 {pct(web_lat, 99) * 1000:.1f} ms; "
                f"errors {web_err or 0}; stored {stored:,} of {2 * n:,} (floor and casemsg); {load()}"
            )
            missed = ratio > 1.5 or bool(web_err)
            line += f" — {verdict(missed)}"
            print(line)
            summary.append(line)
            fail |= missed
        clear()
        connection.close()

        # --- 2. the backlog: one worker process handles 50,000 waiting messages -------------------------
        if "backlog" in phases:
            now = time.time()
            from django.utils import timezone

            at = timezone.now()
            rows = [
                {
                    "project_id": project.pk,
                    "direction": Message.IN,
                    "to": number(i),
                    "text": "CLINIC hours?",
                    "gateway_id": gw.pk,
                    "gateway_name": gw.name,
                    "provider_id": f"SM{i:032d}",
                    "status": Message.RECEIVED,
                    "created_on": at,
                    "sent_on": at,
                    "next_attempt_on": at,
                    "raw": {"content_type": "application/x-www-form-urlencoded", "query": "", "body": "x" * 380},
                }
                for i in range(args.backlog)
            ]
            for start in range(0, len(rows), 5000):
                bulk.insert_rows(Message, rows[start : start + 5000])
            connection.close()
            print(f"backlog: {args.backlog:,} waiting inbound messages stored in {time.time() - now:.1f} s; {load()}")
            load0 = os.getloadavg()[0]
            c0, t0 = time.process_time(), time.perf_counter()
            handled = router.process_due()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            replies = Message.objects.filter(direction="out", status="queued", priority=Message.REPLY).count()
            routed = Message.objects.filter(direction="in", case__isnull=False, error_detail="", claim="").count()
            rate = handled / elapsed
            line = (
                f"inbound processing, 1 worker process: {handled:,} messages routed + keyword + reply queued in "
                f"{elapsed:.1f} s = {rate:,.0f} msg/s (goal ≥ 1,000), {cpu / handled * 1000:.2f} ms CPU each in "
                f"the worker; replies queued {replies:,}, routed to their case {routed:,}; load average "
                f"{load0:.1f} → {os.getloadavg()[0]:.1f}"
            )
            missed = rate < 1000 or replies != args.backlog or routed != args.backlog
            line += f" — {verdict(missed)}"
            print(line)
            summary.append(line)
            fail |= missed
            clear()
            connection.close()

        # --- 3. latency at the floor's rate on one core × 0.5 -------------------------------------------
        if "latency" in phases:
            rate = args.latency_rate or round(1000 / floor_ms * 0.5)
            how = (
                "--latency-rate"
                if args.latency_rate
                else f"the floor's rate on one core ({1000 / floor_ms:.0f}/s) × 0.5"
            )
            n = int(rate * args.seconds)
            if n > n_contacts:
                t = time.perf_counter()
                for start in range(n_contacts, n, 1000):
                    cases.bulk_upsert(
                        project,
                        [
                            cases.CaseChange(
                                case_type="patient",
                                name=f"Patient {i}",
                                properties={
                                    "contact_phone_number": number(i),
                                    "contact_phone_number_is_verified": "1",
                                },
                            )
                            for i in range(start, min(n, start + 1000))
                        ],
                    )
                connection.close()
            proc, base = serve(
                [sys.executable, "-m", "casemsg", "serve", "--port", "{port}", "--web-workers", str(args.web_workers)],
                "/api/v1/errors",
            )
            warm(base + "/api/v1/errors")
            url = base + gateways.inbound_url(gw)
            bodies, sigs = hooks.make(url, range(n))
            cpu0 = tree_cpu(proc.pid)
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            latencies, errors, lag = asyncio.run(drive(url, bodies, sigs, rate))
            load_time = time.perf_counter() - t0
            cpu1 = tree_cpu(proc.pid)
            web_cpu = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items() if "gunicorn" in cmdline(k))
            worker_cpu = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items() if cmdline(k).endswith("casemsg worker "))
            t1 = time.perf_counter()
            while time.perf_counter() - t1 < args.drain_timeout:
                sent = Message.objects.filter(direction="out", status="sent").count()
                if sent >= n:
                    break
                time.sleep(0.5)
            drain = time.perf_counter() - t1
            stop(proc)
            received = dict(Message.objects.filter(direction="in").values_list("pk", "created_on"))
            lags = []
            for src, sent_on in Message.objects.filter(direction="out", status="sent").values_list(
                "event__source_id", "sent_on"
            ):
                created = received.get(int(src)) if src else None
                if created is not None and sent_on is not None:
                    lags.append((sent_on - created).total_seconds())
            by_status: dict[str, int] = {}
            for s in Message.objects.filter(direction="out").values_list("status", flat=True):
                by_status[s] = by_status.get(s, 0) + 1
            wrong = Message.objects.filter(direction="out", status="sent").exclude(text=KEYWORD_REPLY).count()
            ms = [x * 1000 for x in latencies]
            p99, reply_p99 = pct(ms, 99), pct(lags, 99) * 1000
            line = (
                f"latency at {rate:g}/s ({how}) for {args.seconds:g} s: webhook p50 {pct(ms, 50):.1f} ms, "
                f"p99 {p99:.1f} ms (goal ≤ 50); reply sent after its webhook p50 {pct(lags, 50) * 1000:.0f} ms, "
                f"p99 {reply_p99:.0f} ms (goal ≤ 1,000); errors {sum(errors.values())} {errors or ''}; "
                f"client lag max {lag * 1000:.0f} ms; replies {by_status}, wrong text {wrong}; web "
                f"{web_cpu / load_time:.2f} cores, worker {worker_cpu / load_time:.2f} cores; load average "
                f"{load0:.1f} → {os.getloadavg()[0]:.1f}; all sent {drain:.1f} s after the load"
            )
            missed = p99 > 50 or reply_p99 > 1000 or bool(errors) or by_status.get("sent", 0) != n or bool(wrong)
            line += f" — {verdict(missed)}"
            print(line)
            summary.append(line)
            fail |= missed
    finally:
        fake.stop()
        connection.close()
        if admin is not None:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nsummary ({db} + {queue}):")
    for line in summary:
        print("  " + line)
    print(f"all goals: {'MET' if not fail else 'MISSED'}")
    sys.exit(1 if fail else 0)


def verdict(missed: bool) -> str:
    """Each goal's own verdict, on its line of the output and of the summary."""
    return "MISSED" if missed else "MET"


if __name__ == "__main__":
    main()
