"""Workers killed mid-send (bench/crash.py on a small scale): real `casemsg worker` processes on PostgreSQL +
Redis send to a fake provider in its own process while the test `kill -9`s one of them at random moments and
restarts it. Every message is sent; a message the provider got twice is never a silent duplicate (it counts
two attempts and its history says SENDING_OUTCOME_UNKNOWN); a kill re-sends at most one send window."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.services import create_project
from tests.conftest import database_url, queue_url

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 11  # a queue of its own, flushed before and after
MESSAGES, KILLS, WORKERS = 3000, 3, 2
SENDING_TIMEOUT = 5  # seconds before the sweeper returns a dead worker's rows
DEADLINE = 90  # seconds for every message to be sent, kills and recovery included

pytestmark = [
    pytest.mark.slow,
    pytest.mark.crash,
    pytest.mark.skipif(
        not (settings.IS_POSTGRES and settings.QUEUE_URL.startswith("redis://")),
        reason="worker processes need PostgreSQL and Redis (CASEMSG_DATABASE_URL=postgresql://…, "
        "CASEMSG_QUEUE_URL=redis://…)",
    ),
]


def _env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env.update(
        CASEMSG_QUEUE_IMMEDIATE="0",
        CASEMSG_DATABASE_URL=database_url(),  # the *test* database, as the worker processes must see it
        CASEMSG_QUEUE_URL=queue_url(REDIS_DB),
        CASEMSG_DATA_DIR=data_dir,
        CASEMSG_SENDING_TIMEOUT_SECONDS=str(SENDING_TIMEOUT),
        CASEMSG_GATEWAY_ALLOW_PRIVATE="1",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="casemsg.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


class Worker:
    """One `casemsg worker` (one consumer thread, its default), its output in a file."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log_path = log
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "casemsg", "worker"],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        return self.proc.poll() is None and "casemsg worker:" in self.log_path.read_text(errors="replace")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

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


def test_killed_workers_leave_no_message_unsent_and_no_silent_duplicate(
    transactional_db, redis_queue, fake_gateway_process
):
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    fake = fake_gateway_process("http", lean=True)
    project, _key = create_project("crash", "Crash")
    add_gateway("fake-http", "http", fake.gateway_config())
    map_prefix("*", "fake-http")
    changes = [
        CaseChange(case_type="person", name=f"Person {i}", properties={"contact_phone_number": f"2547{40000000 + i}"})
        for i in range(MESSAGES)
    ]
    cases = [c for start in range(0, MESSAGES, 1000) for c in bulk_upsert(project, changes[start : start + 1000])]
    event = MessagingEvent.objects.create(project=project, source="system", description="crash test")
    later = timezone.now() + timedelta(hours=1)  # nothing is due until the workers are up
    specs = [pipeline.MessageSpec(case=c, text="Hello {case.name}", send_after=later) for c in cases]
    pipeline.queue(project, specs, event, precheck=False)
    ids = set(Message.objects.filter(event=event).values_list("pk", flat=True))
    assert len(ids) == MESSAGES

    with tempfile.TemporaryDirectory(prefix="casemsg-crash-") as tmp:
        env = _env(tmp)
        started = 0

        def spawn() -> Worker:
            nonlocal started
            started += 1
            return Worker(env, Path(tmp, f"worker-{started}.log"))

        workers = [spawn() for _ in range(WORKERS)]
        kills: list[int] = []  # provider requests when each kill happened
        try:
            deadline = time.monotonic() + 60
            while not all(w.ready() for w in workers):
                assert time.monotonic() < deadline, "\n---\n".join(w.output() for w in workers)
                time.sleep(0.1)
            # kill points: random counts of provider requests between 5 % and 90 % of the messages
            points = sorted(int(rng.uniform(0.05, 0.9) * MESSAGES) for _ in range(KILLS))
            Message.objects.filter(event=event).update(next_attempt_on=timezone.now())  # all due at once
            deadline = time.monotonic() + DEADLINE
            while points:
                assert time.monotonic() < deadline, f"seed {seed}: {len(points)} kills left; {fake.stats()}"
                if fake.stats()["requests"] >= points[0] and (up := [w for w in workers if w.ready()]):
                    victim = rng.choice(up)
                    victim.kill()
                    kills.append(fake.stats()["requests"])
                    points.pop(0)
                    workers[workers.index(victim)] = spawn()  # restarted at once
                    continue
                time.sleep(0.01)
            while Message.objects.filter(event=event, status__in=[Message.QUEUED, Message.SENDING]).exists():
                left = Counter(Message.objects.filter(event=event).values_list("status", flat=True))
                assert time.monotonic() < deadline, f"seed {seed}, kills at {kills}: not all sent {dict(left)}"
                assert all(w.proc.poll() is None for w in workers), "\n---\n".join(w.output() for w in workers)
                time.sleep(0.25)
        finally:
            for w in workers:
                w.stop()

    by_id = Counter(r.message_id for r in fake.messages())
    rows = {
        pk: (s, a, h or [])
        for pk, s, a, h in Message.objects.filter(event=event).values_list("pk", "status", "attempts", "history")
    }
    context = f"seed {seed}, kills at provider request counts {kills}"
    assert len(kills) == KILLS
    # every message sent, at least once
    assert {int(k) for k in by_id} == ids, context
    assert Counter(s for s, _a, _h in rows.values()) == {"sent": MESSAGES}, context
    # no silent duplicate: a message the provider got twice counts two attempts and says why
    dups = {int(k) for k, c in by_id.items() if c > 1}
    flagged = {
        pk
        for pk, (_s, a, h) in rows.items()
        if a >= 2 and any(e.get("code") == errors.SENDING_OUTCOME_UNKNOWN for e in h)
    }
    assert dups <= flagged, f"{context}: silent duplicates {sorted(dups - flagged)[:20]}"
    # a kill re-sends at most one window of messages on the wire
    assert len(dups) / KILLS <= pipeline.SEND_WINDOW, f"{context}: {len(dups)} duplicates"
    # and every request the provider got is counted in its message's attempts
    assert all(rows[int(k)][1] >= c for k, c in by_id.items()), context
