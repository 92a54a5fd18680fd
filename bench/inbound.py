"""Inbound webhooks under load: a real `casemsg serve` (gunicorn + worker) receives Twilio-format inbound
SMS, signed with X-Twilio-Signature, from this separate process at a fixed rate; each one is a keyword
("CLINIC hours?") from a distinct registered contact, whose reply goes out through the Twilio gateway to
a fake Twilio on 127.0.0.1.

    .venv/bin/python bench/inbound.py                          # embedded: SQLite + SqliteHuey
    .venv/bin/python bench/inbound.py --rate 300 --seconds 60  # the issue's load
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    CASEMSG_QUEUE_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/inbound.py

Prints the webhook latency (p50/p90/p99/max, from the moment each request is sent to its answer),
errors, and then checks in the database that every webhook was stored once and produced exactly one
keyword reply, sent to the fake provider; also how long replies took (webhook → reply sent).
Goal: p99 ≤ 50 ms, no errors.

Also printed: the CPU the web and worker processes used (this machine has 2 cores, shared with
whatever else runs: the load average is printed too) — a figure that does not depend on the rest of the
machine the way latency does.

On PostgreSQL a scratch database `casemsg_bench_inbound` is created and dropped; the Redis queue uses
its own database number (--redis-db, default 4), flushed at the start. On SQLite a temporary data
directory is used (kept with --keep).

Other options: --web-workers N (gunicorn processes, default 2); --threads N (start gunicorn with N
threads and `casemsg worker` separately instead of `casemsg serve`); --no-worker (the webhook alone).
What-if options, which do not change casemsg's code: --conn-max-age N (persistent database connections,
through a settings shim in the temporary directory), --nice-worker N (with --threads: the worker at a
lower CPU priority than the web).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_DB = "casemsg_bench_inbound"
KEYWORD_REPLY = "The clinic is open 8:00-17:00, Monday to Saturday."


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
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"casemsg did not answer at {url}")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=300.0, help="webhooks per second (default 300)")
    ap.add_argument("--seconds", type=float, default=20.0, help="how long (default 20; the issue asks 60)")
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    ap.add_argument("--serve-workers", type=int, default=0, help="worker processes of `casemsg serve` (its default)")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="run gunicorn directly with this many threads per worker, plus `casemsg worker` "
        "(default: `casemsg serve`, 4 threads)",
    )
    ap.add_argument(
        "--conn-max-age",
        type=int,
        default=None,
        help="what-if: run casemsg with DATABASES CONN_MAX_AGE set to this (a settings shim in the "
        "temporary directory; casemsg's own settings are not changed)",
    )
    ap.add_argument(
        "--nice-worker",
        type=int,
        default=0,
        help="what-if (with --threads): run the worker at this nice level, so webhooks get the CPU first",
    )
    ap.add_argument("--redis-db", type=int, default=4, help="Redis database number for the bench's queue")
    ap.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to wait for all replies")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    ap.add_argument(
        "--no-worker",
        action="store_true",
        help="web only (no worker): the webhook's own latency; replies are then not checked",
    )
    args = ap.parse_args()
    n = int(args.rate * args.seconds)

    env = os.environ.copy()
    tmp = tempfile.mkdtemp(prefix="casemsg-bench-inbound-")
    env["CASEMSG_DATA_DIR"] = tmp
    env["CASEMSG_QUEUE_IMMEDIATE"] = "0"
    env["DJANGO_SETTINGS_MODULE"] = "casemsg.settings"
    env["CASEMSG_GATEWAY_ALLOW_PRIVATE"] = "1"  # the fake provider listens on 127.0.0.1
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
    if args.conn_max_age is not None:
        Path(tmp, "bench_settings.py").write_text(
            "from casemsg.settings import *  # noqa: F403\n"
            f"DATABASES['default']['CONN_MAX_AGE'] = {args.conn_max_age}  # noqa: F405\n"
        )
        env["DJANGO_SETTINGS_MODULE"] = "bench_settings"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tmp, str(ROOT), env.get("PYTHONPATH")]))
        sys.path.insert(0, tmp)
    os.environ.update(env)

    # --- set up through the CLI: migrate, a project, a Twilio gateway at the fake provider ----------
    from tests.servers.fake_gateways import FakeGatewayProcess

    fake = FakeGatewayProcess("twilio", lean=True).start()
    config = fake.gateway_config()

    def cli(*a: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "casemsg", *a], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    cli("migrate", "-v", "0")
    import json

    cli("project", "create", "bench", "--name", "Inbound bench", "--json")
    import django

    django.setup()
    from django.db import connection

    from casemsg.cases import services as cases
    from casemsg.gateways import services as gateways
    from casemsg.inbound.models import Keyword
    from casemsg.messaging.models import Message
    from casemsg.projects.models import Project

    cli("gateway", "add", "tw", "--type", "twilio", "--project", "bench", "--config", json.dumps(config))
    cli("gateway", "map", "*", "tw", "--project", "bench")
    project = Project.objects.get(slug="bench")
    Keyword.objects.create(project=project, keyword="CLINIC", reply={"en": KEYWORD_REPLY})
    # one registered, verified contact per webhook: each reply goes to a distinct number (as in real
    # traffic; the loop guard would rightly stop 18,000 identical replies to one number)
    t = time.perf_counter()
    for start in range(0, n, 1000):
        cases.bulk_upsert(
            project,
            [
                cases.CaseChange(
                    case_type="patient",
                    name=f"Patient {i}",
                    properties={"contact_phone_number": number(i), "contact_phone_number_is_verified": "1"},
                )
                for i in range(start, min(n, start + 1000))
            ],
        )
    print(f"setup: {n:,} verified cases in {time.perf_counter() - t:.1f} s")
    gw = gateways.Gateway.objects.get(name="tw")
    token = gw.config["auth_token"]
    connection.close()

    # --- casemsg itself, as deployed: `casemsg serve` = gunicorn + a worker ---------------------------
    port = free_port()
    if args.threads:
        # gunicorn and the worker started separately (the scale-out layout), with a chosen thread count
        gunicorn = [
            sys.executable,
            "-m",
            "gunicorn",
            "casemsg.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ]
        server = subprocess.Popen(gunicorn, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
        nice = ["nice", "-n", str(args.nice_worker)] if args.nice_worker else []
        worker = (
            None
            if args.no_worker
            else subprocess.Popen(
                [*nice, sys.executable, "-m", "casemsg", "worker"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    else:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "casemsg",
                "serve",
                "--port",
                str(port),
                "--web-workers",
                str(args.web_workers),
                *(["--workers", str(args.serve_workers)] if args.serve_workers else []),
                *(["--no-worker"] if args.no_worker else []),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        worker = None
    base = f"http://127.0.0.1:{port}"
    url = base + gateways.inbound_url(gw)
    try:
        wait_http(base + "/api/v1/errors")

        # the webhooks, prepared before the clock starts: Twilio's form and its signature
        from twilio.request_validator import RequestValidator

        validator = RequestValidator(token)
        bodies, sigs = [], []
        for i in range(n):
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
                "AccountSid": config["account_sid"],
                "From": "+" + number(i),
                "ApiVersion": "2010-04-01",
            }
            bodies.append(urlencode(fields).encode())
            sigs.append(validator.compute_signature(url, fields))
        # warm up every gunicorn worker (not counted)
        for _ in range(20):
            urllib.request.urlopen(base + "/api/v1/errors", timeout=5).read()

        print(f"driving {n:,} webhooks at {args.rate:g}/s for {args.seconds:g} s ...")
        roots = [p.pid for p in (server, worker) if p is not None]
        cpu0 = {k: v for r in roots for k, v in tree_cpu(r).items()}
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        latencies, errors, lag = asyncio.run(drive(url, bodies, sigs, args.rate))
        load_time = time.perf_counter() - t0
        cpu1 = {k: v for r in roots for k, v in tree_cpu(r).items()}
        web_cpu = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items() if "gunicorn" in cmdline(k))
        worker_cpu = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items() if cmdline(k).endswith("casemsg worker "))
        load1 = os.getloadavg()[0]

        # --- every webhook → one stored message → one keyword reply, sent ------------------------------
        t1 = time.perf_counter()
        while True:
            waiting = Message.objects.filter(direction="in", next_attempt_on__isnull=False).count()
            unsent = Message.objects.filter(direction="out", status__in=["queued", "sending"]).count()
            replies = Message.objects.filter(direction="out").count()
            if (
                (waiting == 0 and unsent == 0 and replies >= n)
                or time.perf_counter() - t1 > args.drain_timeout
                or args.no_worker
            ):
                break
            time.sleep(0.5)
        drain = time.perf_counter() - t1
        inbound = Message.objects.filter(direction="in").count()
        by_status: dict[str, int] = {}
        for s in Message.objects.filter(direction="out").values_list("status", flat=True):
            by_status[s] = by_status.get(s, 0) + 1
        failed: dict[str, int] = {}
        for e in Message.objects.filter(direction="out", status="failed").values_list("error", flat=True):
            failed[e] = failed.get(e, 0) + 1
        wrong_text = Message.objects.filter(direction="out").exclude(text=KEYWORD_REPLY).count()
        handled = Message.objects.filter(direction="in", case__isnull=False, error_detail="").count()
        provider = fake.stats()
        reply_lags = []
        rows = Message.objects.filter(direction="out", status="sent").values_list("event__source_id", "sent_on")
        received = dict(Message.objects.filter(direction="in").values_list("pk", "created_on"))
        for src, sent_on in rows:
            created = received.get(int(src)) if src else None
            if created is not None and sent_on is not None:
                reply_lags.append((sent_on - created).total_seconds())
    finally:
        for proc in (server, worker):
            if proc is None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        fake.stop()
        connection.close()
        if admin is not None:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    ms = [x * 1000 for x in latencies]
    db = "PostgreSQL" if pg_url else "SQLite"
    queue = "Redis" if queue_url.startswith("redis") else "SqliteHuey"
    ok = len(ms) - sum(v for k, v in errors.items() if k.startswith("HTTP"))
    layout = (
        f"gunicorn {args.web_workers} workers × {args.threads} threads + casemsg worker"
        if args.threads
        else f"casemsg serve: gunicorn {args.web_workers} workers × 4 threads + 1 worker"
    )
    what_if = "" if args.conn_max_age is None else f"; what-if CONN_MAX_AGE={args.conn_max_age}"
    what_if += f"; what-if worker nice {args.nice_worker}" if args.nice_worker and args.threads else ""
    print(f"\n{db} + {queue}; {layout}{what_if}")
    print(
        f"webhooks: {n:,} sent in {load_time:.1f} s ({n / load_time:,.0f}/s achieved, client lag max "
        f"{lag * 1000:.1f} ms); answered 200: {ok:,}; errors: {sum(errors.values())} {errors or ''}"
    )
    if ms:
        print(
            f"webhook latency: p50 {pct(ms, 50):.1f} ms, p90 {pct(ms, 90):.1f} ms, p99 {pct(ms, 99):.1f} ms, "
            f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms"
        )
    print(
        f"CPU during the load: web {web_cpu / n * 1000:.2f} ms per webhook ({web_cpu / load_time:.2f} cores), "
        f"worker {worker_cpu / load_time:.2f} cores; machine load average {load0:.1f} → {load1:.1f} "
        f"on {os.cpu_count()} CPUs (other processes compete)"
    )
    print(f"stored inbound messages: {inbound:,} (expected {n:,}); routed to their case and handled: {handled:,}")
    print(
        f"keyword replies: {sum(by_status.values()):,} {by_status}; failed: {failed or 0}; "
        f"wrong text: {wrong_text}; fake Twilio accepted: {provider.get('accepted')}"
    )
    if reply_lags:
        print(
            f"webhook → reply sent: p50 {pct(reply_lags, 50) * 1000:.0f} ms, p99 {pct(reply_lags, 99) * 1000:.0f} "
            f"ms (all replies sent {drain:.1f} s after the load ended)"
        )
    p99 = pct(ms, 99) if ms else float("inf")
    replied = by_status.get("sent", 0) == n and provider.get("accepted") == n
    good = not errors and inbound == n and p99 <= 50 and (replied or args.no_worker)
    goal = "goal p99 ≤ 50 ms, no errors" + ("" if args.no_worker else ", every webhook answered by one sent reply")
    print(f"{goal}: {'MET' if good else 'MISSED'}")
    if args.keep:
        print(f"data directory kept: {tmp}")
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
