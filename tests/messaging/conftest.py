"""Shared pieces of the outbound tests: gateways pointing at real fake providers on 127.0.0.1, and small
helpers to queue through the API and deliver with the worker's own function."""

from __future__ import annotations

import pytest

from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from tests.servers.smtp import SmtpServer

# sandbox (the installation's sandbox gateway) and sandbox_gateway() are tests/conftest.py's; fake_http,
# fake_twilio, fake_gateway_process and smtp_server come from tests/servers/fixtures.py (loaded by
# tests/conftest.py).
KE = "254712345678"  # Kenya, valid mobile
KE2 = "254722000001"
IN = "919812345678"  # India
TZ = "255712345678"  # Tanzania
US = "12066171234"  # United States: needs consent


def send(api, case_id: str | None = None, expect: int = 202, **body) -> dict:
    """POST a message through the API; returns the message JSON (or the error body)."""
    payload = {"recipient": {"case_id": case_id}, "text": "Hello", **body}
    if "text" in body and body["text"] is None:
        payload.pop("text")
    r = api.post("messages", payload)
    assert r.status_code == expect, r.content
    return r.json()


def deliver() -> int:
    """What a worker does: claim and process everything due."""
    return pipeline.deliver_due()


def msg(data: dict | int) -> Message:
    return Message.objects.get(pk=data if isinstance(data, int) else data["id"])


@pytest.fixture
def http_gateway(db, fake_http) -> Gateway:
    """An installation-wide generic HTTP gateway at the fake, routing every number."""
    gw = add_gateway("http-fake", "http", fake_http.gateway_config())
    map_prefix("*", gw.name)
    return gw


@pytest.fixture
def twilio_gateway(db, fake_twilio) -> Gateway:
    gw = add_gateway("twilio-fake", "twilio", fake_twilio.gateway_config())
    map_prefix("*", gw.name)
    return gw


def use_smtp(settings, host: str, port: int) -> None:
    """Django's SMTP backend at this server (what CASEMSG_EMAIL_URL=smtp://host:port configures)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = host
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5


@pytest.fixture
def smtp(settings, smtp_server: SmtpServer) -> SmtpServer:
    use_smtp(settings, smtp_server.host, smtp_server.port)
    return smtp_server
