"""Outbound throughput: N SMS queued to N contacts, sent through the `http` gateway to a fake gateway on
127.0.0.1 by real `casemsg worker` processes, end to end — against, in the same run and the same
server, the fastest bare HTTP client posting the same N requests.

    .venv/bin/python bench/outbound.py --workers 2                  # embedded: SQLite + SqliteHuey
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    CASEMSG_QUEUE_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/outbound.py --workers 2
    .venv/bin/python bench/outbound.py --messages 20000 --py-spy /tmp/flame   # a flame graph per worker

Options: --messages N (default 100000), --workers (processes, default 1), --redis-db (default 3).

The floor is measured twice, interleaved with the subject: once before the workers start and once after
the last message is sent, and the faster of the two is the floor (the machine is shared: a floor taken
minutes apart from the subject swung by 2× between runs). On PostgreSQL a scratch database
`casemsg_bench_outbound` is created and dropped; the queue uses its own Redis database number (never db 0
of whoever else uses that Redis), flushed before and after; the temporary data directory is removed.
Prints messages/s, the floor, the ratio, each worker's peak memory, the load average, and MET/MISSED for
each goal: ratio ≥ 0.60 (0.75 is the stretch goal, reported but not required), every message sent once,
and memory flat (a worker's peak under 400 MiB, whatever N). Exits 1 on a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


GOAL = 0.60
STRETCH = 0.75
MEMORY_CAP_MIB = 400  # a worker's peak resident memory; ~120 MiB measured at 20,000 and at 100,000 messages


CPU_SECONDS: list[float] = []  # the bench process's CPU in each floor run: the bare client's own cost


def floor_rate(url: str, n: int) -> float:
    c0 = time.process_time()
    rate = asyncio.run(bare_client(url, n))
    CPU_SECONDS.append(time.process_time() - c0)
    return rate


def cpu_seconds(pid: int, spied: bool) -> float:
    """A process's CPU time so far (user + system), from /proc; under py-spy, its child's."""
    try:
        if spied:
            pid = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def worker_command(threads: int, spy_dir: Path | None, i: int, fmt: str = "flamegraph") -> list[str]:
    cmd = [sys.executable, "-m", "casemsg", "worker", "--workers", str(threads)]
    if spy_dir is None:
        return cmd
    spy = Path(sys.executable).parent / "py-spy"
    # py-spy starts the worker itself (no ptrace of a running process needed) and writes the flame graph
    # when the worker exits; --nonblocking: it samples without pausing the worker (the rate stays honest)
    out = spy_dir / f"worker{i}.{'svg' if fmt == 'flamegraph' else 'txt'}"
    return [str(spy), "record", "--nonblocking", "-r", "200", "-f", fmt, "-o", str(out), "--", *cmd]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1, as `casemsg serve`)")
    ap.add_argument("--threads", type=int, default=1, help="consumer threads per worker (default 1, as worker)")
    ap.add_argument("--redis-db", type=int, default=3, help="Redis database number of the bench's queue")
    ap.add_argument("--py-spy", type=Path, default=None, help="write a py-spy flame graph per worker here")
    ap.add_argument("--py-spy-format", default="flamegraph", help="flamegraph (.svg) or raw (collapsed stacks, .txt)")
    args = ap.parse_args()
    n = args.messages

    from bench._database import fresh_database

    cleanup, _pg = fresh_database("casemsg_bench_outbound")
    os.environ["CASEMSG_QUEUE_IMMEDIATE"] = "0"
    os.environ["CASEMSG_GATEWAY_ALLOW_PRIVATE"] = "1"  # the fake provider listens on 127.0.0.1
    queue_url = os.environ.get("CASEMSG_QUEUE_URL", "")
    flush = None
    if queue_url.startswith("redis://"):
        import redis

        queue_url = urlunsplit(urlsplit(queue_url)._replace(path=f"/{args.redis_db}"))
        os.environ["CASEMSG_QUEUE_URL"] = queue_url
        flush = redis.Redis.from_url(queue_url).flushdb
        flush()
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    server = None
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)
        server, counter, url = start_gateway()
        result = run(args, n, env, url, counter, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT if args.py_spy else signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        if server is not None:
            server.terminate()
        if flush is not None:
            flush()
        cleanup()  # the scratch database (PostgreSQL) and the data directory
    return result


def start_gateway():
    port = free_port()
    counter = mp.Value("l", 0)
    ready = mp.Event()
    server = mp.Process(target=fake_gateway, args=(port, ready, counter), daemon=True)
    server.start()
    ready.wait()
    time.sleep(0.5)
    return server, counter, f"http://127.0.0.1:{port}/send"


def run(args, n: int, env: dict, url: str, counter, procs: list) -> int:
    load0 = os.getloadavg()
    floor_before = floor_rate(url, n)
    print(f"bare aiohttp client, before: {floor_before:,.0f} req/s ({n:,} requests)")

    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "casemsg.settings"
    django.setup()
    from django.db import connection

    from casemsg.cases import services as cases
    from casemsg.cases.models import Case
    from casemsg.gateways import services as gateways
    from casemsg.messaging import pipeline
    from casemsg.messaging.models import Message, MessagingEvent
    from casemsg.projects.services import create_project

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
    ids = list(Case.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    connection.close()

    # Workers start first, idle; then the queueing and the sending are timed together.
    for i in range(args.workers):
        procs.append(
            subprocess.Popen(
                worker_command(args.threads, args.py_spy, i, args.py_spy_format),
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
        )
    time.sleep(3)
    spied = args.py_spy is not None
    cpu0 = sum(cpu_seconds(p.pid, spied) for p in procs)
    counter.value = 0
    t0 = time.perf_counter()
    event = MessagingEvent.objects.create(project=project, source="broadcast", description="bench")
    for start in range(0, len(ids), 1000):
        batch = list(Case.objects.filter(pk__in=ids[start : start + 1000]))
        specs = [pipeline.MessageSpec(case=c, text="Hello {case.name}, your visit is due") for c in batch]
        pipeline.queue(project, specs, event)
    t_queued = time.perf_counter() - t0
    timed_out = False
    while Message.objects.filter(status__in=[Message.QUEUED, Message.SENDING]).exists():
        if time.perf_counter() - t0 > 1800:
            timed_out = True
            print("timed out")
            break
        time.sleep(0.25)
    elapsed = time.perf_counter() - t0
    load1 = os.getloadavg()
    sent = Message.objects.filter(status=Message.SENT).count()
    received = counter.value
    worker_cpu = sum(cpu_seconds(p.pid, spied) for p in procs) - cpu0
    peaks = []
    for p in procs:
        peaks.append(peak_mib(p.pid, spied))
    connection.close()
    # stop the workers before the second floor: they must not compete with it
    for p in procs:
        p.send_signal(signal.SIGINT if args.py_spy else signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)
    floor_after = floor_rate(url, n)
    print(f"bare aiohttp client, after:  {floor_after:,.0f} req/s")
    floor = max(floor_before, floor_after)
    rate = sent / elapsed
    db = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    queue = "Redis" if env.get("CASEMSG_QUEUE_URL", "").startswith("redis") else "SqliteHuey"
    ratio = rate / floor
    print(f"{db} + {queue}, {args.workers} worker process(es) × {args.threads} threads")
    print(f"queued {n:,} in {t_queued:.1f} s; all sent after {elapsed:.1f} s; sent={sent:,}, received={received:,}")
    print(f"end to end: {rate:,.0f} msg/s; floor (faster bare client) {floor:,.0f} req/s; ratio {ratio:.2f}")
    print(f"worker peak memory (VmHWM): {', '.join(f'{m} MiB' for m in peaks)}")
    # CPU per message holds on a busy machine where rates do not (the workers' share of the cores varies)
    client_us = min(CPU_SECONDS) / n * 1e6
    worker_us = worker_cpu / max(sent, 1) * 1e6
    print(
        f"CPU per message: workers {worker_us:,.0f} µs (ticker and idle polling included); bare client "
        f"{client_us:,.0f} µs per request; the client's share {client_us / worker_us:.2f}"
    )
    print(f"load average (1 min) {load0[0]:.2f} at the start → {load1[0]:.2f} at the end, on {os.cpu_count()} CPUs")
    if args.py_spy is not None:
        print(f"py-spy profiles: {args.py_spy}/worker*")
    goals = [
        (f"ratio ≥ {GOAL:.2f} of the bare client", ratio >= GOAL),
        (f"every message sent exactly once ({n:,})", not timed_out and sent == n and received == n),
        (f"worker memory flat (peak < {MEMORY_CAP_MIB} MiB)", all(0 < m < MEMORY_CAP_MIB for m in peaks)),
    ]
    for text, ok in goals:
        print(f"goal {text}: {'MET' if ok else 'MISSED'}")
    print(f"stretch goal ratio ≥ {STRETCH:.2f}: {'MET' if ratio >= STRETCH else 'missed'} (not required)")
    return 0 if all(ok for _t, ok in goals) else 1


def peak_mib(pid: int, spied: bool) -> int:
    """The worker's peak resident memory (VmHWM); under py-spy, its child's."""
    try:
        if spied:
            pid = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) // 1024
    except (OSError, StopIteration, IndexError, ValueError):
        return -1


if __name__ == "__main__":
    sys.exit(main())
