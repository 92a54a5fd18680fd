"""The telerivet gateway against a fake Telerivet REST API on 127.0.0.1."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from casemsg.core.errors import InputError
from casemsg.gateways.base import OutboundSms
from casemsg.gateways.telerivet import TelerivetGateway
from tests.gateways.helpers import adapter, form_post, send, send_one
from tests.servers.webhooks import telerivet_inbound, telerivet_status


def test_send_posts_the_documented_request(fake_telerivet):
    config = fake_telerivet.gateway_config(route_id="PN42")
    result = send_one(adapter("telerivet", config), "254711000001", "Habari", message_id=3)

    (req,) = fake_telerivet.requests()
    assert req.method == "POST"
    assert req.path == f"/v1/projects/{fake_telerivet.provider.project_id}/messages/send"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"fake-telerivet-key:").decode()
    assert req.fields == {"to_number": "+254711000001", "content": "Habari", "route_id": "PN42"}
    assert (result.status, result.provider_id) == ("sent", req.provider_id)
    assert result.provider_id.startswith("SM")


def test_status_url_and_secret_are_sent(fake_telerivet):
    config = fake_telerivet.gateway_config(status_callback_url="https://x.example/status/K", webhook_secret="s3")
    send_one(adapter("telerivet", config))
    (req,) = fake_telerivet.requests()
    assert req.fields["status_url"] == "https://x.example/status/K"
    assert req.fields["status_secret"] == "s3"


def test_invalid_phone_number(fake_telerivet):
    fake_telerivet.error_for("254711000001", "invalid_number")
    result = send_one(adapter("telerivet", fake_telerivet.gateway_config()), "254711000001")
    assert (result.status, result.error) == ("failed", "INVALID_DESTINATION_NUMBER")
    assert "Invalid phone number" in result.detail


def test_number_the_provider_cannot_parse(fake_telerivet):
    # No script: the fake itself refuses a malformed number, as Telerivet does.
    result = send_one(adapter("telerivet", fake_telerivet.gateway_config()), "12")
    assert (result.status, result.error) == ("failed", "INVALID_DESTINATION_NUMBER")


def test_other_errors_fail_with_gateway_error(fake_telerivet):
    fake_telerivet.error_for(None, "not_found", status=404)
    result = send_one(adapter("telerivet", fake_telerivet.gateway_config()))
    assert (result.status, result.error) == ("failed", "GATEWAY_ERROR")


def test_bad_api_key_fails(fake_telerivet):
    result = send_one(adapter("telerivet", fake_telerivet.gateway_config(api_key="wrong")))
    assert (result.status, result.error) == ("failed", "GATEWAY_ERROR")
    assert "invalid_api_key" in result.detail


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_errors_retry_then_succeed(fake_telerivet, status):
    fake_telerivet.fail(times=2, status=status)
    gw = adapter("telerivet", fake_telerivet.gateway_config())
    assert [send_one(gw).status for _ in range(3)] == ["retry", "retry", "sent"]
    assert len(fake_telerivet.requests()) == 3 and len(fake_telerivet.messages()) == 1


def test_timeout_retries(fake_telerivet):
    fake_telerivet.delay(1.0)
    result = send_one(adapter("telerivet", fake_telerivet.gateway_config(timeout=0.2)))
    assert (result.status, result.error) == ("retry", "GATEWAY_ERROR")


def test_batch(fake_telerivet):
    gw = adapter("telerivet", fake_telerivet.gateway_config())
    results = send(gw, *(OutboundSms(i, f"25471100{i:04d}", "x") for i in range(50)))
    assert all(r.status == "sent" for r in results)
    assert len(fake_telerivet.count_by_number()) == 50


def test_validate_config():
    TelerivetGateway.validate_config({"api_key": "k", "project_id": "PJ1"})
    with pytest.raises(InputError) as e:
        TelerivetGateway.validate_config({"api_key": "k"})
    assert "project_id" in e.value.message


def test_default_base_url():
    assert adapter("telerivet", {"api_key": "k", "project_id": "PJ1"}).url == (
        "https://api.telerivet.com/v1/projects/PJ1/messages/send"
    )


# --- webhooks -----------------------------------------------------------------------------------------
def test_parse_inbound():
    gw = adapter("telerivet", {"api_key": "k", "project_id": "PJ1"})
    fields = telerivet_inbound("+254711000001", "STOP", id="SMin1", time_created=1717000000)
    (sms,) = gw.parse_inbound(form_post("/in", fields))
    assert (sms.from_number, sms.text, sms.provider_id, sms.to_number) == (
        "254711000001",
        "STOP",
        "SMin1",
        "254700000000",
    )
    assert sms.received_on == datetime.fromtimestamp(1717000000, tz=UTC)


def test_inbound_url_ignores_other_events():
    gw = adapter("telerivet", {"api_key": "k", "project_id": "PJ1"})
    assert gw.parse_inbound(form_post("/in", telerivet_status("SM1", "sent"))) == []
    call = {**telerivet_inbound("+254711000001", ""), "message_type": "call"}
    assert gw.parse_inbound(form_post("/in", call)) == []


def test_webhook_secret():
    gw = adapter("telerivet", {"api_key": "k", "project_id": "PJ1", "webhook_secret": "s3cret"})
    assert gw.verify_request(form_post("/in", telerivet_inbound("+254711000001", "hi", secret="s3cret")))
    assert not gw.verify_request(form_post("/in", telerivet_inbound("+254711000001", "hi", secret="guess")))
    assert not gw.verify_request(form_post("/in", telerivet_inbound("+254711000001", "hi")))
    # Without a configured secret the inbound key in the URL is the only check.
    open_gw = adapter("telerivet", {"api_key": "k", "project_id": "PJ1"})
    assert open_gw.verify_request(form_post("/in", telerivet_inbound("+254711000001", "hi")))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("failed", "failed"),
        ("not_delivered", "failed"),
        ("cancelled", "failed"),
    ],
)
def test_parse_status(status, expected):
    gw = adapter("telerivet", {"api_key": "k", "project_id": "PJ1"})
    (update,) = gw.parse_status(form_post("/st", telerivet_status("SM9", status, error_message="Network error")))
    assert (update.provider_id, update.status) == ("SM9", expected)
    if expected == "failed":
        assert update.error == "GATEWAY_ERROR" and "Network error" in update.detail


@pytest.mark.parametrize("status", ["queued", "processing", "failed_queued"])
def test_parse_status_skips_intermediate_states(status):
    gw = adapter("telerivet", {"api_key": "k", "project_id": "PJ1"})
    assert gw.parse_status(form_post("/st", telerivet_status("SM9", status))) == []
