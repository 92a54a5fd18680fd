"""Exactly once, visibly: an Idempotency-Key answers a retried request with the first message, and a
broker outage delays messages but never fails a request that was accepted (the database is the truth)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from huey.storage import PriorityRedisStorage

from casemsg.inbound import tasks as inbound_tasks
from casemsg.messaging import tasks
from casemsg.messaging.models import IdempotencyKey, Message
from tests.messaging.conftest import KE, deliver, msg


def post(api, key: str | None, text: str = "Hello", case_id: str = "c1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.client.post(
        api.url("messages"),
        json.dumps({"recipient": {"case_id": case_id}, "text": text}),
        content_type="application/json",
        **api._h(None),
        **headers,
    )


@pytest.fixture
def case(api, sandbox):
    return api.case({"contact_phone_number": KE}, case_id="c1")


def test_same_key_same_message_nothing_sent_twice(api, case):
    first = post(api, "order-17")
    assert first.status_code == 202, first.content
    again = post(api, "order-17")
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.filter(direction="out").count() == 1
    deliver()
    assert post(api, "order-17").json()["status"] == "sent"  # the same message, as it is now
    assert api.get("sandbox/outbox").json()["count"] == 1


def test_same_key_other_body_is_refused(api, case):
    assert post(api, "k-1").status_code == 202
    r = post(api, "k-1", text="Something else")
    assert r.status_code == 409 and r.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert Message.objects.filter(direction="out").count() == 1


def test_keys_are_per_project_and_expire_after_a_day(api, other_api, case, other_project):
    assert post(api, "k-2").status_code == 202
    other_api.case({"contact_phone_number": KE}, case_id="c1")
    # the other project's identical key is its own
    assert post(other_api, "k-2").json()["id"] != post(api, "k-2").json()["id"]
    IdempotencyKey.objects.update(created_on=timezone.now() - timedelta(hours=25))
    assert post(api, "k-2").json()["id"] != Message.objects.order_by("pk").first().pk
    assert Message.objects.filter(direction="out", project__slug="alpha").count() == 2


def test_no_key_sends_each_time(api, case):
    assert post(api, None).json()["id"] != post(api, None).json()["id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "a\x00b"])
def test_bad_keys_are_refused(api, case, key):
    r = post(api, key)
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_VALUE"


@pytest.fixture
def broker_down(monkeypatch):
    """The queue broker is unreachable (nothing listens on port 1) and the queue is not immediate."""
    monkeypatch.setattr(HUEY, "_immediate", False)
    monkeypatch.setattr(HUEY, "storage", PriorityRedisStorage("casemsg-down", host="127.0.0.1", port=1))
    with pytest.raises(Exception):  # noqa: B017 — whichever error the client raises, it is down
        HUEY.pending_count()


def test_broker_down_still_accepts_and_the_ticker_sends(transactional_db, api, sandbox, broker_down):
    api.case({"contact_phone_number": KE}, case_id="c1")
    r = post(api, None)
    assert r.status_code == 202, r.content  # the row is stored; the wake-up failed quietly
    assert msg(r.json()["id"]).status == "queued"
    tasks.tick(workers=1)  # a worker's ticker: the broker is still away, so it sends directly
    assert msg(r.json()["id"]).status == "sent"


def test_broker_down_an_inbound_message_is_stored_and_handled_later(transactional_db, api, sandbox, broker_down):
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, case_id="c1")
    r = api.post("sandbox/incoming", {"phone_number": KE, "text": "STOP"})
    assert r.status_code == 202, r.content
    (row,) = Message.objects.filter(direction="in")
    assert row.next_attempt_on is not None  # waiting: its job could not be queued
    Message.objects.filter(pk=row.pk).update(next_attempt_on=timezone.now() - timedelta(seconds=2))
    inbound_tasks.tick()  # the ticker handles what waited over a second
    assert Message.objects.get(pk=row.pk).next_attempt_on is None
    tasks.tick(workers=1)
    assert [m["text"] for m in api.get("sandbox/outbox").json()["items"]][0].startswith("You are unsubscribed")
