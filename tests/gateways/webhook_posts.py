"""Posting to a gateway's provider webhooks as its provider does, for every gateway type: an inbound SMS and
a delivery report in the type's own format, Twilio's requests validly signed. Used by the webhook tests
and the cross-project (authority) tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from django.test import Client
from twilio.request_validator import RequestValidator

from casemsg.gateways.models import Gateway
from casemsg.gateways.services import inbound_url, status_url
from tests.servers.webhooks import (
    FORM,
    africastalking_inbound,
    africastalking_status,
    telerivet_inbound,
    telerivet_status,
    twilio_inbound,
    twilio_signature,
    twilio_status,
)

TOKEN = "twilio-auth-token"
CONFIGS: dict[str, dict[str, Any]] = {
    "sandbox": {},
    "http": {"url": "http://127.0.0.1:9/send"},
    "http-json": {"url": "http://127.0.0.1:9/send", "inbound": {"from": "sms.sender", "text": "sms.body"}},
    "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": TOKEN, "from_number": "+15550001111"},
    "telerivet": {"api_key": "k", "project_id": "PJ1"},
    "africastalking": {"username": "sandbox", "api_key": "k"},
}
KINDS = list(CONFIGS)


def kind_of(gw: Gateway) -> str:
    """The key of CONFIGS the gateway was made from (`http-json`: an http gateway reading JSON inbound)."""
    return "http-json" if gw.type == "http" and (gw.config or {}).get("inbound") else gw.type


def post(
    client: Client,
    gw: Gateway,
    fields: dict[str, str] | None = None,
    *,
    body: bytes | str | None = None,
    content_type: str = FORM,
    endpoint: str = "inbound",
    path: str | None = None,
):
    """POST to the gateway's webhook as its provider does; a Twilio request is signed validly (over the
    form fields, or over the URL with bodySHA256 for any other body)."""
    path = path or (inbound_url(gw) if endpoint == "inbound" else status_url(gw))
    if body is None:
        body = urlencode(fields or {})
    headers = {}
    if gw.type == "twilio":
        if content_type == FORM and fields is not None:
            headers["X-Twilio-Signature"] = twilio_signature(f"http://testserver{path}", fields, TOKEN)
        else:
            raw = body.encode() if isinstance(body, str) else body
            path += "?" + urlencode({"bodySHA256": hashlib.sha256(raw).hexdigest()})
            headers["X-Twilio-Signature"] = RequestValidator(TOKEN).compute_signature(f"http://testserver{path}", {})
    return client.post(path, data=body, content_type=content_type, headers=headers)


def post_inbound(client: Client, gw: Gateway, sender: str, text: str, msg_id: str, **extra: str):
    """An inbound SMS in the gateway type's own format."""
    kind = kind_of(gw)
    if kind == "sandbox":
        body = json.dumps({"phone_number": sender, "text": text, "id": msg_id, **extra})
        return post(client, gw, body=body, content_type="application/json")
    if kind == "http":
        return post(client, gw, {"from": sender, "text": text, "id": msg_id, **extra})
    if kind == "http-json":
        body = json.dumps({"sms": {"sender": sender, "body": text}, "id": msg_id, **extra})
        return post(client, gw, body=body, content_type="application/json")
    if kind == "twilio":
        return post(client, gw, {**twilio_inbound(sender, text, sid=msg_id), **extra})
    if kind == "telerivet":
        return post(client, gw, {**telerivet_inbound(sender, text, id=msg_id), **extra})
    return post(client, gw, {**africastalking_inbound(sender, text, id=msg_id), **extra})


def post_status(client: Client, gw: Gateway, provider_id: str):
    """A delivery report ("delivered") in the gateway type's own format."""
    kind = kind_of(gw)
    fields = {
        "http": lambda: {"id": provider_id, "status": "delivered"},
        "twilio": lambda: twilio_status(provider_id, "delivered"),
        "telerivet": lambda: telerivet_status(provider_id, "delivered"),
        "africastalking": lambda: africastalking_status(provider_id, "Success"),
    }[kind]()
    return post(client, gw, fields, endpoint="status")
