"""Outbound throughput: N SMS queued to N contacts, sent through the `http` gateway to a fake gateway on
127.0.0.1 by real `casemsg worker` processes, end to end — against, in the same run and the same
server, the fastest bare HTTP client posting the same N requests.

    .venv/bin/python bench/outbound.py                   # embedded: SQLite + SqliteHuey
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    CASEMSG_QUEUE_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/outbound.py --workers 2

Options: --messages N (default 100000). On PostgreSQL a scratch database `casemsg_bench_outbound` is
created and dropped; on SQLite a temporary data directory is used. Prints messages/s, the bare client's
requests/s, the ratio (goal ≥ 0.40), and each worker's peak memory (it must not grow with N).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- the fake gateway: a minimal aiohttp server counting what it receives -------------------------
def fake_gateway(port: int, ready, counter) -> None:
    from aiohttp import web

    async def send(request: web.Request) -> web.Response:
        data = await request.post()
        with counter.get_lock():
            counter.value += 1
            n = counter.value
        return web.json_response({"id": f"fake-{n}", "to": data.get("to")})

    app = web.Application()
    app.router.add_post("/send", send)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def bare_client(url: str, n: int, concurrency: int = 64) -> float:
    """The floor: aiohttp posting the same form bodies as fast as it can."""
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as session:

        async def one(i: int) -> None:
            async with sem:
                async with session.post(url, data={"to": f"2547{i:08d}", "text": "Hello, your visit is due"}) as r:
                    await r.read()

        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - t)


def setup_db(env: dict) -> None:
    subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1, as `casemsg serve`)")
    ap.add_argument("--threads", type=int, default=1, help="consumer threads per worker (default 1, as worker)")
    args = ap.parse_args()
    n = args.messages

    env = os.environ.copy()
    tmp = tempfile.mkdtemp(prefix="casemsg-bench-")
    env["CASEMSG_DATA_DIR"] = tmp
    env["CASEMSG_QUEUE_IMMEDIATE"] = "0"
    env["CASEMSG_GATEWAY_ALLOW_PRIVATE"] = "1"  # the fake provider listens on 127.0.0.1
    pg_url = env.get("CASEMSG_DATABASE_URL", "")
    admin = None
    if pg_url:
        import psycopg

        base, _, _db = pg_url.rpartition("/")
        admin = psycopg.connect(pg_url, autocommit=True)
        admin.execute("DROP DATABASE IF EXISTS casemsg_bench_outbound")
        admin.execute("CREATE DATABASE casemsg_bench_outbound")
        env["CASEMSG_DATABASE_URL"] = f"{base}/casemsg_bench_outbound"
    if env.get("CASEMSG_QUEUE_URL", "").startswith("redis://"):
        import redis

        redis.Redis.from_url(env["CASEMSG_QUEUE_URL"]).flushdb()
    os.environ.update(env)
    setup_db(env)

    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "casemsg.settings"
    django.setup()
    from django.db import connection

    from casemsg.cases import services as cases
    from casemsg.gateways import services as gateways
    from casemsg.messaging import pipeline
    from casemsg.messaging.models import Message, MessagingEvent
    from casemsg.projects.services import create_project

    port = free_port()
    counter = mp.Value("l", 0)
    ready = mp.Event()
    server = mp.Process(target=fake_gateway, args=(port, ready, counter), daemon=True)
    server.start()
    ready.wait()
    time.sleep(0.5)
    url = f"http://127.0.0.1:{port}/send"

    floor = asyncio.run(bare_client(url, n))
    print(f"bare aiohttp client: {floor:,.0f} req/s ({n:,} requests)")

    project, _key = create_project("bench", "Bench")
    gateways.add_gateway("fake", "http", {"url": url, "provider_id_path": "id"})
    gateways.map_prefix("*", "fake")
    t = time.perf_counter()
    for start in range(0, n, 1000):
        cases.bulk_upsert(
            project,
            [
                cases.CaseChange(
                    case_type="mother", name=f"Mother {i}", properties={"contact_phone_number": f"2547{i:08d}"}
                )
                for i in range(start, min(n, start + 1000))
            ],
        )
    print(f"cases created: {n:,} in {time.perf_counter() - t:.1f} s (setup, not timed below)")
    from casemsg.cases.models import Case

    ids = list(Case.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    connection.close()

    # Workers start first, idle; then the queueing and the sending are timed together.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "casemsg", "worker", "--workers", str(args.threads)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]
    time.sleep(2)
    counter.value = 0
    t0 = time.perf_counter()
    event = MessagingEvent.objects.create(project=project, source="broadcast", description="bench")
    for start in range(0, len(ids), 1000):
        batch = list(Case.objects.filter(pk__in=ids[start : start + 1000]))
        specs = [pipeline.MessageSpec(case=c, text="Hello {case.name}, your visit is due") for c in batch]
        pipeline.queue(project, specs, event)
    t_queued = time.perf_counter() - t0
    last = -1
    while True:
        left = Message.objects.filter(status__in=[Message.QUEUED, Message.SENDING]).count()
        if left == 0:
            break
        if time.perf_counter() - t0 > 1800:
            print("timed out")
            break
        if left != last:
            last = left
        time.sleep(0.5)
    elapsed = time.perf_counter() - t0
    sent = Message.objects.filter(status=Message.SENT).count()
    peaks = []
    for p in procs:
        try:
            status = Path(f"/proc/{p.pid}/status").read_text()
            peaks.append(int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) // 1024)
        except (OSError, StopIteration):
            peaks.append(-1)
        p.terminate()
    for p in procs:
        p.wait(timeout=30)
    rate = sent / elapsed
    db = "PostgreSQL" if pg_url else "SQLite"
    queue = "Redis" if env.get("CASEMSG_QUEUE_URL", "").startswith("redis") else "SqliteHuey"
    print(f"{db} + {queue}, {args.workers} worker process(es) × {args.threads} threads")
    print(
        f"queued {n:,} in {t_queued:.1f} s; all sent after {elapsed:.1f} s; sent={sent:,}, "
        f"gateway received={counter.value:,}"
    )
    print(f"end to end: {rate:,.0f} msg/s; bare client {floor:,.0f} req/s; ratio {rate / floor:.2f} (goal ≥ 0.40)")
    print(f"worker peak memory (VmHWM): {', '.join(f'{m} MiB' for m in peaks)}")
    server.terminate()
    connection.close()
    if admin is not None:
        admin.execute("DROP DATABASE IF EXISTS casemsg_bench_outbound WITH (FORCE)")


if __name__ == "__main__":
    main()
