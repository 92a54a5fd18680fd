"""Event webhooks must never slow sending: N SMS sent through the `http` gateway to a fake provider on
127.0.0.1 by a real `casemsg worker`, once without event webhooks and once with an endpoint subscribed to
`message.status` that takes 2 s to answer each post — in the same run, each on a fresh database.

    .venv/bin/python bench/event_webhooks.py                  # embedded: SQLite + SqliteHuey
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/x \\
    CASEMSG_QUEUE_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/event_webhooks.py

Options: --messages N (default 20000), --workers N (worker processes, default 1), --rounds N (each round
runs both; the best of each is compared, default 1). Prints each run's messages/s, how many deliveries
were queued and posted meanwhile, the ratio with/without (goal ≥ 0.90) and the load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fake_gateway(port: int, ready) -> None:
    from aiohttp import web

    n = 0

    async def send(request: web.Request) -> web.Response:
        nonlocal n
        data = await request.post()
        n += 1
        return web.json_response({"id": f"fake-{n}", "to": data.get("to")})

    app = web.Application()
    app.router.add_post("/send", send)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def slow_receiver(port: int, ready, received, seconds: float) -> None:
    """The project's own system, answering every event after `seconds`."""
    import asyncio

    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(seconds)
        with received.get_lock():
            received.value += 1
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def phase(n: int, with_webhooks: bool, workers: int) -> dict:
    """One run on a fresh database; returns its figures."""
    from bench._database import fresh_database

    cleanup, _pg = fresh_database(f"casemsg_bench_events_{'with' if with_webhooks else 'without'}")
    os.environ["CASEMSG_QUEUE_IMMEDIATE"] = "0"
    os.environ["CASEMSG_GATEWAY_ALLOW_PRIVATE"] = "1"  # the fakes listen on 127.0.0.1
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
    from casemsg.events import services as events
    from casemsg.events.models import Delivery
    from casemsg.gateways import services as gateways
    from casemsg.messaging import pipeline
    from casemsg.messaging.models import Message, MessagingEvent
    from casemsg.projects.services import create_project

    servers = []
    gw_port, hook_port = free_port(), free_port()
    ready, hook_ready = mp.Event(), mp.Event()
    received = mp.Value("l", 0)
    servers.append(mp.Process(target=fake_gateway, args=(gw_port, ready), daemon=True))
    servers.append(mp.Process(target=slow_receiver, args=(hook_port, hook_ready, received, 2.0), daemon=True))
    for s in servers:
        s.start()
    ready.wait()
    hook_ready.wait()
    time.sleep(0.5)

    project, _key = create_project("bench", "Bench")
    gateways.add_gateway("fake", "http", {"url": f"http://127.0.0.1:{gw_port}/send", "provider_id_path": "id"})
    gateways.map_prefix("*", "fake")
    if with_webhooks:
        events.create_endpoint(project, f"http://127.0.0.1:{hook_port}/hook", ["message.status"])
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
    ids = list(Case.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    connection.close()

    procs = [
        subprocess.Popen([sys.executable, "-m", "casemsg", "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    time.sleep(2)
    t0 = time.perf_counter()
    event = MessagingEvent.objects.create(project=project, source="broadcast", description="bench")
    for start in range(0, len(ids), 1000):
        batch = list(Case.objects.filter(pk__in=ids[start : start + 1000]))
        pipeline.queue(project, [pipeline.MessageSpec(case=c, text="Hello {case.name}") for c in batch], event)
    while Message.objects.filter(status__in=[Message.QUEUED, Message.SENDING]).exists():
        if time.perf_counter() - t0 > 1800:
            print("timed out", file=sys.stderr)
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - t0
    load = os.getloadavg()
    sent = Message.objects.filter(status=Message.SENT).count()
    queued_deliveries = Delivery.objects.count()
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)
    for s in servers:
        s.terminate()
    connection.close()
    cleanup()
    return {
        "with": with_webhooks,
        "sent": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "deliveries_queued": queued_deliveries,
        "deliveries_posted": received.value,
        "load": load,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--phase", choices=["with", "without"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.messages, args.phase == "with", args.workers)))
        return

    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for which in ("without", "with"):
            cmd = [sys.executable, __file__, "--phase", which, "--messages", str(args.messages)]
            out = subprocess.run(cmd + ["--workers", str(args.workers)], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            la = ", ".join(f"{x:.2f}" for x in r["load"])
            print(
                f"{which:>7} webhooks: {r['sent']:,} sent in {r['seconds']:.1f} s = {r['rate']:,.0f} msg/s; "
                f"deliveries queued {r['deliveries_queued']:,}, posted meanwhile {r['deliveries_posted']:,} "
                f"(endpoint answers in 2 s); load average {la}",
                flush=True,
            )
            if which not in best or r["rate"] > best[which]["rate"]:
                best[which] = r
    db = "PostgreSQL" if os.environ.get("CASEMSG_DATABASE_URL") else "SQLite"
    queue = "Redis" if os.environ.get("CASEMSG_QUEUE_URL", "").startswith("redis") else "SqliteHuey"
    ratio = best["with"]["rate"] / best["without"]["rate"]
    print(f"{db} + {queue}, {args.workers} worker(s), {args.messages:,} SMS: with/without = {ratio:.2f} (goal ≥ 0.90)")
    print(f"load average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"goal (with/without ≥ 0.90): {'met' if ratio >= 0.9 else 'MISSED'}")
    sys.exit(0 if ratio >= 0.9 else 1)


if __name__ == "__main__":
    main()
