"""What every gateway type shares: the registry, the config schema, the answer classification and the
transport (the per-thread HTTP session the pipeline sends through)."""

from __future__ import annotations

import threading
import time

import pytest

from casemsg.core.errors import InputError
from casemsg.gateways import transport
from casemsg.gateways.base import (
    COMMON_CONFIG,
    DETAIL_EXCERPT,
    ConfigField,
    GatewayType,
    HttpReply,
    OutboundSms,
    classify_exception,
    classify_http,
)
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import GATEWAY_TYPES, adapter_for, extra_opt_out_words
from tests.gateways.helpers import adapter


# --- the registry and the schemas -------------------------------------------------------------------
def test_registry_is_the_one_list_of_types():
    assert sorted(GATEWAY_TYPES) == [
        "africastalking",
        "http",
        "meta_cloud",
        "sandbox",
        "smpp",
        "telerivet",
        "twilio",
        "twilio_whatsapp",
        "whatsapp_sandbox",
    ]
    assert not hasattr(Gateway, "TYPES")
    for name, t in GATEWAY_TYPES.items():
        assert issubclass(t, GatewayType) and t.type_name == name and t.title


@pytest.mark.parametrize("type_name", sorted(GATEWAY_TYPES))
def test_every_config_key_is_declared_with_help(type_name):
    fields = GATEWAY_TYPES[type_name].config_fields()
    assert set(COMMON_CONFIG) <= set(fields)
    for key, f in fields.items():
        assert isinstance(f, ConfigField) and f.help, key
    for group in GATEWAY_TYPES[type_name].required_one_of:
        assert set(group) <= set(fields)


def test_secrets_are_marked():
    assert GATEWAY_TYPES["twilio"].config_fields()["auth_token"].secret
    assert GATEWAY_TYPES["telerivet"].config_fields()["api_key"].secret
    assert GATEWAY_TYPES["africastalking"].config_fields()["api_key"].secret
    assert GATEWAY_TYPES["http"].config_fields()["password"].secret


@pytest.mark.parametrize(
    ("type_name", "config", "key"),
    [
        ("twilio", {"account_sid": "AC1", "auth_token": "t", "from_number": "+1555", "timeout": "soon"}, "timeout"),
        ("twilio", {"account_sid": ["AC1"], "auth_token": "t", "from_number": "+1555"}, "account_sid"),
        ("africastalking", {"username": "u", "api_key": "k", "sandbox": "yes"}, "sandbox"),
        ("sandbox", {"opt_out_keywords": "ACHA"}, "opt_out_keywords"),
        ("http", {"url": "http://x", "headers": "X-Key: 1"}, "headers"),
    ],
)
def test_schema_types_are_checked(type_name, config, key):
    with pytest.raises(InputError) as e:
        GATEWAY_TYPES[type_name].validate_config(config)
    assert e.value.code == "INVALID_GATEWAY_CONFIG" and key in e.value.message


def test_schema_accepts_what_the_adapters_read():
    GATEWAY_TYPES["telerivet"].validate_config({"api_key": "k", "project_id": 42, "timeout": "2.5"})
    GATEWAY_TYPES["africastalking"].validate_config({"username": "u", "api_key": "k", "sandbox": True})
    GATEWAY_TYPES["sandbox"].validate_config({"opt_out_keywords": ["ACHA"], "opt_in_keywords": [], "other": 1})
    GATEWAY_TYPES["http"].validate_config({"url": "http://x", "method": "post", "timeout": 3})


def test_one_of_is_named_in_the_message():
    with pytest.raises(InputError) as e:
        GATEWAY_TYPES["twilio"].validate_config({"account_sid": "AC1", "auth_token": "t"})
    assert "from_number or messaging_service_sid" in e.value.message


def test_no_provider_adds_opt_out_words_today():
    for name in GATEWAY_TYPES:
        assert extra_opt_out_words(Gateway(type=name)) == frozenset()
    assert extra_opt_out_words(Gateway(type="gone")) == frozenset()


def test_timeout_comes_from_the_config():
    assert adapter("http", {"url": "http://x", "timeout": 2}).timeout.total == 2.0
    assert adapter("sandbox", {}).timeout.total == GatewayType.timeout_seconds
    assert adapter("sandbox", {"timeout": "garbage"}).timeout.total == GatewayType.timeout_seconds


# --- classification -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "sent"), (201, "sent"), (400, "failed"), (401, "failed"), (429, "retry"), (503, "retry")],
)
def test_classify_http(status, outcome):
    r = classify_http(9, HttpReply(status, "x" * 500), provider_id="p")
    assert (r.message_id, r.status) == (9, outcome)
    if outcome == "sent":
        assert r.provider_id == "p" and r.error is None
    else:
        # only a short excerpt of the provider's answer (netguard.excerpt), never the whole body
        assert r.error == "GATEWAY_ERROR" and r.detail == f"HTTP {status}: " + "x" * (DETAIL_EXCERPT - 1) + "…"


def test_reply_json_object():
    assert HttpReply(200, '{"a": 1}').json_object() == {"a": 1}
    assert HttpReply(200, "[1]").json_object() == {}
    assert HttpReply(502, "<html>Bad gateway</html>").json_object() == {}
    assert HttpReply(200, "").json_object() == {}


def test_classify_exception_is_transient():
    r = classify_exception(3, TimeoutError("slow"))
    assert (r.status, r.error, r.detail) == ("retry", "GATEWAY_ERROR", "TimeoutError: slow")


# --- transport ----------------------------------------------------------------------------------------
def _gateway(fake, rate_limit: int = 0) -> Gateway:
    return Gateway(pk=1, name="fake", type="http", config=fake.gateway_config(), rate_limit=rate_limit)


def test_transport_sends_the_plan_and_keeps_its_session(fake_http):
    gw = _gateway(fake_http)
    now = time.time()
    first = transport.send([(gw, [(OutboundSms(i, "254711000001", f"m{i}"), now) for i in range(20)])])
    session = transport._local.session
    second = transport.send([(gw, [(OutboundSms(99, "254711000001", "again"), time.time())])])
    assert sorted(first) == list(range(20)) and {r.status for r in first.values()} == {"sent"}
    assert second[99].status == "sent"
    assert transport._local.session is session and not session.closed  # kept between batches
    assert transport.send([]) == {}

    other: list[object] = []

    def in_another_thread() -> None:
        assert transport.send([(gw, [(OutboundSms(7, "254711000001", "t"), 0.0)])])[7].status == "sent"
        other.append(transport._local.session)

    t = threading.Thread(target=in_another_thread)
    t.start()
    t.join()
    assert other and other[0] is not session  # one session per thread


def test_transport_paces_a_rate_limited_gateway(fake_http):
    gw = _gateway(fake_http, rate_limit=5)
    start = time.time()
    plan = [(gw, [(OutboundSms(i, "254711000001", f"m{i}"), start + 0.2 * i) for i in range(3)])]
    results = transport.send(plan)
    assert {r.status for r in results.values()} == {"sent"}
    walls = sorted(r.wall for r in fake_http.requests())
    assert walls[2] - start >= 0.35  # the third waited for its slot
    assert walls[2] - walls[0] >= 0.3


def test_adapter_for_builds_the_registered_type():
    assert type(adapter_for(Gateway(type="twilio", config={}))).__name__ == "TwilioGateway"
