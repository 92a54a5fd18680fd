"""The WhatsApp channel through the Cloud API (the fake Meta Graph API): the window decides free text or
template; no template falls back to SMS when allowed; provider errors are mapped; webhooks are signed."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone

from casemsg.contacts.models import WhatsAppWindow
from casemsg.events import deliver
from casemsg.events import services as events
from casemsg.events.models import MESSAGE_STATUS, Delivery
from casemsg.gateways.services import inbound_url
from casemsg.messaging.models import Message
from fakes.whatsapp import meta_status, meta_webhook
from tests.events.receiver import Receiver
from tests.whatsapp.conftest import KE, post_meta, send, work

pytestmark = pytest.mark.django_db


def _person_writes(gw, fake, number: str = KE, text: str = "hello") -> None:
    fake.user_wrote(number)
    assert post_meta(gw, meta_webhook(number, text)).status_code == 200


def _case(api, **props) -> str:
    return api.case({"contact_phone_number": KE, **props}, name="Amina")["case_id"]


def _sync(api) -> None:
    r = api.post("whatsapp-templates/sync")
    assert r.status_code == 200, r.content
    assert r.json()["gateways"]["wa"]["templates"] == 2


def test_free_text_inside_the_window(api, meta_gw, fake_meta):
    case_id = _case(api)
    _person_writes(meta_gw, fake_meta)
    contact = api.contact(case_id)["whatsapp"]
    assert contact["ok"] and contact["number"] == KE and contact["window_open_until"]
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    assert (m.status, m.channel, m.gateway_name, m.text) == ("sent", "whatsapp", "wa", "Hi Amina")
    (got,) = fake_meta.messages()
    assert got.body["type"] == "text" and got.body["text"]["body"] == "Hi Amina" and got.to == KE
    assert m.provider_id == got.provider_id


def test_template_outside_the_window_with_case_fields(api, meta_gw, fake_meta):
    case_id = _case(api, edd="2026-12-24")
    _sync(api)
    listed = api.get("whatsapp-templates").json()["items"]
    assert {(t["name"], t["status"], tuple(t["variables"])) for t in listed} == {
        ("visit_reminder", "APPROVED", ("1", "2")),
        ("survey_start", "APPROVED", ("1",)),
    }
    m = send(api, case_id, whatsapp={"template": "visit_reminder", "variables": ["{case.name}", "{case.edd}"]})
    work()
    m.refresh_from_db()
    assert m.status == "sent", (m.error, m.error_detail)
    assert m.text == "Hello Amina, your visit is on 2026-12-24."
    (got,) = fake_meta.messages()
    tpl = got.body["template"]
    assert got.body["type"] == "template" and tpl["name"] == "visit_reminder" and tpl["language"] == {"code": "en"}
    assert [p["text"] for p in tpl["components"][0]["parameters"]] == ["Amina", "2026-12-24"]


def test_no_template_outside_the_window_fails_with_the_reason(api, meta_gw, fake_meta):
    m = send(api, _case(api))
    work()
    m.refresh_from_db()
    assert (m.status, m.error) == ("failed", "WHATSAPP_WINDOW_CLOSED")
    assert fake_meta.sends() == []


def test_template_missing_falls_back_to_sms_and_the_history_says_so(api, meta_gw, fake_meta, sandbox):
    _sync(api)
    m = send(api, _case(api), whatsapp={"template": "no_such_template", "fallback_sms": True})
    work()
    m.refresh_from_db()
    assert (m.status, m.channel, m.gateway_name, m.text) == ("sent", "sms", "sandbox", "Hi Amina")
    (h,) = m.history
    assert (h["code"], h["reason"]) == ("WHATSAPP_SENT_AS_SMS", "WHATSAPP_TEMPLATE_NOT_APPROVED")
    assert api.get(f"messages/{m.pk}").json()["history"][0]["code"] == "WHATSAPP_SENT_AS_SMS"
    assert fake_meta.sends() == []


def test_throttling_is_retried_and_sent_once(api, meta_gw, fake_meta, settings):
    settings.CASEMSG_RETRY_BASE_SECONDS = 30
    case_id = _case(api)
    _person_writes(meta_gw, fake_meta)
    fake_meta.fail(130429, times=1)
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    assert (m.status, m.attempts) == ("queued", 1) and "130429" in m.error_detail
    assert m.next_attempt_on > timezone.now()  # backed off
    Message.objects.filter(pk=m.pk).update(next_attempt_on=timezone.now())
    work()
    m.refresh_from_db()
    assert (m.status, m.attempts) == ("sent", 2)
    assert [r.error for r in fake_meta.sends()] == [130429, None]
    assert len(fake_meta.messages()) == 1


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (131047, "WHATSAPP_WINDOW_CLOSED"),
        (131026, "WHATSAPP_NOT_ON_WHATSAPP"),
        (132001, "WHATSAPP_TEMPLATE_NOT_APPROVED"),
        (100, "GATEWAY_ERROR"),
    ],
)
def test_provider_errors_are_mapped_with_the_providers_text(api, meta_gw, fake_meta, code, error):
    case_id = _case(api)
    _person_writes(meta_gw, fake_meta)
    fake_meta.error_for(KE, code)
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    assert (m.status, m.error, m.attempts) == ("failed", error, 1)
    assert m.error_detail.startswith(f"WhatsApp {code}: (#{code})")


def test_webhook_with_a_wrong_signature_is_refused_and_nothing_is_stored(api, meta_gw, fake_meta):
    for sig in ("sha256=" + "0" * 64, "", "sha1=abc"):
        r = post_meta(meta_gw, meta_webhook(KE, "hello"), signature=sig)
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    assert not Message.objects.exists() and not WhatsAppWindow.objects.exists()


def test_webhook_verification(meta_gw):
    url = inbound_url(meta_gw)
    ok = Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": "fake-verify-token", "hub.challenge": "42"})
    assert (ok.status_code, ok.content) == (200, b"42")
    bad = Client().get(url, {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"})
    assert bad.status_code == 403


def test_inbound_opens_the_window_and_is_stored_as_whatsapp(api, meta_gw, fake_meta):
    case_id = _case(api, contact_phone_number_is_verified="1")  # (two-way: replies route to the contact)
    stamp = time.time() - 3600
    assert post_meta(meta_gw, meta_webhook(KE, "hello", timestamp=stamp)).status_code == 200
    work()
    (msg,) = Message.objects.filter(direction="in")
    assert (msg.channel, msg.text, msg.to, msg.case.case_id) == ("whatsapp", "hello", KE, case_id)
    w = WhatsAppWindow.objects.get(gateway=meta_gw, phone_number=KE)
    assert abs(w.last_inbound_on.timestamp() - int(stamp)) < 1
    # a late retry of an older webhook does not move it back
    post_meta(meta_gw, meta_webhook(KE, "older", timestamp=stamp - 7200))
    w.refresh_from_db()
    assert abs(w.last_inbound_on.timestamp() - int(stamp)) < 1


def test_button_and_list_replies_answer_with_the_choice_id(api, meta_gw, fake_meta):
    _case(api)
    post_meta(meta_gw, meta_webhook(KE, button=("yes", "Yes")))
    post_meta(meta_gw, meta_webhook(KE, list_reply=("option_4", "Four")))
    texts = list(Message.objects.filter(direction="in").order_by("pk").values_list("text", flat=True))
    assert texts == ["yes", "option_4"]


def test_read_status_reaches_the_event_webhook(api, project, meta_gw, fake_meta):
    server = Receiver().start()  # the project's own event webhook, a real HTTP server on 127.0.0.1
    try:
        r = api.post("webhooks", {"url": server.url, "events": [MESSAGE_STATUS]})
        assert r.status_code == 201, r.content
        _read_status(api, meta_gw, fake_meta)
        assert deliver.deliver_due() == 3
        posted = [(h.json["data"]["message_id"], h.json["data"]["status"]) for h in server.hits]
    finally:
        server.stop()
    (m,) = Message.objects.filter(direction="out")
    assert posted == [(m.pk, "sent"), (m.pk, "delivered"), (m.pk, "read")]


def test_read_status_is_a_message_status_event(api, project, meta_gw, fake_meta):
    events.create_endpoint(project, "http://127.0.0.1:9/hook", [MESSAGE_STATUS])
    _read_status(api, meta_gw, fake_meta)
    statuses = [d.payload["status"] for d in Delivery.objects.filter(event=MESSAGE_STATUS).order_by("pk")]
    assert statuses == ["sent", "delivered", "read"]


def _read_status(api, meta_gw, fake_meta) -> None:
    case_id = _case(api)
    _person_writes(meta_gw, fake_meta)
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    for status in ("delivered", "read", "delivered"):  # a late "delivered" does not undo "read"
        assert post_meta(meta_gw, meta_status(m.provider_id, status, KE)).status_code == 200
    m.refresh_from_db()
    assert m.status == "read" and m.delivered_on is not None


def test_failed_status_carries_the_mapped_code(api, meta_gw, fake_meta):
    case_id = _case(api)
    _person_writes(meta_gw, fake_meta)
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    post_meta(meta_gw, meta_status(m.provider_id, "failed", KE, error=131026))
    m.refresh_from_db()
    assert (m.status, m.error) == ("failed", "WHATSAPP_NOT_ON_WHATSAPP")


def test_stop_on_whatsapp_stops_whatsapp_and_sms(api, meta_gw, fake_meta, sandbox):
    case_id = _case(api)
    _person_writes(meta_gw, fake_meta, text="STOP")
    work()
    contact = api.contact(case_id)
    assert contact["sms"]["error"]["code"] == "PHONE_OPTED_OUT"
    assert contact["whatsapp"]["error"]["code"] == "PHONE_OPTED_OUT"
    # the confirmation went back on WhatsApp (inside the window the STOP opened)
    (confirmation,) = fake_meta.messages()
    assert "unsubscribed" in confirmation.body["text"]["body"]
    m = send(api, case_id)
    assert (m.status, m.error) == ("failed", "PHONE_OPTED_OUT")
    r = api.post("messages", {"recipient": {"case_id": case_id}, "text": "sms"})
    assert r.json()["error"]["code"] == "PHONE_OPTED_OUT"
    assert timezone.now()


def test_the_first_message_is_the_whatsapp_opt_in_in_the_ledger(api, meta_gw, fake_meta):
    _case(api)
    _person_writes(meta_gw, fake_meta, text="Hello there")
    _person_writes(meta_gw, fake_meta, text="again")
    rows = [r for r in api.get("consents").json()["items"] if r["source"] == "whatsapp"]
    assert [(r["kind"], r["phone_number"], r["answer"]) for r in rows] == [("opt_in", KE, "Hello there")]


def test_the_schedule_syncs_templates_and_a_refusal_changes_nothing(api, meta_gw, fake_meta):
    from casemsg.gateways import services as gateway_services
    from casemsg.gateways.models import WhatsAppTemplate

    assert gateway_services.sync_whatsapp_templates_due() == 1
    assert gateway_services.sync_whatsapp_templates_due() == 0  # synced within the hour
    assert WhatsAppTemplate.objects.count() == 2
    meta_gw.config = {**meta_gw.config, "access_token": "wrong"}
    meta_gw.save()
    r = api.post("whatsapp-templates/sync")
    assert r.status_code == 424 and r.json()["error"]["code"] == "WHATSAPP_TEMPLATE_SYNC_FAILED"
    assert WhatsAppTemplate.objects.count() == 2


def test_per_number_rate_limit(api, project, fake_meta):
    from casemsg.gateways.services import add_gateway

    gw = add_gateway("wa", "meta_cloud", fake_meta.gateway_config(), project=project, rate_limit=5)
    ids = []
    for i in range(8):
        number = f"2547123456{i:02d}"
        ids.append(api.case({"contact_phone_number": number}, name=f"P{i}")["case_id"])
        fake_meta.user_wrote(number)
        post_meta(gw, meta_webhook(number, "hi"))
    for case_id in ids:
        send(api, case_id)
    deadline = time.time() + 10
    while Message.objects.filter(direction="out", status__in=["queued", "sending"]).exists():
        work()
        Message.objects.filter(status="queued").update(next_attempt_on=timezone.now())
        assert time.time() < deadline
    got = sorted(r.t for r in fake_meta.messages())
    assert len(got) == 8
    assert got[-1] - got[0] >= 7 / 5 - 0.1  # 8 messages at 5 per second: 1.4 s at least, on the provider's clock


def test_not_on_whatsapp_is_remembered_and_the_next_message_falls_back(api, meta_gw, fake_meta, sandbox):
    case_id = _case(api)
    _person_writes(meta_gw, fake_meta)
    fake_meta.error_for(KE, 131026)
    first = send(api, case_id)
    work()
    first.refresh_from_db()
    assert first.error == "WHATSAPP_NOT_ON_WHATSAPP"
    second = send(api, case_id, whatsapp={"fallback_sms": True})
    work()
    second.refresh_from_db()
    assert (second.status, second.channel, second.history[0]["reason"]) == ("sent", "sms", "WHATSAPP_NOT_ON_WHATSAPP")
    assert len(fake_meta.sends()) == 1  # WhatsApp was not asked again


def test_the_rate_limit_is_80_per_second_when_the_gateway_sets_none(api, meta_gw, fake_meta):
    from casemsg.messaging.models import GatewayPace

    assert not meta_gw.rate_limit  # (the gateway sets none)
    numbers = [f"2547123457{i:02d}" for i in range(20)]
    for i, number in enumerate(numbers):
        case_id = api.case({"contact_phone_number": number}, name=f"P{i}")["case_id"]
        fake_meta.user_wrote(number)
        post_meta(meta_gw, meta_webhook(number, "hi"))
        send(api, case_id)
    work()
    got = sorted(r.t for r in fake_meta.messages())
    assert len(got) == 20
    assert got[-1] - got[0] >= 19 / 80 - 0.05  # paced at 80 a second, on the provider's clock
    assert GatewayPace.objects.filter(gateway=meta_gw).exists()  # (an unlimited gateway has no pace)
