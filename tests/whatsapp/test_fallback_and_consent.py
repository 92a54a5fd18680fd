"""The provider's own "window closed" (Meta 131047, Twilio 63016) falls back to SMS when the content allows
it; WhatsApp's opt-in reaches the consent ledger through a project's gateway and an installation's alike."""

from __future__ import annotations

import pytest

from casemsg.consent.models import ConsentRecord
from casemsg.gateways.services import add_gateway
from fakes.whatsapp import meta_status, meta_webhook
from tests.whatsapp.conftest import KE, post_meta, post_twilio, send, work

pytestmark = pytest.mark.django_db


def _case(api) -> str:
    return api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Amina")["case_id"]


def test_meta_131047_at_send_time_falls_back_to_sms_when_allowed(api, meta_gw, fake_meta, sandbox):
    case_id = _case(api)
    post_meta(meta_gw, meta_webhook(KE, "hi"))  # our window opens; Meta's (the fake's) does not: 131047
    m = send(api, case_id, whatsapp={"fallback_sms": True})
    work()
    m.refresh_from_db()
    assert (m.status, m.channel, m.gateway_name, m.text) == ("sent", "sms", "sandbox", "Hi Amina")
    (h,) = m.history
    assert (h["code"], h["reason"]) == ("WHATSAPP_SENT_AS_SMS", "WHATSAPP_WINDOW_CLOSED") and "131047" in h["detail"]
    assert [r.error for r in fake_meta.sends()] == [131047]  # WhatsApp was asked once
    assert api.get(f"messages/{m.pk}").json()["history"][0]["reason"] == "WHATSAPP_WINDOW_CLOSED"


def test_meta_131047_without_the_fallback_fails_with_window_closed(api, meta_gw, fake_meta, sandbox):
    case_id = _case(api)
    post_meta(meta_gw, meta_webhook(KE, "hi"))
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    assert (m.status, m.channel, m.error, m.history) == ("failed", "whatsapp", "WHATSAPP_WINDOW_CLOSED", [])
    assert "131047" in m.error_detail


@pytest.mark.parametrize("fallback", [True, False])
def test_meta_131047_in_a_status_report_falls_back_to_sms_when_allowed(api, meta_gw, fake_meta, sandbox, fallback):
    """Meta usually tells a closed window after it took the message: a failed status with 131047."""
    case_id = _case(api)
    post_meta(meta_gw, meta_webhook(KE, "hi"))
    fake_meta.user_wrote(KE)  # both windows open: Meta takes the message
    m = send(api, case_id, whatsapp={"fallback_sms": fallback})
    work()
    m.refresh_from_db()
    assert (m.status, m.channel) == ("sent", "whatsapp")
    assert post_meta(meta_gw, meta_status(m.provider_id, "failed", KE, error=131047)).status_code == 200
    m.refresh_from_db()
    if not fallback:
        assert (m.status, m.channel, m.error) == ("failed", "whatsapp", "WHATSAPP_WINDOW_CLOSED")
        return
    assert (m.status, m.channel, m.gateway_name) == ("queued", "sms", "")
    (h,) = m.history
    assert (h["code"], h["reason"]) == ("WHATSAPP_SENT_AS_SMS", "WHATSAPP_WINDOW_CLOSED")
    work()
    m.refresh_from_db()
    assert (m.status, m.channel, m.gateway_name, m.text) == ("sent", "sms", "sandbox", "Hi Amina")
    assert len(fake_meta.sends()) == 1  # WhatsApp was asked once


def test_twilio_63016_falls_back_to_sms_when_allowed(api, twilio_gw, fake_twilio_wa, sandbox):
    case_id = _case(api)
    fields = {"MessageSid": "SM" + "2" * 32, "From": f"whatsapp:+{KE}", "To": "whatsapp:+15550001111", "Body": "hi"}
    post_twilio(twilio_gw, fields)
    m = send(api, case_id, whatsapp={"fallback_sms": True})
    work()
    m.refresh_from_db()
    assert (m.status, m.channel, m.gateway_name) == ("sent", "sms", "sandbox")
    assert m.history[0]["reason"] == "WHATSAPP_WINDOW_CLOSED" and "63016" in m.history[0]["detail"]


def _opt_ins() -> list[tuple[int | None, str, str]]:
    return list(
        ConsentRecord.objects.filter(source="whatsapp")
        .order_by("pk")
        .values_list("project__slug", "phone_number", "answer")
    )


def test_opt_in_through_a_project_gateway(api, meta_gw, fake_meta):
    _case(api)
    post_meta(meta_gw, meta_webhook(KE, "Hello"))
    post_meta(meta_gw, meta_webhook(KE, "again"))
    assert _opt_ins() == [("alpha", KE, "Hello")]  # recorded by the webhook, before any worker ran


def test_opt_in_through_an_installation_gateway_once_routed(api, fake_meta):
    gw = add_gateway("wa-installation", "meta_cloud", fake_meta.gateway_config(), project=None)
    _case(api)
    post_meta(gw, meta_webhook(KE, "Hello"))
    assert _opt_ins() == []  # the project is not known until the message is routed
    work()
    assert _opt_ins() == [("alpha", KE, "Hello")]
    post_meta(gw, meta_webhook(KE, "again"))
    work()
    assert _opt_ins() == [("alpha", KE, "Hello")]  # once per project and number


def test_no_opt_in_from_a_sender_no_project_knows(api, fake_meta):
    gw = add_gateway("wa-installation", "meta_cloud", fake_meta.gateway_config(), project=None)
    post_meta(gw, meta_webhook("254700000999", "Hello"))
    work()
    assert _opt_ins() == []
