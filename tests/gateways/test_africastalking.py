"""The africastalking gateway against a fake Africa's Talking SMS API on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import pytest

from casemsg.core.errors import InputError
from casemsg.gateways.africastalking import AfricasTalkingGateway
from casemsg.gateways.base import OutboundSms
from fakes.gateways import Rule
from tests.gateways.helpers import adapter, form_post, send, send_one
from tests.servers.webhooks import africastalking_inbound, africastalking_status


def test_send_posts_the_documented_request(fake_africastalking):
    config = fake_africastalking.gateway_config(sender_id="CASEMSG")
    result = send_one(adapter("africastalking", config), "254711000001", "Habari", message_id=5)

    (req,) = fake_africastalking.requests()
    assert (req.method, req.path) == ("POST", "/version1/messaging")
    assert req.headers["apiKey"] == "fake-at-key"
    assert req.headers["Accept"] == "application/json"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.fields == {"username": "sandbox", "to": "+254711000001", "message": "Habari", "from": "CASEMSG"}
    assert (result.status, result.provider_id) == ("sent", req.provider_id)
    assert result.provider_id.startswith("ATXid_")


@pytest.mark.parametrize(
    ("code", "status", "error", "opt_out"),
    [
        (403, "failed", "INVALID_DESTINATION_NUMBER", False),  # InvalidPhoneNumber
        (404, "failed", "INVALID_DESTINATION_NUMBER", False),  # UnsupportedNumberType
        (406, "failed", "PHONE_OPTED_OUT", True),  # UserInBlacklist
        (401, "failed", "GATEWAY_ERROR", False),  # RiskHold
        (405, "failed", "GATEWAY_ERROR", False),  # InsufficientBalance
        (409, "failed", "GATEWAY_ERROR", False),  # DoNotDisturbRejection
        (500, "retry", "GATEWAY_ERROR", False),  # InternalServerError
        (501, "retry", "GATEWAY_ERROR", False),  # GatewayError
        (502, "retry", "GATEWAY_ERROR", False),  # RejectedByGateway
    ],
)
def test_recipient_status_codes(fake_africastalking, code, status, error, opt_out):
    fake_africastalking.error_for("254711000001", code)
    gw = adapter("africastalking", fake_africastalking.gateway_config())
    first, other = send(gw, OutboundSms(1, "254711000001", "a"), OutboundSms(2, "254711000002", "b"))
    assert (first.status, first.error, first.opt_out, first.provider_id) == (status, error, opt_out, "")
    assert str(code) in first.detail
    assert other.status == "sent"
    (req,) = [r for r in fake_africastalking.requests() if r.to == "254711000001"]
    assert req.status == 201 and req.error == str(code)  # refused inside a normal answer, as AT does


@pytest.mark.parametrize("code", [100, 101, 102])
def test_accepted_codes(fake_africastalking, code):
    # 100 Processed / 102 Queued are acceptances too; script them through a raw body.
    recipient = {"statusCode": code, "number": "+254711000001", "status": "Success", "messageId": "ATXid_x"}
    body = json.dumps({"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [recipient]}})
    fake_africastalking.add_rule(Rule(body=body, status=201))
    result = send_one(adapter("africastalking", fake_africastalking.gateway_config()), "254711000001")
    assert (result.status, result.provider_id) == ("sent", "ATXid_x")


def test_whole_request_refused(fake_africastalking):
    fake_africastalking.add_rule(Rule(body='{"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}'))
    result = send_one(adapter("africastalking", fake_africastalking.gateway_config()))
    assert (result.status, result.error) == ("failed", "GATEWAY_ERROR")
    assert "InvalidSenderId" in result.detail


def test_invalid_number_refused_by_the_provider(fake_africastalking):
    # No script: the fake refuses a number it cannot read with 403 InvalidPhoneNumber.
    result = send_one(adapter("africastalking", fake_africastalking.gateway_config()), "12")
    assert (result.status, result.error) == ("failed", "INVALID_DESTINATION_NUMBER")


def test_bad_api_key_fails(fake_africastalking):
    result = send_one(adapter("africastalking", fake_africastalking.gateway_config(api_key="wrong")))
    assert (result.status, result.error) == ("failed", "GATEWAY_ERROR")
    assert "HTTP 401" in result.detail


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_http_errors_retry(fake_africastalking, status):
    fake_africastalking.fail(times=1, status=status)
    gw = adapter("africastalking", fake_africastalking.gateway_config())
    assert [send_one(gw).status, send_one(gw).status] == ["retry", "sent"]


def test_timeout_and_disconnect_retry(fake_africastalking):
    fake_africastalking.delay(1.0, times=1)
    fake_africastalking.disconnect(times=1)
    gw = adapter("africastalking", fake_africastalking.gateway_config(timeout=0.2))
    assert send_one(gw).status == "retry"  # timed out
    assert send_one(gw).status == "retry"  # connection dropped
    assert send_one(gw).status == "sent"


def test_sandbox_and_base_url():
    assert adapter("africastalking", {"username": "u", "api_key": "k"}).url == (
        "https://api.africastalking.com/version1/messaging"
    )
    assert adapter("africastalking", {"username": "sandbox", "api_key": "k", "sandbox": True}).url == (
        "https://api.sandbox.africastalking.com/version1/messaging"
    )


def test_validate_config():
    AfricasTalkingGateway.validate_config({"username": "u", "api_key": "k"})
    with pytest.raises(InputError) as e:
        AfricasTalkingGateway.validate_config({"username": "u"})
    assert "api_key" in e.value.message


def test_without_accept_json_the_api_answers_xml(fake_africastalking):
    # Why the adapter sends Accept: application/json — the fake, like AT, answers XML otherwise.
    data = urllib.parse.urlencode({"username": "sandbox", "to": "+254711000001", "message": "x"}).encode()
    req = urllib.request.Request(fake_africastalking.url + "/version1/messaging", data=data)
    req.add_header("apiKey", "fake-at-key")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201 and resp.read().startswith(b"<?xml")


# --- webhooks -----------------------------------------------------------------------------------------
def test_parse_inbound():
    gw = adapter("africastalking", {"username": "u", "api_key": "k"})
    fields = africastalking_inbound("+254711000001", "stop", id="abc-1", to="40404", link_id="L1")
    (sms,) = gw.parse_inbound(form_post("/in", fields))
    assert (sms.from_number, sms.text, sms.provider_id, sms.to_number) == ("254711000001", "stop", "abc-1", "40404")
    assert sms.received_on == datetime(2024, 5, 31, 12, 15, 36, tzinfo=UTC)
    assert sms.extra == {"link_id": "L1"}


@pytest.mark.parametrize(
    ("status", "reason", "expected", "error", "opt_out"),
    [
        ("Success", None, "delivered", None, False),
        ("Sent", None, "sent", None, False),
        ("Submitted", None, "sent", None, False),
        ("Buffered", None, "sent", None, False),
        ("Failed", "UserInBlackList", "failed", "PHONE_OPTED_OUT", True),
        ("Failed", "UserDoesNotExist", "failed", "INVALID_DESTINATION_NUMBER", False),
        ("Rejected", "DeliveryFailure", "failed", "GATEWAY_ERROR", False),
        ("Failed", None, "failed", "GATEWAY_ERROR", False),
    ],
)
def test_parse_delivery_report(status, reason, expected, error, opt_out):
    gw = adapter("africastalking", {"username": "u", "api_key": "k"})
    (update,) = gw.parse_status(form_post("/st", africastalking_status("ATXid_1", status, failure_reason=reason)))
    assert (update.provider_id, update.status, update.error, update.opt_out) == ("ATXid_1", expected, error, opt_out)
    if reason:
        assert reason in update.detail


def test_unknown_delivery_status_is_ignored():
    gw = adapter("africastalking", {"username": "u", "api_key": "k"})
    assert gw.parse_status(form_post("/st", africastalking_status("ATXid_1", "Whatever"))) == []


@pytest.mark.parametrize("body", ["not json", '{"SMSMessageData": {"Recipients": ["x"]}}', "[]"])
def test_unreadable_answer_fails_without_breaking_the_batch(fake_africastalking, body):
    fake_africastalking.add_rule(Rule(body=body, status=201))
    gw = adapter("africastalking", fake_africastalking.gateway_config())
    first, second = send(gw, OutboundSms(1, "254711000001", "a"), OutboundSms(2, "254711000002", "b"))
    assert (first.status, first.error) == ("failed", "GATEWAY_ERROR")
    assert second.status == "sent"
