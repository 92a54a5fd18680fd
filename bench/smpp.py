"""SMPP throughput: N SMS queued to N contacts and sent through the `smpp` gateway by a real `casemsg worker`
to the fake SMSC (fakes/smsc.py, in a process of its own), end to end — against, in the same run and
against the same SMSC, the floor: a bare client of the same library (smpp34) submitting the same PDUs with
the same window.

    .venv/bin/python bench/smpp.py --messages 20000                  # embedded: SQLite + SqliteHuey
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    CASEMSG_QUEUE_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/smpp.py

Options: --messages N (default 100000), --window W (default 50: submit_sm outstanding, both sides).
Prints the load average before and after (the machine is shared: a ratio is only meaningful in one run),
the floor's submits/s (measured before and after the casemsg run; the faster counts), casemsg's messages/s,
the ratio (goal ≥ 0.60: met or missed), and the worker's
resident memory at a quarter of the run and at the end (it must stay flat). Exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._database import fresh_database  # noqa: E402

GOAL = 0.60
TEXT = "Hello, your visit is due"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def bare_client(port: int, n: int, window: int) -> float:
    """The floor: smpp34 bound as a transceiver, submitting the same PDUs (GSM-7 text, TON/NPI 1/1, no
    receipt asked) with at most `window` outstanding."""
    import smpp34

    client = smpp34.Client(
        host="127.0.0.1", port=port, system_id="bench", password="bench", bind_type="TRX", window_size=window
    )
    smsc = await client.connect()
    sem = asyncio.Semaphore(window)
    body = TEXT.encode()

    async def one(i: int) -> None:
        async with sem:
            r = await smsc.submit_sm(
                f"2547{i:08d}",
                body,
                source_addr="22555",
                source_addr_ton=1,
                source_addr_npi=1,
                dest_addr_ton=1,
                dest_addr_npi=1,
            )
            assert r.is_success

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    rate = n / (time.perf_counter() - t)
    await smsc.unbind()
    await client.stop()
    return rate


def bind_alone(gateway, n: int, batch: int) -> float:
    """casemsg's SMPP layer without the pipeline: smpp_bind.submit (encoding, window, journal of acks)
    handed windows of `batch` messages one after another, as the pipeline's send windows hand them."""
    from casemsg.gateways import smpp_bind
    from casemsg.gateways.base import OutboundSms

    loop = asyncio.new_event_loop()
    msgs = [OutboundSms(10_000_000 + i, f"2547{i:08d}", TEXT) for i in range(n)]
    loop.run_until_complete(smpp_bind.submit(gateway, msgs[:1]))  # bound
    t = time.perf_counter()
    for start in range(1, n, batch):
        results = loop.run_until_complete(smpp_bind.submit(gateway, msgs[start : start + batch]))
        assert all(r.status == "sent" for r in results), results[0]
    rate = (n - 1) / (time.perf_counter() - t)
    smpp_bind.shutdown()
    loop.close()
    return rate


def rss_mib(pid: int, key: str = "VmRSS") -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(x for x in status.splitlines() if x.startswith(key)).split()[1]) // 1024
    except (OSError, StopIteration):
        return -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=50)
    args = ap.parse_args()
    n = args.messages

    cleanup, is_pg = fresh_database("casemsg_bench_smpp", "casemsg-bench-smpp-")
    os.environ["CASEMSG_QUEUE_IMMEDIATE"] = "0"
    os.environ["CASEMSG_GATEWAY_ALLOW_PRIVATE"] = "1"  # the fake SMSC listens on 127.0.0.1
    if os.environ.get("CASEMSG_QUEUE_URL", "").startswith("redis://"):
        import redis

        redis.Redis.from_url(os.environ["CASEMSG_QUEUE_URL"]).flushdb()
    env = os.environ.copy()
    subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], env=env, check=True, cwd=ROOT)

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

    port = free_port()
    smsc = subprocess.Popen(
        [sys.executable, "-m", "fakes.smsc", "--port", str(port), "--no-receipts"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert smsc.stdout is not None and "listening" in smsc.stdout.readline()
    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)} ({os.cpu_count()} cores)")

    floor_before = asyncio.run(bare_client(port, n, args.window))
    print(f"bare smpp34 client, window {args.window}: {floor_before:,.0f} submit_sm/s ({n:,} submits, before)")

    project, _key = create_project("bench", "Bench")
    config = {
        "host": "127.0.0.1",
        "port": port,
        "system_id": "casemsg",
        "password": "bench",
        "source_addr": "22555",
        "window": args.window,
        "registered_delivery": False,
    }
    gw = gateways.add_gateway("operator", "smpp", config)
    gateways.map_prefix("*", "operator")
    alone = bind_alone(gw, n, pipeline.SEND_WINDOW)
    print(
        f"casemsg's bind alone (no pipeline), windows of {pipeline.SEND_WINDOW}: {alone:,.0f} msg/s "
        f"({alone / floor_before:.2f} of the floor before)"
    )
    connection.close()
    t = time.perf_counter()
    for start in range(0, n, 1000):
        cases.bulk_upsert(
            project,
            [
                cases.CaseChange(case_type="mother", name=f"M{i}", properties={"contact_phone_number": f"2547{i:08d}"})
                for i in range(start, min(n, start + 1000))
            ],
        )
    print(f"cases created: {n:,} in {time.perf_counter() - t:.1f} s (setup, not timed)")
    ids = list(Case.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    connection.close()

    worker = subprocess.Popen([sys.executable, "-m", "casemsg", "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    time.sleep(3)  # up and bound
    t0 = time.perf_counter()
    event = MessagingEvent.objects.create(project=project, source="broadcast", description="bench")
    for start in range(0, len(ids), 1000):
        batch = list(Case.objects.filter(pk__in=ids[start : start + 1000]))
        pipeline.queue(project, [pipeline.MessageSpec(case=c, text=TEXT) for c in batch], event)
    t_queued = time.perf_counter() - t0
    quarter_rss = -1
    while True:
        left = Message.objects.filter(status__in=[Message.QUEUED, Message.SENDING]).count()
        if quarter_rss < 0 and left <= n * 3 // 4:
            quarter_rss = rss_mib(worker.pid)
        if left == 0 or time.perf_counter() - t0 > 3600:
            break
        time.sleep(0.5)
    elapsed = time.perf_counter() - t0
    end_rss, peak = rss_mib(worker.pid), rss_mib(worker.pid, "VmHWM")
    sent = Message.objects.filter(status=Message.SENT).count()
    worker.terminate()
    worker.wait(timeout=30)
    # the floor again, after: the machine is shared, so the faster of the two is the floor (interleaved)
    floor_after = asyncio.run(bare_client(port, n, args.window))
    print(f"bare smpp34 client, window {args.window}: {floor_after:,.0f} submit_sm/s ({n:,} submits, after)")
    floor = max(floor_before, floor_after)
    smsc.terminate()
    load_after = os.getloadavg()

    rate = sent / elapsed
    ratio = rate / floor
    db = "PostgreSQL" if is_pg else "SQLite"
    queue = "Redis" if env.get("CASEMSG_QUEUE_URL", "").startswith("redis") else "SqliteHuey"
    print(f"{db} + {queue}, 1 worker process")
    print(f"queued {n:,} in {t_queued:.1f} s; all sent after {elapsed:.1f} s; sent={sent:,}")
    print(
        f"end to end: {rate:,.0f} msg/s; bare client {floor:,.0f} submit_sm/s; ratio {ratio:.2f} "
        f"(goal ≥ {GOAL:.2f}: {'met' if ratio >= GOAL else 'missed'})"
    )
    print(f"worker memory: {quarter_rss} MiB at a quarter, {end_rss} MiB at the end (peak {peak} MiB)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    cleanup()
    if ratio < GOAL or sent < n:
        sys.exit(1)


if __name__ == "__main__":
    main()
