"""Several workers tick at once (threads, each with its own database connection): every occurrence is
queued exactly once, and every instance advances exactly once. On PostgreSQL the tickers claim disjoint
rows (SKIP LOCKED); on SQLite their IMMEDIATE transactions queue on the write lock."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.conf import settings
from django.db import connections

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.messaging.models import Message
from casemsg.projects.services import create_project
from casemsg.scheduling import services, tick
from casemsg.scheduling.models import ScheduleInstance
from tests.scheduling.engine_helpers import utc

N = 2000 if settings.IS_POSTGRES else 400


@pytest.mark.parametrize("tickers", [4])
def test_workers_ticking_at_once_send_each_occurrence_once(transactional_db, tickers):
    project, _key = create_project("tickers", "Tickers")
    for start in range(0, N, 1000):
        bulk_upsert(
            project,
            [
                CaseChange(case_type="mother", properties={"contact_phone_number": f"2547{30000000 + i}"})
                for i in range(start, min(N, start + 1000))
            ],
        )
    services.create_broadcast(
        project,
        {
            "name": "Daily",
            "content": {"text": "Hello {case.name}"},
            "recipients": {"case_type": "mother"},
            "schedule": {"type": "daily", "time": "09:00", "start_date": "2027-06-01", "time_zone": "UTC"},
        },
        utc(2027, 5, 31),
    )
    now = utc(2027, 6, 1, 9, 0, 30)
    # The occurrence first reads the broadcast's recipients again (a case type): one ticker does it, while
    # the others skip the broadcast and its instances (tests/groups/test_recurring_broadcast.py ticks them
    # all at once); here the instances are then shared.
    assert tick.refresh_broadcasts(now) == 1
    done: list[int] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(tickers)

    def ticker() -> None:
        try:
            barrier.wait()
            n = 0
            while True:
                got = tick.tick(now, batch=50, max_batches=1)
                if not got:
                    break
                n += got
            done.append(n)
        except BaseException as exc:  # reported to the test thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ticker) for _ in range(tickers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert sum(done) == N  # no instance was processed twice
    keys = Counter(Message.objects.exclude(send_key="").values_list("send_key", flat=True))
    assert len(keys) == N and set(keys.values()) == {1}
    assert set(ScheduleInstance.objects.values_list("iteration", flat=True)) == {1}
    if settings.IS_POSTGRES:
        assert len([n for n in done if n]) > 1  # the work was shared
