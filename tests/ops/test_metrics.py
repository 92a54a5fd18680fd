"""GET /metrics: the token, and figures that follow real sends through a fake provider on 127.0.0.1."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from tests.events.receiver import Receiver

TOKEN = "metrics-token-for-tests"


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


@pytest.fixture
def token(settings):
    settings.CASEMSG_METRICS_TOKEN = TOKEN


def test_metrics_need_the_token(db, settings):
    settings.CASEMSG_METRICS_TOKEN = ""
    r = Client().get("/metrics")
    assert r.status_code == 403 and "CASEMSG_METRICS_TOKEN" in r.json()["error"]["message"]
    settings.CASEMSG_METRICS_TOKEN = TOKEN
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_metrics_follow_sends(api, token, fake_gateway):
    ok = fake_gateway("http")
    add_gateway("http-fake", "http", ok.gateway_config())
    map_prefix("254", "http-fake")
    broken = fake_gateway("http")
    broken.fail(times=5, status=500)
    add_gateway("http-down", "http", broken.gateway_config())
    map_prefix("255", "http-down")
    before = scrape()
    for i in range(3):
        case = api.case({"contact_phone_number": f"25471234567{i}"})
        assert api.post("messages", {"recipient": {"case_id": case["case_id"]}, "text": "Hi"}).status_code == 202
    case = api.case({"contact_phone_number": "255712345678"})
    api.post("messages", {"recipient": {"case_id": case["case_id"]}, "text": "Hi"})
    queued = scrape()
    assert value(queued, "casemsg_queue_due_messages") == 4
    assert value(queued, "casemsg_queue_oldest_due_age_seconds") >= 0
    pipeline.deliver_due()
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("casemsg_gateway_requests_total", gateway="http-fake", type="http", outcome="2xx") == 3
    assert delta("casemsg_gateway_requests_total", gateway="http-down", outcome="5xx") == 1
    assert delta("casemsg_gateway_request_seconds_count", gateway="http-fake") == 3
    assert value(after, "casemsg_messages", channel="sms", status="sent", error="") == 3
    assert value(after, "casemsg_messages", status="queued") == 1  # the 500 is retried later
    assert value(after, "casemsg_queue_due_messages") == 0


def test_provider_webhooks_counted(api, token):
    before = scrape()
    Client().post("/api/v1/gateways/nope/not-the-key/inbound", {"from": "254712345678", "text": "hi"})
    after = scrape()
    count = value(after, "casemsg_webhook_requests_total", kind="inbound") - value(
        before, "casemsg_webhook_requests_total", kind="inbound"
    )
    assert count == 1
    assert value(after, "casemsg_webhook_request_seconds_count", kind="inbound") >= 1


def test_event_deliveries_counted(api, token):
    server = Receiver(statuses=[502]).start()
    try:
        created = api.post("webhooks", {"url": server.url, "events": ["message.status"]}).json()
        before = scrape()
        api.post(f"webhooks/{created['id']}/test")
        api.post(f"webhooks/{created['id']}/test")
        after = scrape()
    finally:
        server.stop()
    for outcome in ("5xx", "2xx"):
        got = value(after, "casemsg_event_deliveries_total", event="test", outcome=outcome)
        assert got - value(before, "casemsg_event_deliveries_total", event="test", outcome=outcome) == 1
    assert value(after, "casemsg_event_deliveries_pending") == 1  # the 502 waits for its retry
