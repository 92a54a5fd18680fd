"""The twilio gateway against a fake Twilio Messages API on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlencode

import pytest
from django.test import RequestFactory
from twilio.request_validator import RequestValidator

from casemsg.core.errors import InputError
from casemsg.gateways.base import OutboundSms
from casemsg.gateways.twilio import EMPTY_TWIML, TwilioGateway
from tests.gateways.helpers import adapter, form_post, send, send_one
from tests.servers.webhooks import twilio_inbound, twilio_signature, twilio_status

TOKEN = "secret-token"
INBOUND_PATH = "/api/v1/gateways/in/KEY123/inbound"


# --- send ------------------------------------------------------------------------------------------
def test_send_posts_the_documented_request(fake_twilio):
    gw = adapter("twilio", fake_twilio.gateway_config())
    result = send_one(gw, "15551234567", "Habari, {case.name}", message_id=7)

    assert result.status == "sent" and result.error is None
    (req,) = fake_twilio.requests()
    sid = fake_twilio.provider.account_sid
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{sid}/Messages.json"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(f"{sid}:fake-auth-token".encode()).decode()
    assert req.fields == {"To": "+15551234567", "From": "+15550001111", "Body": "Habari, {case.name}"}
    assert result.provider_id == req.provider_id and result.provider_id.startswith("SM")
    assert req.status == 201 and req.accepted


def test_messaging_service_and_status_callback(fake_twilio):
    config = fake_twilio.gateway_config(
        from_number="", messaging_service_sid="MG123", status_callback_url="https://casemsg.example/status/KEY"
    )
    assert send_one(adapter("twilio", config)).status == "sent"
    (req,) = fake_twilio.requests()
    assert req.fields == {
        "To": "+15551234567",
        "Body": "Hello",
        "MessagingServiceSid": "MG123",
        "StatusCallback": "https://casemsg.example/status/KEY",
    }


@pytest.mark.parametrize(
    ("code", "error", "opt_out"),
    [
        (21211, "INVALID_DESTINATION_NUMBER", False),
        (21610, "PHONE_OPTED_OUT", True),
        (21614, "INVALID_DESTINATION_NUMBER", False),
        (30006, "INVALID_DESTINATION_NUMBER", False),
        (21408, "GATEWAY_ERROR", False),  # region not enabled: an account problem, permanent
    ],
)
def test_error_codes_fail_with_the_catalogue_code(fake_twilio, code, error, opt_out):
    fake_twilio.error_for("15551234567", code)
    gw = adapter("twilio", fake_twilio.gateway_config())
    results = send(gw, OutboundSms(1, "15551234567", "a"), OutboundSms(2, "15557654321", "b"))

    assert (results[0].status, results[0].error, results[0].opt_out) == ("failed", error, opt_out)
    assert str(code) in results[0].detail and results[0].provider_id == ""
    assert results[1].status == "sent"  # the rule was for one number only
    assert fake_twilio.count_by_number() == {"15557654321": 1}


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_http_errors_retry(fake_twilio, status):
    fake_twilio.fail(times=1, status=status)
    gw = adapter("twilio", fake_twilio.gateway_config())
    first = send_one(gw)
    assert (first.status, first.error) == ("retry", "GATEWAY_ERROR")
    assert f"HTTP {status}" in first.detail
    second = send_one(gw)  # the provider recovered
    assert second.status == "sent"
    assert [r.status for r in fake_twilio.requests()] == [status, 201]
    assert len(fake_twilio.messages()) == 1


def test_code_20429_retries_whatever_the_http_status(fake_twilio):
    fake_twilio.error_for(None, 20429, times=1, status=400)
    assert send_one(adapter("twilio", fake_twilio.gateway_config())).status == "retry"


def test_timeout_retries(fake_twilio):
    fake_twilio.delay(1.0, times=1)
    gw = adapter("twilio", fake_twilio.gateway_config(timeout=0.2))
    result = send_one(gw)
    assert (result.status, result.error) == ("retry", "GATEWAY_ERROR")
    assert "Timeout" in result.detail


def test_dropped_connection_retries(fake_twilio):
    fake_twilio.disconnect(times=1)
    result = send_one(adapter("twilio", fake_twilio.gateway_config()))
    assert (result.status, result.error) == ("retry", "GATEWAY_ERROR")


def test_unreachable_provider_retries():
    # Nothing listens on port 9 of 127.0.0.1: connection refused.
    result = send_one(adapter("twilio", {"account_sid": "AC1", "auth_token": "t", "base_url": "http://127.0.0.1:9"}))
    assert result.status == "retry"


def test_bad_credentials_fail(fake_twilio):
    result = send_one(adapter("twilio", fake_twilio.gateway_config(auth_token="wrong")))
    assert (result.status, result.error) == ("failed", "GATEWAY_ERROR")
    assert "20003" in result.detail


def test_batch_is_sent_concurrently_once_each(fake_twilio):
    gw = adapter("twilio", fake_twilio.gateway_config())
    msgs = [OutboundSms(i, f"1555000{i:04d}", f"m{i}") for i in range(200)]
    results = send(gw, *msgs)
    assert [r.message_id for r in results] == list(range(200))
    assert all(r.status == "sent" for r in results)
    assert len({r.provider_id for r in results}) == 200
    assert set(fake_twilio.count_by_number().values()) == {1}


def test_validate_config():
    TwilioGateway.validate_config({"account_sid": "AC1", "auth_token": "t", "from_number": "+1555"})
    TwilioGateway.validate_config({"account_sid": "AC1", "auth_token": "t", "messaging_service_sid": "MG1"})
    with pytest.raises(InputError) as e:
        TwilioGateway.validate_config({"account_sid": "AC1", "from_number": "+1555"})
    assert e.value.code == "INVALID_GATEWAY_CONFIG" and "auth_token" in e.value.message
    with pytest.raises(InputError):
        TwilioGateway.validate_config({"account_sid": "AC1", "auth_token": "t"})


def test_default_base_url():
    gw = adapter("twilio", {"account_sid": "AC9", "auth_token": "t", "from_number": "+1555"})
    assert gw.url == "https://api.twilio.com/2010-04-01/Accounts/AC9/Messages.json"


# --- inbound and status callbacks --------------------------------------------------------------------
def test_parse_inbound():
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    fields = twilio_inbound("+15551234567", "STOP", sid="SMabc", to="+15550001111")
    (sms,) = gw.parse_inbound(form_post(INBOUND_PATH, fields))
    assert (sms.from_number, sms.text, sms.provider_id, sms.to_number) == (
        "15551234567",
        "STOP",
        "SMabc",
        "15550001111",
    )
    assert sms.extra["NumSegments"] == "1"


def test_inbound_response_is_empty_twiml():
    resp = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN}).inbound_response()
    assert resp.status_code == 200
    assert resp["Content-Type"] == "text/xml"
    assert resp.content.decode() == EMPTY_TWIML == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@pytest.mark.parametrize(
    ("status", "code", "expected", "error", "opt_out"),
    [
        ("queued", None, "sent", None, False),
        ("sending", None, "sent", None, False),
        ("sent", None, "sent", None, False),
        ("delivered", None, "delivered", None, False),
        ("undelivered", 30006, "failed", "INVALID_DESTINATION_NUMBER", False),
        ("failed", 21610, "failed", "PHONE_OPTED_OUT", True),
        ("failed", 21211, "failed", "INVALID_DESTINATION_NUMBER", False),
        ("undelivered", 30007, "failed", "GATEWAY_ERROR", False),  # carrier filtering
        ("failed", None, "failed", "GATEWAY_ERROR", False),
    ],
)
def test_parse_status(status, code, expected, error, opt_out):
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    (update,) = gw.parse_status(form_post("/status", twilio_status("SMxyz", status, error_code=code)))
    assert (update.provider_id, update.status, update.error, update.opt_out) == ("SMxyz", expected, error, opt_out)
    if code:
        assert str(code) in update.detail


def test_parse_status_ignores_inbound_states():
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    assert gw.parse_status(form_post("/status", twilio_status("SMxyz", "received"))) == []


# --- signatures --------------------------------------------------------------------------------------
def signed_request(fields, *, token=TOKEN, url=None, **extra_headers):
    url = url or f"http://testserver{INBOUND_PATH}"
    return form_post(
        INBOUND_PATH, fields, **{"X-Twilio-Signature": twilio_signature(url, fields, token)}, **extra_headers
    )


def test_valid_signature_passes():
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    assert gw.verify_request(signed_request(twilio_inbound("+15551234567", "hi")))


def test_signature_with_another_token_fails():
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    assert not gw.verify_request(signed_request(twilio_inbound("+15551234567", "hi"), token="attacker"))


def test_tampered_body_fails():
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    fields = twilio_inbound("+15551234567", "hi")
    good = twilio_signature(f"http://testserver{INBOUND_PATH}", fields, TOKEN)
    forged = form_post(INBOUND_PATH, {**fields, "Body": "STOP"}, **{"X-Twilio-Signature": good})
    assert not gw.verify_request(forged)


def test_missing_or_garbage_signature_fails():
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    fields = twilio_inbound("+15551234567", "hi")
    assert not gw.verify_request(form_post(INBOUND_PATH, fields))
    assert not gw.verify_request(form_post(INBOUND_PATH, fields, **{"X-Twilio-Signature": "bm9wZQ=="}))


def test_signature_over_the_public_url_behind_a_proxy():
    # Twilio signed https://sms.example.org/…; Django behind the proxy sees http://testserver/….
    fields = twilio_inbound("+15551234567", "hi")
    public = "https://sms.example.org"
    request = signed_request(fields, url=public + INBOUND_PATH)
    plain = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    proxied = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN, "public_url_base": public + "/"})
    assert not plain.verify_request(request)
    assert proxied.verify_request(request)


def test_signature_of_a_json_webhook():
    body = json.dumps({"MessageSid": "SM1", "From": "+15551234567", "Body": "hi"})
    digest = hashlib.sha256(body.encode()).hexdigest()
    path = f"{INBOUND_PATH}?{urlencode({'bodySHA256': digest})}"
    signature = RequestValidator(TOKEN).compute_signature(f"http://testserver{path}", {})
    request = RequestFactory().post(
        path, data=body, content_type="application/json", headers={"X-Twilio-Signature": signature}
    )
    gw = adapter("twilio", {"account_sid": "AC1", "auth_token": TOKEN})
    assert gw.verify_request(request)
    tampered = RequestFactory().post(
        path,
        data=body.replace("hi", "STOP"),
        content_type="application/json",
        headers={"X-Twilio-Signature": signature},
    )
    assert not gw.verify_request(tampered)


def test_alphanumeric_sender_id_goes_as_written(fake_twilio):
    send_one(adapter("twilio", fake_twilio.gateway_config(from_number="CASEMSG")))
    send_one(adapter("twilio", fake_twilio.gateway_config(from_number="1 (555) 000-2222")))
    assert [r.fields["From"] for r in fake_twilio.requests()] == ["CASEMSG", "+15550002222"]
