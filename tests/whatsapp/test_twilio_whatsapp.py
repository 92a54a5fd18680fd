"""WhatsApp through Twilio (the fake Twilio Messages and Content APIs): whatsapp:+ addresses, templates as
Content items (ContentSid + ContentVariables), 63016 outside the window, X-Twilio-Signature."""

from __future__ import annotations

import json

import pytest

from casemsg.messaging.models import Message
from tests.whatsapp.conftest import KE, post_twilio, send, work

pytestmark = pytest.mark.django_db


def _inbound(text: str = "hi", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": f"whatsapp:+{KE}",
        "To": "whatsapp:+15550001111",
        "Body": text,
        "ProfileName": "Amina",
        **extra,
    }


def test_template_outside_then_free_text_inside_the_window(api, twilio_gw, fake_twilio_wa):
    case_id = api.case({"contact_phone_number": KE, "edd": "24 Dec"}, name="Amina")["case_id"]
    r = api.post("whatsapp-templates/sync")
    assert r.json()["gateways"]["wa-twilio"]["templates"] == 1, r.content
    (tpl,) = api.get("whatsapp-templates").json()["items"]
    assert (tpl["name"], tpl["status"], tpl["category"], tpl["variables"]) == (
        "visit_reminder",
        "APPROVED",
        "UTILITY",
        ["1", "2"],
    )
    body = {"template": "visit_reminder", "variables": {"1": "{case.name}", "2": "{case.edd}"}}
    first = send(api, case_id, whatsapp=body)
    work()
    first.refresh_from_db()
    assert first.status == "sent", first.error_detail
    got = fake_twilio_wa.messages()[0].body
    assert got["To"] == f"whatsapp:+{KE}" and got["From"] == "whatsapp:+15550001111"
    assert got["ContentSid"] == fake_twilio_wa.templates[0]["sid"] and "Body" not in got
    assert json.loads(got["ContentVariables"]) == {"1": "Amina", "2": "24 Dec"}

    fake_twilio_wa.user_wrote(KE)
    assert post_twilio(twilio_gw, _inbound()).status_code == 200
    (inbound,) = Message.objects.filter(direction="in")
    assert (inbound.channel, inbound.text) == ("whatsapp", "hi")
    second = send(api, case_id, whatsapp=body)
    work()
    second.refresh_from_db()
    assert second.status == "sent" and fake_twilio_wa.messages()[1].body["Body"] == "Hi Amina"


def test_outside_the_window_at_twilio_is_window_closed(api, twilio_gw, fake_twilio_wa):
    case_id = api.case({"contact_phone_number": KE}, name="Amina")["case_id"]
    post_twilio(twilio_gw, _inbound())  # our window opens, Twilio's (the fake's) does not: Twilio says 63016
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    assert (m.status, m.error) == ("failed", "WHATSAPP_WINDOW_CLOSED") and "63016" in m.error_detail


def test_forged_signature_is_refused_and_nothing_is_stored(twilio_gw):
    r = post_twilio(twilio_gw, _inbound(), signature="forged")
    assert r.status_code == 403
    assert not Message.objects.exists()


def test_quick_reply_and_list_answer_with_their_ids(twilio_gw):
    post_twilio(twilio_gw, _inbound("Yes", ButtonPayload="yes", ButtonText="Yes", MessageSid="SM" + "2" * 32))
    post_twilio(twilio_gw, _inbound("Four", ListId="option_4", ListTitle="Four", MessageSid="SM" + "3" * 32))
    assert list(Message.objects.order_by("pk").values_list("text", flat=True)) == ["yes", "option_4"]


def test_read_status_callback(api, twilio_gw, fake_twilio_wa):
    case_id = api.case({"contact_phone_number": KE}, name="Amina")["case_id"]
    fake_twilio_wa.user_wrote(KE)
    post_twilio(twilio_gw, _inbound())
    m = send(api, case_id)
    work()
    m.refresh_from_db()
    fields = {"MessageSid": m.provider_id, "MessageStatus": "read", "AccountSid": "AC" + "0" * 32}
    assert post_twilio(twilio_gw, fields, status=True).status_code == 200
    m.refresh_from_db()
    assert m.status == "read"
