"""kill -9 of the worker holding the SMPP bind, mid-send: a real `casemsg worker` process binds to the fake
SMSC (on this test's thread), is killed while messages are on the wire and restarted. No message is lost;
a message the SMSC got twice is one that was on the wire, unrecorded, when the worker died — never a
silent duplicate: it counts two attempts and its history says SENDING_OUTCOME_UNKNOWN — and there are at
most one send window of them."""

from __future__ import annotations

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
from casemsg.gateways.carrier.models import SubmitAck
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects.services import create_project
from tests.messaging.test_crash import REPO_ROOT, Worker, _env

MESSAGES = 1500
REDIS_DB = 9  # a queue of its own, flushed before and after (the redis_queue fixture)
DEADLINE = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.crash,
    pytest.mark.skipif(
        not (settings.IS_POSTGRES and settings.QUEUE_URL.startswith("redis://")),
        reason="worker processes need PostgreSQL and Redis (CASEMSG_DATABASE_URL=postgresql://…, "
        "CASEMSG_QUEUE_URL=redis://…)",
    ),
]


def test_kill_9_of_the_worker_holding_the_bind_loses_nothing_and_marks_each_duplicate(
    transactional_db,
    redis_queue,  # noqa: F811
    smsc,
):
    project, _key = create_project("smpp-crash", "SMPP crash")
    config = {"host": "127.0.0.1", "port": smsc.port, "system_id": "casemsg", "password": "pw", "window": 10}
    add_gateway("operator", "smpp", config)
    map_prefix("*", "operator")
    changes = [
        CaseChange(case_type="person", name=f"P{i}", properties={"contact_phone_number": f"2547{40000000 + i}"})
        for i in range(MESSAGES)
    ]
    cases = [c for start in range(0, MESSAGES, 1000) for c in bulk_upsert(project, changes[start : start + 1000])]
    event = MessagingEvent.objects.create(project=project, source="system", description="smpp crash test")
    later = timezone.now() + timedelta(hours=1)  # nothing is due until the worker is up
    pipeline.queue(project, [pipeline.MessageSpec(case=c, text="Hello", send_after=later) for c in cases], event)
    phone = {c.pk: c.properties["contact_phone_number"] for c in cases}
    numbers = {phone[case]: pk for case, pk in Message.objects.filter(event=event).values_list("case_id", "pk")}
    assert len(numbers) == MESSAGES

    with tempfile.TemporaryDirectory(prefix="casemsg-smpp-crash-") as tmp:
        env = {**_env(tmp), "CASEMSG_QUEUE_URL": redis_queue}
        worker = Worker(env, Path(tmp, "worker-1.log"))
        try:
            deadline = time.monotonic() + 60
            while not (worker.ready() and smsc.bound_sessions):  # it binds at start
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.05)
            Message.objects.filter(event=event).update(next_attempt_on=timezone.now())
            while smsc.submit_count < MESSAGES // 3:
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.002)
            worker.kill()
            killed_at = smsc.submit_count
            worker = Worker(env, Path(tmp, "worker-2.log"))
            deadline = time.monotonic() + DEADLINE
            while Message.objects.filter(event=event, status__in=[Message.QUEUED, Message.SENDING]).exists():
                left = Counter(Message.objects.filter(event=event).values_list("status", flat=True))
                assert time.monotonic() < deadline, f"killed at {killed_at}: not all sent {dict(left)}"
                assert worker.proc.poll() is None, worker.output()
                time.sleep(0.25)
        finally:
            worker.stop()

    got = Counter(s.destination for s in smsc.submits)
    rows = {
        pk: (s, a, h or [])
        for pk, s, a, h in Message.objects.filter(event=event).values_list("pk", "status", "attempts", "history")
    }
    context = f"killed at {killed_at} submits; {smsc.submit_count} in all"
    assert set(got) == set(numbers), context  # nothing lost
    assert {s for s, _a, _h in rows.values()} <= {Message.SENT, Message.DELIVERED}, context
    dups = {numbers[n] for n, c in got.items() if c > 1}
    flagged = {
        pk
        for pk, (_s, a, h) in rows.items()
        if a >= 2 and any(e.get("code") == errors.SENDING_OUTCOME_UNKNOWN for e in h)
    }
    assert dups <= flagged, f"{context}: silent duplicates {sorted(dups - flagged)[:20]}"
    assert len(dups) <= pipeline.SEND_WINDOW, f"{context}: {len(dups)} duplicates"
    assert all(rows[numbers[n]][1] >= c for n, c in got.items()), context  # every submit is an attempt
    assert len(smsc.binds) >= 2  # the new worker bound again


def test_kill_9_retries_only_the_unacknowledged_submits_each_marked(
    transactional_db,
    redis_queue,  # noqa: F811
    smsc,
):
    """Deterministic: the SMSC answers 30 submits, then takes the rest without answering; once the worker
    has journaled the 30 acknowledgements it is killed. Those 30 are sent, with their ids, never again and
    unmarked; only the unacknowledged are sent again, each marked SENDING_OUTCOME_UNKNOWN."""
    project, _key = create_project("smpp-crash-acks", "SMPP crash acks")
    config = {"host": "127.0.0.1", "port": smsc.port, "system_id": "casemsg", "password": "pw", "window": 10}
    add_gateway("operator", "smpp", {**config, "timeout": 60, "registered_delivery": False})
    map_prefix("*", "operator")
    n = 200
    changes = [
        CaseChange(case_type="person", name=f"P{i}", properties={"contact_phone_number": f"2547{41000000 + i}"})
        for i in range(n)
    ]
    cases = bulk_upsert(project, changes)
    event = MessagingEvent.objects.create(project=project, source="system", description="smpp acks test")
    later = timezone.now() + timedelta(hours=1)
    pipeline.queue(project, [pipeline.MessageSpec(case=c, text="Hello", send_after=later) for c in cases], event)
    ids = list(Message.objects.filter(event=event).values_list("pk", flat=True))
    smsc.hold_after(30)
    with tempfile.TemporaryDirectory(prefix="casemsg-smpp-acks-") as tmp:
        env = {**_env(tmp), "CASEMSG_QUEUE_URL": redis_queue}
        worker = Worker(env, Path(tmp, "worker-1.log"))
        try:
            deadline = time.monotonic() + 60
            while not (worker.ready() and smsc.bound_sessions):
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.05)
            Message.objects.filter(event=event).update(next_attempt_on=timezone.now())
            while not (len(smsc.answered) == 30 and len(smsc.unanswered) == 10):
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.01)
            while SubmitAck.objects.filter(message_id__in=ids).count() < 30:  # journaled
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.01)
            worker.kill()
            smsc.release()
            worker = Worker(env, Path(tmp, "worker-2.log"))
            while Message.objects.filter(event=event, status__in=[Message.QUEUED, Message.SENDING]).exists():
                assert time.monotonic() < deadline + DEADLINE, worker.output()
                assert worker.proc.poll() is None, worker.output()
                time.sleep(0.2)
        finally:
            worker.stop()
    acked = {s.destination: s.message_id for s in smsc.submits if s.message_id in set(smsc.answered[:30])}
    held = {s.destination for s in smsc.unanswered}
    got = Counter(s.destination for s in smsc.submits)
    rows = {
        to: (status, pid, [e for e in h or [] if e.get("code") == errors.SENDING_OUTCOME_UNKNOWN])
        for to, status, pid, h in Message.objects.filter(event=event).values_list(
            "to", "status", "provider_id", "history"
        )
    }
    assert set(got) == set(rows) and {s for s, _p, _h in rows.values()} == {Message.SENT}  # nothing lost
    for to, pid in acked.items():  # acknowledged: once, with its id, unmarked
        assert got[to] == 1 and rows[to][1] == pid and rows[to][2] == [], to
    for to in held:  # unanswered: the only duplicates, each marked
        assert got[to] == 2 and rows[to][2], to
    assert {to for to, c in got.items() if c > 1} == held
    assert all(got[to] == 1 for to, (_s, _p, h) in rows.items() if not h)  # no silent duplicate


class SmppProcess(Worker):
    """`casemsg smpp`: the one process holding a `bind_per: process` gateway's bind."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log_path = log
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "casemsg", "smpp"], cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )


def test_two_worker_processes_and_one_casemsg_smpp_make_exactly_one_bind(
    transactional_db,
    redis_queue,  # noqa: F811
    smsc,
):
    project, _key = create_project("smpp-one-bind", "SMPP one bind")
    config = {"host": "127.0.0.1", "port": smsc.port, "system_id": "casemsg", "password": "pw", "window": 10}
    add_gateway("operator", "smpp", {**config, "bind_per": "process", "registered_delivery": False})
    map_prefix("*", "operator")
    n = 600
    changes = [
        CaseChange(case_type="person", name=f"P{i}", properties={"contact_phone_number": f"2547{42000000 + i}"})
        for i in range(n)
    ]
    cases = bulk_upsert(project, changes)
    event = MessagingEvent.objects.create(project=project, source="system", description="one bind")
    later = timezone.now() + timedelta(hours=1)
    pipeline.queue(project, [pipeline.MessageSpec(case=c, text="Hello", send_after=later) for c in cases], event)
    with tempfile.TemporaryDirectory(prefix="casemsg-smpp-one-bind-") as tmp:
        env = {**_env(tmp), "CASEMSG_QUEUE_URL": redis_queue}
        procs = [SmppProcess(env, Path(tmp, "smpp.log"))] + [Worker(env, Path(tmp, f"worker-{i}.log")) for i in (1, 2)]
        try:
            deadline = time.monotonic() + 60
            while not (all(p.ready() for p in procs[1:]) and smsc.bound_sessions):
                assert time.monotonic() < deadline, [p.output() for p in procs]
                time.sleep(0.05)
            Message.objects.filter(event=event).update(next_attempt_on=timezone.now())
            while Message.objects.filter(event=event, status__in=[Message.QUEUED, Message.SENDING]).exists():
                assert time.monotonic() < deadline, [p.output() for p in procs]
                time.sleep(0.1)
        finally:
            for p in procs:
                p.stop()
    assert len(smsc.binds) == 1  # the smpp process's; neither worker bound
    got = Counter(s.destination for s in smsc.submits)
    assert len(got) == n and set(got.values()) == {1}  # every message once
    assert set(Message.objects.filter(event=event).values_list("status", flat=True)) == {Message.SENT}
