"""Event webhooks end to end: real sends through a fake provider, real deliveries to a real HTTP server on
127.0.0.1, signatures checked the way docs/webhooks.md tells integrators to."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta

import pytest

from casemsg.consent import optout
from casemsg.events import deliver
from casemsg.events.models import Delivery, Endpoint
from casemsg.gateways.base import StatusUpdate
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message

KE = "254712345678"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The integrator's check, as docs/webhooks.md shows it (independent of casemsg's code)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def gateway(db, fake_http):
    gw = add_gateway("http-fake", "http", fake_http.gateway_config())
    map_prefix("*", gw.name)
    return gw


def register(api, url: str, events: list[str]) -> dict:
    r = api.post("webhooks", {"url": url, "events": events, "description": "our CRM"})
    assert r.status_code == 201, r.content
    return r.json()


def send_sms(api, case_id: str) -> int:
    r = api.post("messages", {"recipient": {"case_id": case_id}, "text": "Hello"})
    assert r.status_code == 202, r.content
    pipeline.deliver_due()
    return r.json()["id"]


def until_settled(rounds: int = 200) -> None:
    """Run the deliverer's rounds (as the worker's loop does) until nothing is pending."""
    for _ in range(rounds):
        deliver.deliver_due()
        if not Delivery.objects.filter(next_attempt_utc__isnull=False).exists():
            return
        time.sleep(0.05)
    raise AssertionError("deliveries still pending")


def test_message_status_delivered_with_a_valid_signature(api, gateway, receiver):
    server = receiver()
    created = register(api, server.url, ["message.status"])
    assert created["secret"].startswith("whsec_")
    case = api.case({"contact_phone_number": KE})
    message_id = send_sms(api, case["case_id"])
    assert Message.objects.get(pk=message_id).status == Message.SENT

    assert deliver.deliver_due() == 1
    [hit] = server.hits
    assert hit.path == "/hooks/casemsg"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Casemsg-Event"] == "message.status"
    assert verify(created["secret"], hit.headers["X-Casemsg-Signature"], hit.body)
    assert not verify("whsec_wrong", hit.headers["X-Casemsg-Signature"], hit.body)
    assert not verify(created["secret"], hit.headers["X-Casemsg-Signature"], hit.body + b" ")
    doc = hit.json
    assert doc["type"] == "message.status" and doc["project"] == api.slug
    assert doc["data"]["message_id"] == message_id
    assert doc["data"]["status"] == "sent"
    assert doc["data"]["case_id"] == case["case_id"]
    assert doc["data"]["gateway"] == "http-fake"
    assert doc["data"]["error"] is None and doc["data"]["delivered_on"] is None
    sent_on = Message.objects.get(pk=message_id).sent_on
    # UTC, to the millisecond (however the fraction is written)
    assert doc["data"]["sent_on"].endswith("Z")
    stated = datetime.fromisoformat(doc["data"]["sent_on"].replace("Z", "+00:00"))
    assert abs(stated - sent_on) < timedelta(milliseconds=1)
    assert hit.headers["X-Casemsg-Delivery"] == doc["id"]

    log = api.get(f"webhooks/{created['id']}/deliveries").json()
    assert log["count"] == 1
    [row] = log["items"]
    assert row["state"] == "delivered" and row["last_status"] == 200 and row["attempts"] == 1
    assert row["last_response"] == '{"ok": true}'


def test_secret_shown_once_and_endpoints_scoped_to_the_project(api, other_api, receiver):
    server = receiver()
    created = register(api, server.url, ["message.status", "optout.changed"])
    listed = api.get("webhooks").json()
    assert listed["count"] == 1 and "secret" not in listed["items"][0]
    assert "secret" not in api.get(f"webhooks/{created['id']}").json()
    assert other_api.get(f"webhooks/{created['id']}").status_code == 404
    assert other_api.get(f"/api/v1/projects/{api.slug}/webhooks").status_code == 403
    r = api.patch(f"webhooks/{created['id']}", {"events": ["consent.changed"], "active": False})
    assert r.status_code == 200 and r.json()["events"] == ["consent.changed"] and r.json()["active"] is False
    bad = api.post("webhooks", {"url": server.url, "events": ["message.sent"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "UNKNOWN_EVENT"
    none = api.post("webhooks", {"url": server.url, "events": []})
    assert none.status_code == 422 and none.json()["error"]["code"] == "UNKNOWN_EVENT"
    assert api.delete(f"webhooks/{created['id']}").status_code == 204
    assert api.get(f"webhooks/{created['id']}").json()["error"]["code"] == "WEBHOOK_NOT_FOUND"


def test_retried_after_500s_and_in_order_per_message(api, gateway, receiver, settings):
    settings.CASEMSG_WEBHOOK_RETRY_BASE_SECONDS = 0.05
    server = receiver(statuses=[500, 503])
    register(api, server.url, ["message.status"])
    case = api.case({"contact_phone_number": KE})
    message_id = send_sms(api, case["case_id"])
    m = Message.objects.get(pk=message_id)
    # the provider's delivery report arrives while the "sent" event is still failing
    assert deliver.deliver_due(max_rounds=1) == 1
    pipeline.apply_status_updates(gateway, [StatusUpdate(m.provider_id, "delivered")])
    assert Delivery.objects.filter(next_attempt_utc__isnull=False).count() == 2

    until_settled()
    statuses = [(h.json["data"]["status"], h.status) for h in server.hits]
    assert statuses == [("sent", 500), ("sent", 503), ("sent", 200), ("delivered", 200)]
    assert len({h.json["id"] for h in server.hits[:3]}) == 1  # the same event, retried
    sent, delivered = Delivery.objects.order_by("pk")
    assert sent.attempts == 3 and sent.delivered_on is not None and delivered.attempts == 1
    assert sent.delivered_on <= delivered.delivered_on


def test_one_subjects_failures_do_not_hold_back_another(api, gateway, receiver, settings):
    settings.CASEMSG_WEBHOOK_RETRY_BASE_SECONDS = 60
    failing = receiver(statuses=[500] * 10)
    fine = receiver()
    register(api, failing.url, ["message.status"])
    register(api, fine.url, ["message.status"])
    case = api.case({"contact_phone_number": KE})
    send_sms(api, case["case_id"])
    send_sms(api, case["case_id"])
    assert deliver.deliver_due() == 4
    assert len(fine.hits) == 2 and len(failing.hits) == 2
    pending = Delivery.objects.filter(next_attempt_utc__isnull=False)
    assert pending.count() == 2 and all(d.last_status == 500 and "nope try later" in d.last_response for d in pending)


def test_given_up_after_the_retry_window(api, receiver, settings):
    settings.CASEMSG_WEBHOOK_RETRY_BASE_SECONDS = 0.01
    settings.CASEMSG_WEBHOOK_RETRY_HOURS = 0.5 / 3600  # half a second
    server = receiver(statuses=[500] * 1000)
    created = register(api, server.url, ["optout.changed"])
    optout.opt_out(KE, project=Endpoint.objects.get().project, source="api")
    until_settled()
    [d] = Delivery.objects.all()
    assert d.failed_on is not None and d.delivered_on is None and d.attempts >= 2
    log = api.get(f"webhooks/{created['id']}/deliveries", state="failed").json()
    assert log["count"] == 1 and log["items"][0]["state"] == "failed" and log["items"][0]["last_status"] == 500


def test_consent_and_optout_events(api, receiver):
    server = receiver()
    register(api, server.url, ["consent.changed", "optout.changed"])
    project = Endpoint.objects.get().project
    optout.opt_out(KE, project=project, source="api")
    optout.opt_in(KE, project=project, source="api")
    until_settled()
    kinds = [(h.json["type"], h.json["data"]["kind"], h.json["data"].get("opted_out")) for h in server.hits]
    assert kinds == [("optout.changed", "opt_out", True), ("optout.changed", "opt_in", False)]
    assert server.hits[0].json["data"]["phone_number"] == KE
    # consent recorded through a case update (the consent ledger's consent row)
    api.case({"contact_phone_number": "12066171234", "contact_phone_number_is_verified": "1"})
    until_settled()
    assert server.hits[-1].json["type"] == "consent.changed"
    assert server.hits[-1].json["data"]["kind"] == "consent"


def test_inbound_event(api, receiver, django_capture_on_commit_callbacks):
    server = receiver()
    register(api, server.url, ["message.inbound"])
    gw = add_gateway("sandbox-alpha", "sandbox", project=Endpoint.objects.get().project)
    map_prefix("*", gw.name, gw.project)
    case = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})  # two-way: routed to it
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("sandbox/incoming", {"phone_number": KE, "text": "hello there"})
    assert r.status_code in (200, 201, 202), r.content
    until_settled()
    [hit] = [h for h in server.hits if h.json["type"] == "message.inbound"]
    assert hit.json["data"]["text"] == "hello there"
    assert hit.json["data"]["from"] == KE and hit.json["data"]["gateway"] == "sandbox-alpha"
    assert hit.json["data"]["message_id"] == Message.objects.get(direction="in").pk
    # sent once the message was routed: it names the contact
    assert (hit.json["data"]["case_id"], hit.json["data"]["mobile_worker_id"]) == (case["case_id"], None)


def test_unsubscribed_and_inactive_endpoints_get_nothing(api, gateway, receiver):
    server = receiver()
    register(api, server.url, ["optout.changed"])
    off = register(api, server.url, ["message.status"])
    api.patch(f"webhooks/{off['id']}", {"active": False})
    case = api.case({"contact_phone_number": KE})
    send_sms(api, case["case_id"])
    assert Delivery.objects.count() == 0


def test_send_a_test_event(api, receiver):
    server = receiver(statuses=[500])
    created = register(api, server.url, ["message.status"])
    r = api.post(f"webhooks/{created['id']}/test")
    assert r.status_code == 200, r.content
    first = r.json()
    assert first["event"] == "test" and first["state"] == "pending" and first["last_status"] == 500
    r = api.post(f"webhooks/{created['id']}/test")
    assert r.json()["state"] == "delivered" and r.json()["last_status"] == 200
    assert verify(created["secret"], server.hits[-1].headers["X-Casemsg-Signature"], server.hits[-1].body)
    assert json.loads(server.hits[-1].body)["type"] == "test"


def test_slow_endpoint_times_out_and_is_retried(api, receiver, settings):
    settings.CASEMSG_WEBHOOK_TIMEOUT_SECONDS = 0.3
    server = receiver(delay=1.0)
    created = register(api, server.url, ["message.status"])
    r = api.post(f"webhooks/{created['id']}/test").json()
    assert r["state"] == "pending" and r["last_status"] is None
    assert "0.3 seconds" in r["last_error"]
