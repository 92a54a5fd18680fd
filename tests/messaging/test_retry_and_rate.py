"""Transient failures are retried with backoff; the per-gateway rate limit, counted in segments, holds a
burst to what the gateway accepts — measured by the fake provider's own clock, as a provider would."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import segments
from casemsg.messaging.models import Message
from tests.messaging.conftest import KE, deliver, msg, send

pytestmark = pytest.mark.django_db


def _case(api, number: str = KE) -> str:
    return api.case({"contact_phone_number": number})["case_id"]


def _make_due(m: dict) -> None:
    """Let the backoff pass without waiting for it."""
    Message.objects.filter(pk=m["id"]).update(next_attempt_on=timezone.now())


# --- retries -------------------------------------------------------------------------------------
def test_retry_on_500_then_success(api, settings, fake_http, http_gateway):
    settings.CASEMSG_RETRY_BASE_SECONDS = 30
    fake_http.fail(times=1, status=500)
    m = send(api, _case(api))
    before = timezone.now()
    deliver()
    row = msg(m)
    assert (row.status, row.attempts, row.error) == ("queued", 1, "")
    assert "500" in row.error_detail
    # backoff: the first retry waits the base delay; nothing is sent before it is due
    assert before + timedelta(seconds=29) <= row.next_attempt_on <= timezone.now() + timedelta(seconds=31)
    deliver()
    assert len(fake_http.requests()) == 1
    _make_due(m)
    deliver()
    row = msg(m)
    assert (row.status, row.attempts, row.error) == ("sent", 2, "")
    got = fake_http.requests()
    assert [r.status for r in got] == [500, 200]
    assert got[1].message_id == str(row.pk) and row.provider_id == got[1].provider_id
    assert api.get(f"messages/{row.pk}").json()["status"] == "sent"


def test_backoff_doubles_with_each_attempt(api, settings, fake_http, http_gateway):
    settings.CASEMSG_RETRY_BASE_SECONDS = 10
    fake_http.fail(times=2, status=503)
    m = send(api, _case(api))
    deliver()
    assert msg(m).attempts == 1
    _make_due(m)
    before = timezone.now()
    deliver()
    row = msg(m)
    assert (row.status, row.attempts) == ("queued", 2)
    assert before + timedelta(seconds=19) <= row.next_attempt_on <= timezone.now() + timedelta(seconds=21)
    _make_due(m)
    deliver()
    assert (msg(m).status, msg(m).attempts) == ("sent", 3)


@pytest.mark.parametrize("status", [429, 502])
def test_429_and_5xx_are_transient(api, settings, fake_http, http_gateway, status):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    fake_http.fail(times=2, status=status)
    m = send(api, _case(api))
    deliver()
    assert (msg(m).status, msg(m).attempts) == ("sent", 3)
    assert [r.status for r in fake_http.requests()] == [status, status, 200]


def test_twilio_rate_limit_code_is_retried(api, settings, fake_twilio, twilio_gateway):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    fake_twilio.error_for(KE, 20429, times=1)
    m = send(api, _case(api))
    deliver()
    assert (msg(m).status, msg(m).attempts) == ("sent", 2)
    assert len(fake_twilio.messages()) == 1


def test_dropped_connection_and_timeout_are_retried(api, settings, fake_http):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    add_gateway("impatient", "http", fake_http.gateway_config(timeout=0.5))
    map_prefix("*", "impatient")
    fake_http.disconnect(times=1)
    fake_http.delay(2.0, times=1)
    m = send(api, _case(api))
    deliver()
    row = msg(m)
    assert (row.status, row.attempts) == ("sent", 3)
    got = fake_http.requests()
    assert got[0].status == 0  # dropped without an answer
    assert got[-1].accepted and got[-1].message_id == str(row.pk) and row.provider_id == got[-1].provider_id


def test_a_permanent_failure_is_not_retried(api, settings, fake_http, http_gateway):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    fake_http.fail(times=1, status=403)
    m = send(api, _case(api))
    for _ in range(3):
        deliver()
    assert (msg(m).status, msg(m).error, msg(m).attempts) == ("failed", "GATEWAY_ERROR", 1)
    assert len(fake_http.requests()) == 1


def test_retries_do_not_hold_back_other_messages(api, settings, fake_http, http_gateway):
    settings.CASEMSG_RETRY_BASE_SECONDS = 60
    other = "254722000001"
    fake_http.fail(times=None, status=500, number=KE)
    failing = send(api, _case(api, KE))
    fine = send(api, _case(api, other))
    deliver()
    assert msg(failing).status == "queued" and msg(fine).status == "sent"


# --- rate limit ----------------------------------------------------------------------------------
def _drain(limit_seconds: float = 30.0) -> None:
    """Run the worker function until nothing is left to send (the rate limit re-queues what must wait)."""
    deadline = time.monotonic() + limit_seconds
    while Message.objects.filter(status__in=[Message.QUEUED, Message.SENDING]).exists():
        assert time.monotonic() < deadline, "messages still queued"
        if not deliver():
            time.sleep(0.02)  # the next free slot is not due yet


def test_rate_limit_holds_a_burst(api, fake_http):
    add_gateway("paced", "http", fake_http.gateway_config(), rate_limit=10)
    map_prefix("*", "paced")
    case_id = _case(api)
    ms = [send(api, case_id, text=f"Burst message {i}") for i in range(40)]
    _drain()
    assert {msg(m).status for m in ms} == {"sent"}
    got = fake_http.messages()
    assert len(got) == 40
    # what the provider measures: never more than 10 per second (+1 at the window's edge)
    for window in (0.5, 1.0, 2.0):
        assert fake_http.max_in_window(window) <= 10 * window + 1, window
    times = sorted(r.t for r in got)
    assert times[-1] - times[0] >= 3.0  # 40 messages at 10/s: about 3.9 s
    # messages that waited said why while they waited, and not once sent
    assert not Message.objects.exclude(delay_reason="").exists()


def test_rate_limit_counts_segments(api, fake_http):
    add_gateway("paced", "http", fake_http.gateway_config(), rate_limit=10)
    map_prefix("*", "paced")
    case_id = _case(api)
    text = "x" * 400  # GSM-7, 3 segments of 153
    assert segments.count(text) == 3
    ms = [send(api, case_id, text=text + str(i)) for i in range(10)]
    _drain()
    assert {(msg(m).status, msg(m).segments) for m in ms} == {("sent", 3)}
    got = fake_http.messages()
    assert len(got) == 10

    def weight(r):
        return segments.count(r.text)

    for window in (1.0, 2.0):
        assert fake_http.max_in_window(window, weight=weight) <= 10 * window + 3, window
    # 30 segments at 10 segments/s: about 2.7 s; counting messages instead would take 0.9 s
    times = sorted(r.t for r in got)
    assert times[-1] - times[0] >= 2.4


def test_unlimited_gateway_sends_at_once(api, fake_http, http_gateway):
    case_id = _case(api)
    ms = [send(api, case_id, text=f"Now {i}") for i in range(30)]
    deliver()
    assert {msg(m).status for m in ms} == {"sent"}
    times = sorted(r.t for r in fake_http.messages())
    assert times[-1] - times[0] < 2.0


def test_a_late_window_takes_new_slots_rather_than_bursting(api, fake_http):
    """A batch reserves a second of slots and sends them window by window; when the first window is slow
    (here the provider answers in 0.8 s), the second window's slots have passed by the time it goes. It
    takes new ones rather than sending all at once: the provider never sees more than the rate."""
    from casemsg.messaging import pipeline

    rate = 200
    add_gateway("paced", "http", fake_http.gateway_config(), rate_limit=rate)
    map_prefix("*", "paced")
    case_id = _case(api)
    n = pipeline.SEND_WINDOW + 60  # two windows in one batch: both fit in the one-second horizon at 200/s
    ms = [send(api, case_id, text=f"Window message {i}") for i in range(n)]
    fake_http.set_latency(0.8)
    _drain()
    assert {msg(m).status for m in ms} == {"sent"}
    got = fake_http.messages()
    assert len(got) == n
    # the second window went out after its reserved slots had passed: sent at once, its 60 messages would
    # arrive within milliseconds; on new slots they take 0.3 s at 200/s
    times = sorted(r.t for r in got)
    second = times[pipeline.SEND_WINDOW :]
    assert second[0] - times[0] >= 0.8  # (it did wait for the slow first window)
    assert second[-1] - second[0] >= 0.2, second[-1] - second[0]
