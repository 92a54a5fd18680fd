"""kill -9 of the worker holding the SMPP bind, mid-send: a real `casemsg worker` process binds to the fake
SMSC (on this test's thread), is killed while messages are on the wire and restarted. No message is lost;
a message the SMSC got twice is one that was on the wire, unrecorded, when the worker died — never a
silent duplicate: it counts two attempts and its history says SENDING_OUTCOME_UNKNOWN — and there are at
most one send window of them."""

from __future__ import annotations

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
from tests.messaging.test_crash import Worker, _env

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
