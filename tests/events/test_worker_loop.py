"""The worker's delivery loop (`casemsg worker` runs it in a thread): endpoints never wait for each other."""

from __future__ import annotations

import threading
import time

import pytest

from casemsg.consent import optout
from casemsg.events import deliver, services
from casemsg.events.models import Delivery


@pytest.mark.django_db(transaction=True)
def test_a_slow_endpoint_does_not_hold_back_a_fast_one(project, receiver, settings):
    settings.CASEMSG_WEBHOOK_CONCURRENCY = 10
    slow = receiver(delay=3.0)
    fast = receiver()
    services.create_endpoint(project, slow.url, ["optout.changed"])
    services.create_endpoint(project, fast.url, ["optout.changed"])
    for i in range(60):
        optout.opt_out(f"2547120000{i:02d}", project=project, source="api")
    assert Delivery.objects.count() == 120

    stop = threading.Event()
    thread = threading.Thread(target=deliver.run, args=(stop, 0.1), daemon=True)
    started = time.time()
    thread.start()
    try:
        while len(fast.hits) < 60 and time.time() - started < 15:
            time.sleep(0.02)
        fast_done = time.time() - started
        slow_then = len(slow.hits)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(fast.hits) == 60
    # all 60 went to the fast endpoint while the slow one still held its first 10 (3 s each)
    assert fast_done < 3.0 and slow_then <= 10, (fast_done, slow_then)
    # stopping waits for the posts on the wire and stores their outcomes
    assert Delivery.objects.filter(delivered_on__isnull=False).count() == 60 + len(slow.hits)
    assert Delivery.objects.filter(claim="").count() == 120
    assert len(slow.hits) == 10  # the slow one was never given more than its room
