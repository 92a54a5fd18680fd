"""Workers killed mid-send: N SMS sent by real `casemsg worker` processes on PostgreSQL + Redis to a fake
provider in its own process (which counts the requests per message id), while this script `kill -9`s a
worker at random moments and restarts it each time. The sweeper (CASEMSG_SENDING_TIMEOUT_SECONDS short)
returns the dead workers' rows to the queue; the bench waits until every message is sent.

    .venv/bin/python bench/crash.py                        # 20,000 messages, 10 kills, 2 workers
    .venv/bin/python bench/crash.py --messages 3000 --kills 3

PostgreSQL and Redis come from CASEMSG_DATABASE_URL / CASEMSG_QUEUE_URL (default: the local
postgresql://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379/0); a scratch database
`casemsg_bench_crash` is created and dropped, and the queue uses its own Redis database number (--redis-db,
default 5), flushed.

The kills: K points drawn at random between 5 % and 90 % of N provider requests; when the provider's count
passes one, a randomly chosen running worker gets SIGKILL and a new one is started at once.

Prints the messages, kills, provider requests, duplicates (messages the provider got more than once),
the duplicates of the worst kill against the goal (≤ pipeline.SEND_WINDOW: a worker killed mid-batch
re-sends at most one window; each duplicate is counted against the first kill after its first request),
the rows with attempts ≥ 2 and SENDING_OUTCOME_UNKNOWN in their history, whether every duplicate
is among them (no silent duplicate), the elapsed time and the load average. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_DB = "casemsg_bench_crash"
READY = "casemsg worker:"


class Worker:
    """One `casemsg worker` process, its output in a file (it says when it is up)."""

    def __init__(self, env: dict, log_dir: str, n: int, threads: int):
        self.log_path = Path(log_dir, f"worker-{n}.log")
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "casemsg", "worker", "--workers", str(threads)],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        return self.proc.poll() is None and READY in self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="consumer threads per worker (default 1, as worker)")
    ap.add_argument("--timeout", type=int, default=5, help="CASEMSG_SENDING_TIMEOUT_SECONDS (default 5)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds the fake provider takes to answer")
    ap.add_argument("--seed", type=int, default=None, help="random seed for the kill points and victims")
    ap.add_argument("--redis-db", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=900.0, help="give up after this long (default 900)")
    args = ap.parse_args()
    n = args.messages
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)

    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    tmp = tempfile.mkdtemp(prefix="casemsg-bench-crash-")
    pg_url = env.get("CASEMSG_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    queue_url = env.get("CASEMSG_QUEUE_URL") or "redis://127.0.0.1:6379/0"
    if not pg_url.startswith("postgres") or not queue_url.startswith("redis://"):
        raise SystemExit("this bench needs PostgreSQL and Redis (CASEMSG_DATABASE_URL, CASEMSG_QUEUE_URL)")
    import psycopg
    import redis

    admin = psycopg.connect(pg_url, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {PG_DB}")
    queue_url = urlunsplit(urlsplit(queue_url)._replace(path=f"/{args.redis_db}"))
    redis.Redis.from_url(queue_url).flushdb()
    env.update(
        CASEMSG_DATA_DIR=tmp,
        CASEMSG_DATABASE_URL=urlunsplit(urlsplit(pg_url)._replace(path="/" + PG_DB)),
        CASEMSG_QUEUE_URL=queue_url,
        CASEMSG_QUEUE_IMMEDIATE="0",
        CASEMSG_SENDING_TIMEOUT_SECONDS=str(args.timeout),
        CASEMSG_GATEWAY_ALLOW_PRIVATE="1",  # the fake provider listens on 127.0.0.1
        DJANGO_SETTINGS_MODULE="casemsg.settings",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    os.environ.update(env)
    subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)

    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from casemsg.cases import services as cases
    from casemsg.core import errors
    from casemsg.gateways import services as gateways
    from casemsg.messaging import pipeline
    from casemsg.messaging.models import Message, MessagingEvent
    from casemsg.projects.services import create_project
    from fakes.gateways import FakeGatewayProcess

    fake = FakeGatewayProcess("http", lean=True, latency=args.latency).start()
    workers: list[Worker] = []
    kills: list[tuple[float, int]] = []  # (seconds after the start, provider requests at that moment)
    try:
        project, _key = create_project("crash", "Crash bench")
        gateways.add_gateway("fake", "http", fake.gateway_config())
        gateways.map_prefix("*", "fake")
        t = time.perf_counter()
        later = timezone.now() + timedelta(hours=1)  # nothing is due until the workers are up
        event = MessagingEvent.objects.create(project=project, source="broadcast", description="crash bench")
        for start in range(0, n, 1000):
            batch = cases.bulk_upsert(
                project,
                [
                    cases.CaseChange(
                        case_type="mother", name=f"Mother {i}", properties={"contact_phone_number": f"2547{i:08d}"}
                    )
                    for i in range(start, min(n, start + 1000))
                ],
            )
            specs = [pipeline.MessageSpec(case=c, text="Hello {case.name}", send_after=later) for c in batch]
            pipeline.queue(project, specs, event, precheck=False)
        ids = set(Message.objects.filter(event=event).values_list("pk", flat=True))
        assert len(ids) == n, len(ids)
        print(f"setup: {n:,} cases and queued messages in {time.perf_counter() - t:.1f} s (not timed below)")
        connection.close()

        started = 0

        def spawn() -> Worker:
            nonlocal started
            started += 1
            return Worker(env, tmp, started, args.threads)

        workers = [spawn() for _ in range(args.workers)]
        deadline = time.monotonic() + 60
        while not all(w.ready() for w in workers):
            if time.monotonic() > deadline or any(w.proc.poll() is not None for w in workers):
                raise SystemExit("the workers did not start:\n" + workers[0].log_path.read_text())
            time.sleep(0.1)

        points = sorted(int(rng.uniform(0.05, 0.90) * n) for _ in range(args.kills))
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        Message.objects.filter(event=event).update(next_attempt_on=timezone.now())  # all due at once
        connection.close()
        timed_out = False
        while points:
            got = fake.stats()["requests"]
            if got >= points[0]:
                up = [i for i, w in enumerate(workers) if w.ready()]
                if up:
                    i = rng.choice(up)
                    workers[i].kill()
                    kills.append((time.perf_counter() - t0, fake.stats()["requests"]))
                    points.pop(0)
                    workers[i] = spawn()  # restarted at once, as a supervisor would
                    continue
            if time.perf_counter() - t0 > args.max_seconds:
                timed_out = True
                break
            time.sleep(0.01)
        last_kill = time.perf_counter() - t0
        while not timed_out:
            left = Message.objects.filter(event=event, status__in=[Message.QUEUED, Message.SENDING]).count()
            if left == 0:
                break
            if time.perf_counter() - t0 > args.max_seconds:
                timed_out = True
                print(f"timed out after {args.max_seconds:g} s: {left:,} messages not sent")
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - t0
        load1 = os.getloadavg()
    finally:
        for w in workers:
            w.stop()

    try:
        requests = fake.requests()
        by_id = Counter(r.message_id for r in requests if r.accepted)
        rows = {
            pk: (status, attempts, history or [])
            for pk, status, attempts, history in Message.objects.filter(event=event).values_list(
                "pk", "status", "attempts", "history"
            )
        }
    finally:
        fake.stop()
        connection.close()
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        redis.Redis.from_url(queue_url).flushdb()
        shutil.rmtree(tmp, ignore_errors=True)

    unknown = errors.SENDING_OUTCOME_UNKNOWN
    dup_ids = {int(k) for k, c in by_id.items() if c > 1}
    extra = sum(c - 1 for c in by_id.values() if c > 1)
    retried = {pk for pk, (_s, a, _h) in rows.items() if a >= 2}
    flagged = {pk for pk in retried if any(h.get("code") == unknown for h in rows[pk][2])}
    silent = dup_ids - flagged
    never = ids - {int(k) for k in by_id if k}
    statuses = Counter(s for s, _a, _h in rows.values())
    window = pipeline.SEND_WINDOW
    # Each duplicate belongs to the kill that came first after its first request (the worker killed while
    # that send was in flight); the goal holds for the WORST kill, not the average over kills.
    first_seq: dict[int, int] = {}
    for r in requests:
        if r.accepted and r.message_id and int(r.message_id) in dup_ids:
            first_seq[int(r.message_id)] = min(first_seq.get(int(r.message_id), r.seq), r.seq)
    per_kill = Counter()
    for seq in first_seq.values():
        after = [i for i, (_s, count) in enumerate(kills) if count >= seq]
        per_kill[after[0] if after else len(kills) - 1] += 1
    worst = max(per_kill.values(), default=0)
    ratio = len(dup_ids) / len(kills) if kills else 0.0

    print(
        f"\nPostgreSQL + Redis; {args.workers} worker processes × {args.threads} thread(s); "
        f"CASEMSG_SENDING_TIMEOUT_SECONDS={args.timeout}; provider latency {args.latency * 1000:.0f} ms; seed {seed}"
    )
    print(f"messages: {n:,}; statuses {dict(statuses)}")
    print(
        f"kills: {len(kills)} (at s / provider requests: "
        f"{', '.join(f'{s:.1f}/{c:,}' for s, c in kills)}); last kill {last_kill:.1f} s"
    )
    print(f"provider requests: {len(requests):,}; accepted {sum(by_id.values()):,}; never received: {len(never)}")
    print(f"duplicates: {len(dup_ids):,} messages received more than once ({extra:,} extra requests)")
    print(
        f"duplicates per kill: worst {worst} (goal ≤ {window}, pipeline.SEND_WINDOW); average {ratio:.1f}; "
        f"per kill {[per_kill.get(i, 0) for i in range(len(kills))]}"
    )
    print(
        f"rows with attempts ≥ 2: {len(retried):,}; of them with {unknown} in history: {len(flagged):,}; "
        f"flagged but received once (outcome unknown, not a duplicate): {len(flagged - dup_ids):,}"
    )
    print(
        f"every duplicate flagged (attempts ≥ 2 and {unknown}): {'yes' if not silent else 'NO'}"
        + (f" — {len(silent)} silent duplicates, e.g. {sorted(silent)[:10]}" if silent else "")
    )
    print(
        f"elapsed: {elapsed:.1f} s from all due to all sent; load average {load0[0]:.2f} → {load1[0]:.2f} "
        f"(1 min) on {os.cpu_count()} CPUs (other processes compete)"
    )
    all_sent = not timed_out and not never and statuses == {"sent": n}
    good = all_sent and not silent and len(kills) == args.kills and worst <= window
    goal = f"goal (every message sent, no silent duplicate, duplicates of the worst kill ≤ {window})"
    print(f"{goal}: {'MET' if good else 'MISSED'}")
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
