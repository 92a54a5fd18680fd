"""A recurring broadcast to a dynamic group reads its recipients at each occurrence: a case created after the
broadcast gets the next occurrence, a case whose property stops matching gets nothing more (and one that
matches again rejoins), a case whose date comes within the group's window joins without any write — and no
one gets an occurrence twice: with the tick run twice, with four tickers at once (threads, any database),
and with two real `casemsg worker` processes (PostgreSQL and Redis). The pre-flight and a case's coming
sends say so; "N times" is N sends."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert, update_case
from casemsg.groups import services as group_services
from casemsg.messaging.models import Message
from casemsg.projects.services import create_project
from casemsg.scheduling import preflight, queries, services, tick
from casemsg.scheduling.models import Broadcast, ScheduleInstance
from tests.conftest import database_url, queue_url, sandbox_gateway

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 10  # a queue of its own, flushed before and after (the redis_queue fixture)
_numbers = iter(range(10_000_000, 99_999_999))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def mothers(project, *districts: str, **props: str) -> list[Case]:
    return bulk_upsert(
        project,
        [
            CaseChange(
                case_type="mother",
                name=f"M{i}",
                properties={"contact_phone_number": f"2547{next(_numbers)}", "district": d, **props},
            )
            for i, d in enumerate(districts)
        ],
    )


def north(project, name: str = "North", **extra) -> int:
    conditions = [{"property": "district", "operator": "equals", "value": "North"}, *extra.get("more", [])]
    g = group_services.create_group(
        project, {"name": name, "kind": "dynamic", "case_type": "mother", "conditions": conditions}
    )
    return g.pk


def sends(b: Broadcast) -> Counter[tuple[str, int]]:
    """(case id, occurrence) → messages queued for it."""
    out: Counter[tuple[str, int]] = Counter()
    for case_id, key in Message.objects.filter(event_id=b.event_id).values_list("case__case_id", "send_key"):
        out[(case_id, int(key.rsplit(":", 1)[1]))] += 1
    return out


def daily(project, group: int, now: datetime, **schedule) -> Broadcast:
    body = {
        "name": "Tip",
        "content": {"text": "Tip for {case.name}"},
        "recipients": {"group": group},
        "schedule": {"type": "daily", "time": "09:00", "time_zone": "UTC", **schedule},
    }
    return services.create_broadcast(project, body, now)


def test_recurring_broadcast_to_a_dynamic_group_reads_it_at_each_occurrence(project):
    a, b = mothers(project, "North", "North")
    (c,) = mothers(project, "South")
    group = north(project)
    day0 = utc(2027, 6, 1, 8)
    pre = preflight.preflight(
        project,
        {
            "name": "Tip",
            "content": {"text": "Hi"},
            "recipients": {"group": group},
            "schedule": {"type": "daily", "time": "09:00", "time_zone": "UTC", "count": 3},
        },
        day0,
    )
    assert (pre.recipients, pre.at_each_send) == (2, True) and "joins from the next send" in pre.recipients_note
    bc = daily(project, group, day0, count=3)
    assert bc.refresh_due_utc == utc(2027, 6, 1, 9)

    tick.tick(utc(2027, 6, 1, 9, 0, 30))
    assert sends(bc) == {(a.case_id, 0): 1, (b.case_id, 0): 1}

    # after the first send: a new case that matches, and a case that stops matching
    (d,) = mothers(project, "North")
    update_case(project, b, CaseChange(properties={"district": "South"}))
    coming = queries.schedule_for_case(d, now=utc(2027, 6, 1, 12))
    assert coming and coming[0]["joins"] and coming[0]["due_utc"] == utc(2027, 6, 2, 9)
    assert "Joins at the next send" in coming[0]["note"]
    assert [i["due_utc"] for i in coming] == [utc(2027, 6, 2, 9), utc(2027, 6, 3, 9)]  # the count's rest
    member = queries.schedule_for_case(a, now=utc(2027, 6, 1, 12))
    assert not member[0]["joins"] and "While it matches" in member[0]["note"]

    second = utc(2027, 6, 2, 9, 0, 30)
    tick.tick(second)
    tick.tick(second)  # again: nothing twice
    assert sends(bc) == {(a.case_id, 0): 1, (b.case_id, 0): 1, (a.case_id, 1): 1, (d.case_id, 1): 1}
    left = ScheduleInstance.objects.get(broadcast=bc, case=b)
    assert (left.active, left.end_reason) == (False, "no_longer_matches")

    # b matches again: it rejoins at the next occurrence, the last of the three
    update_case(project, b, CaseChange(properties={"district": "North"}))
    tick.tick(utc(2027, 6, 3, 9, 0, 30))
    assert sends(bc) == {
        (a.case_id, 0): 1,
        (b.case_id, 0): 1,
        (a.case_id, 1): 1,
        (d.case_id, 1): 1,
        (a.case_id, 2): 1,
        (b.case_id, 2): 1,
        (d.case_id, 2): 1,
    }
    assert c.case_id not in {case_id for case_id, _n in sends(bc)}
    bc.refresh_from_db()
    assert (bc.status, bc.refresh_due_utc) == (Broadcast.DONE, None)


def test_a_date_coming_within_the_window_joins_without_any_write(project):
    """The group's date condition is read at each occurrence, with that day's date: no case changes."""
    (soon,) = mothers(project, "North", edd="2027-06-05")
    (later,) = mothers(project, "North", edd="2027-06-20")
    group = north(project, "Due soon", more=[{"property": "edd", "operator": "within_next_days", "value": 7}])
    bc = daily(project, group, utc(2027, 6, 1, 8))
    for day in range(1, 16):
        tick.tick(utc(2027, 6, day, 9, 0, 30))
    got = sends(bc)
    # soon: from 1 June until its date; later: from 13 June (20 − 7) on
    assert sorted(n for case_id, n in got if case_id == soon.case_id) == list(range(0, 5))
    assert sorted(n for case_id, n in got if case_id == later.case_id) == list(range(12, 15))
    assert set(got.values()) == {1}


def test_n_times_is_n_sends_when_todays_time_has_passed(project):
    mothers(project, "North")
    bc = daily(project, north(project), utc(2027, 6, 1, 10), count=7)  # 09:00 today has passed
    for day in range(1, 12):
        tick.tick(utc(2027, 6, day, 9, 0, 30))
    assert sorted(n for _c, n in sends(bc)) == list(range(7))
    first = Message.objects.filter(event_id=bc.event_id).order_by("next_attempt_on").first()
    assert first is not None and first.next_attempt_on == utc(2027, 6, 2, 9)


def test_four_tickers_at_once_never_send_an_occurrence_twice(transactional_db):
    project, _key = create_project("tickers", "Tickers")
    n = 600 if settings.IS_POSTGRES else 200
    mothers(project, *(["North"] * n))
    group = north(project)
    bc = daily(project, group, utc(2027, 6, 1, 8), count=3)
    tick.tick(utc(2027, 6, 1, 9, 0, 30))
    mothers(project, *(["North"] * 50))  # joiners
    Case.objects.filter(pk__in=Case.objects.order_by("pk").values("pk")[:20]).update(
        properties={"district": "South", "contact_phone_number": "254700000000"}
    )  # leavers (a write the hooks do not see: the occurrence reads the group anyway)
    now = utc(2027, 6, 2, 9, 0, 30)
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def ticker() -> None:
        try:
            barrier.wait()
            while tick.tick(now, batch=50, max_batches=1):
                pass
        except BaseException as exc:  # reported to the test thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ticker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    got = sends(bc)
    assert set(got.values()) == {1}
    assert sum(1 for _c, i in got if i == 1) == n - 20 + 50


# --------------------------------------------------------------------------------------------------
# Two real worker processes, on the real clock
# --------------------------------------------------------------------------------------------------

multi_process = pytest.mark.skipif(
    not (settings.IS_POSTGRES and settings.QUEUE_URL.startswith("redis://")),
    reason="worker processes need PostgreSQL and Redis (CASEMSG_DATABASE_URL=postgresql://…, "
    "CASEMSG_QUEUE_URL=redis://…)",
)


def _workers(count: int) -> tuple[list[subprocess.Popen], list, tempfile.TemporaryDirectory]:
    data_dir = tempfile.TemporaryDirectory(prefix="casemsg-worker-")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env.update(
        CASEMSG_QUEUE_IMMEDIATE="0",
        CASEMSG_DATABASE_URL=database_url(),
        CASEMSG_QUEUE_URL=queue_url(REDIS_DB),
        CASEMSG_DATA_DIR=data_dir.name,
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="casemsg.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    logs = [tempfile.TemporaryFile(mode="w+") for _ in range(count)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "casemsg", "worker", "--workers", "2"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    return procs, logs, data_dir


def _output(logs: list) -> str:
    out = []
    for log in logs:
        log.seek(0)
        out.append(log.read()[-3000:])
    return "\n---\n".join(out)


@multi_process
def test_two_worker_processes_follow_the_group_at_each_occurrence(transactional_db, redis_queue):
    """Three occurrences ten seconds apart, sent by two `casemsg worker` processes on the real clock: between
    the first and the second a case is created and another stops matching."""
    start = timezone.now().replace(microsecond=0) + timedelta(seconds=8)
    if start.date() != (start + timedelta(seconds=30)).date():
        pytest.skip("the three occurrences would cross midnight UTC")
    project, _key = create_project("workers", "Workers")
    sandbox_gateway()
    stay = mothers(project, *(["North"] * 30))
    group = north(project)
    times = [(start + timedelta(seconds=10 * k)).strftime("%H:%M:%S") for k in range(3)]
    bc = daily(project, group, timezone.now(), time=None, times=times, count=3)
    procs, logs, data_dir = _workers(2)
    try:

        def wait_for(occurrence: int, expected: int) -> None:
            deadline = time.monotonic() + 40
            while sum(1 for _c, i in sends(bc) if i == occurrence) < expected:
                assert all(p.poll() is None for p in procs), f"a worker died:\n{_output(logs)}"
                assert time.monotonic() < deadline, f"occurrence {occurrence}: {sends(bc)}\n{_output(logs)}"
                time.sleep(0.2)

        wait_for(0, 30)
        (newcomer,) = mothers(project, "North")
        update_case(project, stay[0], CaseChange(properties={"district": "South"}))
        wait_for(1, 30)
        wait_for(2, 30)
        time.sleep(2)  # (a duplicate would have time to appear)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        output = _output(logs)
        for log in logs:
            log.close()
        data_dir.cleanup()
    got = sends(bc)
    assert set(got.values()) == {1}, f"an occurrence was queued twice: {got}"
    assert {i for (c, i) in got if c == newcomer.case_id} == {1, 2}  # created after: the next occurrences
    assert {i for (c, i) in got if c == stay[0].case_id} == {0}  # stopped matching: nothing more
    assert sum(1 for _c, i in got if i == 2) == 30
    assert output.count("casemsg worker") >= 2, output
