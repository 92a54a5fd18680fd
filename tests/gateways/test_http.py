"""The generic http gateway against a fake aggregator on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from django.test import RequestFactory

from casemsg.core.errors import InputError
from casemsg.gateways.base import OutboundSms
from casemsg.gateways.http import HttpGateway, lookup, render
from fakes.gateways import Rule
from tests.gateways.helpers import adapter, form_post, send, send_one


# --- send ------------------------------------------------------------------------------------------
def test_form_post_with_templates(fake_http):
    config = {
        "url": fake_http.url + "/sms/send",
        "params": {"dest": "{to_plus}", "msg": "{text}", "ref": "m-{message_id}", "to": "{to}", "flash": 0},
        "headers": {"X-Api-Key": "k1", "Idempotency-Key": "casemsg-{message_id}"},
        "provider_id_path": "id",
    }
    result = send_one(adapter("http", config), "254711000001", "Habari {case.name}", message_id=42)

    (req,) = fake_http.requests()
    assert (req.method, req.path) == ("POST", "/sms/send")
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.fields == {
        "dest": "+254711000001",
        "msg": "Habari {case.name}",
        "ref": "m-42",
        "to": "254711000001",
        "flash": "0",
    }
    assert req.headers["X-Api-Key"] == "k1" and req.headers["Idempotency-Key"] == "casemsg-42"
    assert (result.status, result.provider_id) == ("sent", req.provider_id)


def test_text_containing_placeholders_is_not_expanded(fake_http):
    send_one(adapter("http", fake_http.gateway_config()), "254711000001", "reply {to} or {message_id}", 9)
    (req,) = fake_http.requests()
    assert req.text == "reply {to} or {message_id}" and req.message_id == "9"


def test_json_body_with_nested_template(fake_http):
    config = {
        "url": fake_http.url + "/api",
        "body": "json",
        "params": {"to": "{to}", "text": "{text}", "meta": {"ref": "{message_id}", "tags": ["casemsg", "{to}"]}},
    }
    send_one(adapter("http", config), "15551234567", "hi", 3)
    (req,) = fake_http.requests()
    assert req.headers["Content-Type"] == "application/json"
    assert req.fields == {"to": "15551234567", "text": "hi", "meta": {"ref": "3", "tags": ["casemsg", "15551234567"]}}


def test_get_with_query_string_and_basic_auth(fake_gateway):
    fake = fake_gateway("http", method="GET", path="/cgi-bin/sendsms", username="u", password="p w")
    config = fake.gateway_config()
    assert config["method"] == "GET" and config["username"] == "u"
    assert send_one(adapter("http", config), "254711000001", "a&b=c").status == "sent"
    (req,) = fake.requests()
    assert req.method == "GET"
    assert req.fields == {"to": "254711000001", "text": "a&b=c", "message_id": "1"}
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p w").decode()
    wrong = send_one(adapter("http", {**config, "password": "nope"}))
    assert (wrong.status, wrong.error) == ("failed", "GATEWAY_ERROR")


def test_provider_id_path_into_nested_json(fake_http):
    fake_http.add_rule(Rule(body=json.dumps({"data": {"messages": [{"id": "abc-1", "status": "0"}]}})))
    config = fake_http.gateway_config(provider_id_path="data.messages.0.id")
    assert send_one(adapter("http", config)).provider_id == "abc-1"
    assert lookup({"a": [{"b": 1}]}, "a.-1.b") == 1
    assert lookup({"a": [1]}, "a.5") is None and lookup({"a": "x"}, "a.b") is None
    assert lookup({"msg.id": 7}, "msg.id") == 7


def test_success_contains(fake_http):
    config = fake_http.gateway_config(success_contains="ACCEPTED")
    fake_http.add_rule(Rule(body="ERR: no credit"))
    refused = send_one(adapter("http", config))
    assert (refused.status, refused.error) == ("failed", "GATEWAY_ERROR")
    assert "no credit" in refused.detail
    fake_http.add_rule(Rule(body="ACCEPTED id=77"))
    assert send_one(adapter("http", config)).status == "sent"


def test_success_status(fake_http):
    config = fake_http.gateway_config(success_status=[202])
    not_202 = send_one(adapter("http", config))  # the fake answers 200
    assert (not_202.status, not_202.error) == ("failed", "GATEWAY_ERROR")
    fake_http.add_rule(Rule(status=202, body="{}"))
    assert send_one(adapter("http", config)).status == "sent"


@pytest.mark.parametrize(("status", "outcome"), [(500, "retry"), (503, "retry"), (429, "retry"), (400, "failed")])
def test_http_errors(fake_http, status, outcome):
    fake_http.fail(times=1, status=status)
    result = send_one(adapter("http", fake_http.gateway_config()))
    assert (result.status, result.error) == (outcome, "GATEWAY_ERROR")


def test_retry_after_500_then_success(fake_http):
    fake_http.fail(times=1, status=500)
    gw = adapter("http", fake_http.gateway_config())
    assert [send_one(gw, message_id=1).status, send_one(gw, message_id=1).status] == ["retry", "sent"]
    assert fake_http.count_by_message_id() == {"1": 1}
    assert [r.status for r in fake_http.requests()] == [500, 200]


def test_timeout_retries(fake_http):
    fake_http.delay(1.0)
    result = send_one(adapter("http", fake_http.gateway_config(timeout=0.2)))
    assert (result.status, result.error) == ("retry", "GATEWAY_ERROR")


def test_batch_exactly_once(fake_http):
    gw = adapter("http", fake_http.gateway_config())
    results = send(gw, *(OutboundSms(i, "254711000001", f"n{i}") for i in range(300)))
    assert all(r.status == "sent" for r in results)
    assert fake_http.duplicates() == {}
    assert len(fake_http.count_by_message_id()) == 300


def test_render_is_one_pass():
    values = {"to": "1", "to_plus": "+1", "text": "{message_id}", "message_id": "9"}
    assert render({"a": "{text}/{to}", "b": [1, "{to_plus}"], "c": None}, values) == {
        "a": "{message_id}/1",
        "b": [1, "+1"],
        "c": None,
    }


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"url": "ftp://x"},
        {"url": "http://x", "method": "PUT"},
        {"url": "http://x", "body": "xml"},
        {"url": "http://x", "params": ["to"]},
        {"url": "http://x", "success_status": [999]},
        {"url": "http://x", "status": {"values": {"DELIVRD": "done"}}},
    ],
)
def test_validate_config_refuses(config):
    with pytest.raises(InputError) as e:
        HttpGateway.validate_config(config)
    assert e.value.code == "INVALID_GATEWAY_CONFIG"


def test_validate_config_accepts():
    HttpGateway.validate_config(
        {"url": "https://sms.example/send", "method": "get", "body": "json", "success_status": [200, 202]}
    )


# --- webhooks -----------------------------------------------------------------------------------------
MAPPED = {"url": "http://x", "inbound": {"from": "msisdn", "text": "message", "id": "msg.id", "to": "shortcode"}}


def test_parse_inbound_default_fields_from_a_form():
    gw = adapter("http", {"url": "http://x"})
    (sms,) = gw.parse_inbound(form_post("/in", {"from": "+254 711 000001", "text": "STOP", "id": "p1", "to": "40404"}))
    assert (sms.from_number, sms.text, sms.provider_id, sms.to_number) == ("254711000001", "STOP", "p1", "40404")


def test_parse_inbound_mapped_fields_from_json_with_a_dotted_path():
    gw = adapter("http", MAPPED)
    body = json.dumps({"msisdn": "254711000001", "message": "yes", "msg": {"id": 17}, "shortcode": "40404"})
    (sms,) = gw.parse_inbound(RequestFactory().post("/in", data=body, content_type="application/json"))
    assert (sms.from_number, sms.text, sms.provider_id, sms.to_number) == ("254711000001", "yes", "17", "40404")


def test_parse_inbound_from_the_query_string():
    gw = adapter("http", MAPPED)
    query = urlencode({"msisdn": "254711000001", "message": "hi there", "msg.id": "q1"})
    (sms,) = gw.parse_inbound(RequestFactory().get(f"/in?{query}"))
    assert (sms.from_number, sms.text, sms.provider_id) == ("254711000001", "hi there", "q1")


def test_parse_inbound_without_sender_is_refused():
    with pytest.raises(InputError) as e:
        adapter("http", MAPPED).parse_inbound(form_post("/in", {"message": "hi"}))
    assert e.value.status == 400


@pytest.mark.parametrize(
    ("raw", "expected"), [("DELIVRD", "delivered"), ("delivered", "delivered"), ("UNDELIV", "failed"), ("sent", "sent")]
)
def test_parse_status_default_words(raw, expected):
    gw = adapter("http", {"url": "http://x"})
    (update,) = gw.parse_status(form_post("/st", {"id": "p1", "status": raw, "error": "absent subscriber"}))
    assert (update.provider_id, update.status) == ("p1", expected)
    if expected == "failed":
        assert update.error == "GATEWAY_ERROR" and "absent subscriber" in update.detail


def test_parse_status_custom_mapping():
    config = {
        "url": "http://x",
        "status": {"id": "ref", "status": "state", "values": {"2": "delivered", "5": "failed"}},
    }
    gw = adapter("http", config)
    (update,) = gw.parse_status(form_post("/st", {"ref": "r1", "state": "2"}))
    assert update.status == "delivered"
    assert gw.parse_status(form_post("/st", {"ref": "r1", "state": "1"})) == []  # unmapped: not tracked


def test_inbound_secret_header_and_param():
    by_header = adapter("http", {"url": "http://x", "inbound_secret": {"header": "X-Token", "value": "s"}})
    assert by_header.verify_request(form_post("/in", {"from": "1"}, **{"X-Token": "s"}))
    assert not by_header.verify_request(form_post("/in", {"from": "1"}, **{"X-Token": "t"}))
    by_param = adapter("http", {"url": "http://x", "inbound_secret": {"param": "key", "value": "s"}})
    assert by_param.verify_request(form_post("/in", {"from": "1", "key": "s"}))
    assert not by_param.verify_request(form_post("/in", {"from": "1"}))
    assert adapter("http", {"url": "http://x"}).verify_request(form_post("/in", {"from": "1"}))


def test_inbound_response():
    plain = adapter("http", {"url": "http://x"}).inbound_response()
    assert (plain.status_code, plain.content) == (200, b"")
    custom = adapter(
        "http", {"url": "http://x", "inbound_response": {"body": '{"ok":true}', "content_type": "application/json"}}
    ).inbound_response()
    assert custom.content == b'{"ok":true}' and custom["Content-Type"] == "application/json"
