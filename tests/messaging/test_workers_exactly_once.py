"""A message is never sent twice, whatever the number of workers: real `casemsg worker` processes on
PostgreSQL + Redis against a fake gateway in its own process; concurrent claims on any database; and the
sweeper that returns rows whose worker died mid-send."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.db.models import Count
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.services import create_project
from tests.conftest import database_url, queue_url, sandbox_gateway
from tests.messaging.conftest import KE, deliver, msg, send

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 13  # a database number of its own, flushed before and after
ACTIVE = [Message.QUEUED, Message.SENDING]

multi_process = pytest.mark.skipif(
    not (settings.IS_POSTGRES and settings.QUEUE_URL.startswith("redis://")),
    reason="worker processes need PostgreSQL and Redis (CASEMSG_DATABASE_URL=postgresql://…, "
    "CASEMSG_QUEUE_URL=redis://…)",
)


# --- helpers for the multi-process tests ---------------------------------------------------------
class Workers:
    """`casemsg worker` processes, as an operator would start them on several machines."""

    def __init__(self, count: int, threads: int = 4):
        self.count, self.threads = count, threads
        self.procs: list[subprocess.Popen] = []
        self.logs: list = []
        self.data_dir = tempfile.TemporaryDirectory(prefix="casemsg-worker-")
        self.final_output = ""

    def start(self) -> Workers:
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
        env.update(
            CASEMSG_QUEUE_IMMEDIATE="0",
            CASEMSG_DATABASE_URL=database_url(),
            CASEMSG_QUEUE_URL=queue_url(REDIS_DB),
            CASEMSG_DATA_DIR=self.data_dir.name,
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="casemsg.settings",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        )
        for _ in range(self.count):
            log = tempfile.TemporaryFile(mode="w+")
            self.logs.append(log)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "casemsg", "worker", "--workers", str(self.threads)],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        return self

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def output(self) -> str:
        out = []
        for log in self.logs:
            log.seek(0)
            out.append(log.read()[-3000:])
        return "\n---\n".join(out)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.final_output = self.output()
        for log in self.logs:
            log.close()
        self.data_dir.cleanup()

    def __enter__(self) -> Workers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_until_done(workers: Workers, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while Message.objects.filter(status__in=ACTIVE).exists():
        assert workers.alive(), f"a worker died:\n{workers.output()}"
        assert time.monotonic() < deadline, (
            f"{Message.objects.filter(status__in=ACTIVE).count()} messages still queued after {timeout} s:\n"
            f"{workers.output()}"
        )
        time.sleep(0.2)


def _queue_many(project, n: int) -> list[int]:
    """n cases (bulk, the import path) and one message each, queued but not yet due."""
    cases: list[Case] = []
    for start in range(0, n, 1000):
        changes = [
            CaseChange(
                case_type="person", name=f"Person {i}", properties={"contact_phone_number": f"2547{10000000 + i}"}
            )
            for i in range(start, min(n, start + 1000))
        ]
        cases += bulk_upsert(project, changes)
    event = MessagingEvent.objects.create(project=project, source="system", description="exactly-once test")
    later = timezone.now() + timedelta(hours=1)  # nothing is due until every worker is running
    specs = [pipeline.MessageSpec(case=c, text="Hello {case.name}", send_after=later) for c in cases]
    for start in range(0, n, 1000):
        pipeline.queue(project, specs[start : start + 1000], event)
    ids = list(Message.objects.filter(event=event, status=Message.QUEUED).values_list("pk", flat=True))
    assert len(ids) == n
    return ids


@multi_process
@pytest.mark.parametrize("processes", [2, 4])
def test_worker_processes_send_every_message_exactly_once(
    transactional_db, redis_queue, fake_gateway_process, processes
):
    fake = fake_gateway_process("http", lean=True)
    project, _key = create_project("bulk", "Bulk")
    add_gateway("fake-http", "http", fake.gateway_config())
    map_prefix("*", "fake-http")
    ids = _queue_many(project, 2000)
    with Workers(processes) as workers:
        time.sleep(0.5)
        Message.objects.filter(pk__in=ids).update(next_attempt_on=timezone.now())  # all due at once
        _wait_until_done(workers)
    # the workers ran on the Redis queue, and each of them came up
    assert workers.final_output.count("casemsg worker: 4 threads, queue PriorityRedisHuey") == processes, (
        workers.final_output
    )
    counts = fake.count_by_message_id()
    assert len(fake.requests()) == 2000, "the gateway was called more (or less) than once per message"
    assert set(counts) == {str(i) for i in ids}
    assert set(counts.values()) == {1}
    statuses = dict(Message.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("pk")))
    assert statuses == {"sent": 2000}
    assert Message.objects.filter(pk__in=ids, attempts=1).count() == 2000
    assert Message.objects.filter(pk__in=ids, gateway_name="fake-http").exclude(provider_id="").count() == 2000


@multi_process
def test_rate_limit_is_shared_by_all_worker_processes(transactional_db, redis_queue, fake_gateway_process):
    fake = fake_gateway_process("http", lean=True)
    project, _key = create_project("paced", "Paced")
    add_gateway("paced-http", "http", fake.gateway_config(), rate_limit=50)
    map_prefix("*", "paced-http")
    ids = _queue_many(project, 200)
    with Workers(2) as workers:
        time.sleep(0.5)
        Message.objects.filter(pk__in=ids).update(next_attempt_on=timezone.now())
        _wait_until_done(workers)
    got = fake.messages()
    assert len(got) == 200 and set(fake.count_by_message_id().values()) == {1}
    # what the provider measures over a second or two; within half a second, two processes' timers may
    # bunch a few messages by some tens of milliseconds
    for window in (1.0, 2.0):
        assert fake.max_in_window(window) <= 50 * window + 1, window
    assert fake.max_in_window(0.5) <= 50 * 0.5 + 5
    times = sorted(r.t for r in got)
    assert times[-1] - times[0] >= 3.5  # 200 at 50/s: about 4 s


# --- concurrent claims, any database -------------------------------------------------------------
def test_concurrent_claims_never_share_a_row(transactional_db):
    """Four threads (each its own database connection) claim from the same 400 due rows at once."""
    project, _key = create_project("claims", "Claims")
    sandbox_gateway()
    cases = bulk_upsert(
        project,
        [CaseChange(case_type="p", properties={"contact_phone_number": f"2547{20000000 + i}"}) for i in range(400)],
    )
    event = MessagingEvent.objects.create(project=project, source="system")
    later = timezone.now() + timedelta(hours=1)
    pipeline.queue(project, [pipeline.MessageSpec(case=c, text="Hi", send_after=later) for c in cases], event)
    Message.objects.update(next_attempt_on=timezone.now())
    claimed: list[list[int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            mine: list[int] = []
            while batch := pipeline.claim(limit=25):
                mine += [m.pk for m in batch]
            claimed.append(mine)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    every = [pk for mine in claimed for pk in mine]
    assert len(every) == len(set(every)) == 400
    assert Message.objects.filter(status=Message.SENDING).count() == 400
    assert Message.objects.values("claim").distinct().count() > 1


def test_concurrent_deliveries_send_each_message_once(transactional_db, fake_http):
    """Two threads run the worker function itself at the same time against one fake provider."""
    project, _key = create_project("twice", "Twice")
    add_gateway("fake", "http", fake_http.gateway_config())
    map_prefix("*", "fake")
    cases = bulk_upsert(
        project,
        [CaseChange(case_type="p", properties={"contact_phone_number": f"2547{30000000 + i}"}) for i in range(300)],
    )
    event = MessagingEvent.objects.create(project=project, source="system")
    later = timezone.now() + timedelta(hours=1)
    pipeline.queue(project, [pipeline.MessageSpec(case=c, text="Once", send_after=later) for c in cases], event)
    Message.objects.update(next_attempt_on=timezone.now())
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait()
            pipeline.deliver_due(batch_size=20)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert Message.objects.filter(status=Message.SENT).count() == 300
    assert len(fake_http.requests()) == 300
    assert set(fake_http.count_by_message_id().values()) == {1}


# --- the sweeper ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_sweeper_requeues_rows_stuck_in_sending(api, sandbox, settings):
    settings.CASEMSG_SENDING_TIMEOUT_SECONDS = 300
    case = api.case({"contact_phone_number": KE})
    stuck = send(api, case["case_id"], text="Stuck")
    fresh = send(api, case["case_id"], text="Fresh")
    claimed = pipeline.claim()  # a worker takes both … and dies
    assert {m.pk for m in claimed} == {stuck["id"], fresh["id"]}
    assert {msg(stuck).status, msg(fresh).status} == {"sending"}
    # `stuck` had been handed to the gateway (counted, on the wire) when its worker died; `fresh` not yet
    Message.objects.filter(pk=stuck["id"]).update(
        claimed_on=timezone.now() - timedelta(seconds=301), wire_on=timezone.now() - timedelta(seconds=300), attempts=1
    )
    Message.objects.filter(pk=fresh["id"]).update(claimed_on=timezone.now() - timedelta(seconds=200))

    assert deliver() == 0  # rows in `sending` are nobody else's to take
    assert pipeline.sweep() == 1
    row = msg(stuck)
    assert (row.status, row.delay_reason, row.claim, row.error) == ("queued", "SENDING_OUTCOME_UNKNOWN", "", "")
    assert "unknown" in row.error_detail
    assert msg(fresh).status == "sending"  # still within its worker's time
    got = api.get(f"messages/{row.pk}").json()
    assert (got["status"], got["delay_reason"]) == ("queued", "SENDING_OUTCOME_UNKNOWN")

    deliver()
    row = msg(stuck)
    assert (row.status, row.delay_reason) == ("sent", "")
    # sent again after an unknown outcome: two attempts, and its history says why
    assert row.attempts == 2
    assert [h["code"] for h in row.history] == ["SENDING_OUTCOME_UNKNOWN"]
    assert [h["code"] for h in api.get(f"messages/{row.pk}").json()["history"]] == ["SENDING_OUTCOME_UNKNOWN"]
    assert msg(fresh).status == "sending"
    assert pipeline.sweep(timeout_seconds=100) == 1
    # never handed over: back to the queue with nothing unknown about it
    assert (msg(fresh).status, msg(fresh).delay_reason, msg(fresh).history) == ("queued", "", [])
    deliver()
    assert (msg(fresh).status, msg(fresh).attempts) == ("sent", 1)


@pytest.mark.django_db
def test_sweeper_leaves_other_states_alone(api, sandbox):
    case = api.case({"contact_phone_number": KE})
    m = send(api, case["case_id"])
    deliver()
    old = timezone.now() - timedelta(days=1)
    Message.objects.filter(pk=m["id"]).update(claimed_on=old)
    assert pipeline.sweep() == 0
    assert msg(m).status == "sent"
