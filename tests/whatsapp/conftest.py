"""WhatsApp tests: gateways pointing at the fake Meta Graph API and the fake Twilio (fakes/whatsapp.py)
on 127.0.0.1, webhooks posted as each provider signs them, and the worker's own functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, inbound_url, status_url
from casemsg.inbound import router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from fakes.whatsapp import FakeWhatsApp, meta_signature, twilio_signature

KE = "254712345678"
KE2 = "254722000001"


@pytest.fixture
def fake_meta() -> Iterator[FakeWhatsApp]:
    with FakeWhatsApp("meta") as fake:
        fake.add_template("visit_reminder", "Hello {{1}}, your visit is on {{2}}.")
        fake.add_template("survey_start", "{{1}}, may we ask you a few questions?")
        yield fake


@pytest.fixture
def fake_twilio_wa() -> Iterator[FakeWhatsApp]:
    with FakeWhatsApp("twilio") as fake:
        fake.add_template("visit_reminder", "Hello {{1}}, your visit is on {{2}}.")
        yield fake


@pytest.fixture
def meta_gw(project, fake_meta) -> Gateway:
    return add_gateway("wa", "meta_cloud", fake_meta.gateway_config(), project=project)


@pytest.fixture
def twilio_gw(project, fake_twilio_wa) -> Gateway:
    return add_gateway("wa-twilio", "twilio_whatsapp", fake_twilio_wa.gateway_config(), project=project)


def post_meta(gw: Gateway, payload: dict[str, Any], signature: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    sig = meta_signature(body) if signature is None else signature
    return Client().post(inbound_url(gw), body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=sig)


def post_twilio(gw: Gateway, fields: dict[str, str], status: bool = False, signature: str | None = None) -> Any:
    path = status_url(gw) if status else inbound_url(gw)
    sig = twilio_signature("http://testserver" + path, fields) if signature is None else signature
    return Client().post(path, fields, HTTP_X_TWILIO_SIGNATURE=sig)


def work() -> None:
    """What the workers do: handle inbound messages, then send what is due."""
    router.process_due()
    pipeline.deliver_due()


def send(api, case_id: str, expect: int = 202, **body: Any) -> Message:
    body = {"recipient": {"case_id": case_id}, "channel": "whatsapp", "text": "Hi {case.name}", **body}
    r = api.post("messages", body)
    assert r.status_code == expect, r.content
    return Message.objects.get(pk=r.json()["id"])
