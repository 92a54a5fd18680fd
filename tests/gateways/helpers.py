"""Drive an adapter the way the pipeline does: send_batch over one aiohttp session."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import aiohttp
from django.http import HttpRequest
from django.test import RequestFactory

from casemsg.gateways.base import GatewayType, OutboundSms, SendResult
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import adapter_for


def adapter(type_name: str, config: dict[str, Any]) -> GatewayType:
    # An unsaved row: adapters read only `config`, so no database is needed.
    return adapter_for(Gateway(name=f"test-{type_name}", type=type_name, config=config))


def send(gw: GatewayType, *msgs: OutboundSms) -> list[SendResult]:
    async def run() -> list[SendResult]:
        async with aiohttp.ClientSession() as session:
            return await gw.send_batch(session, list(msgs))

    return asyncio.run(run())


def send_one(gw: GatewayType, to: str = "15551234567", text: str = "Hello", message_id: int = 1) -> SendResult:
    return send(gw, OutboundSms(message_id, to, text))[0]


def form_post(path: str, fields: dict[str, str], **headers: str) -> HttpRequest:
    """A form-encoded POST, as providers send webhooks (RequestFactory would default to multipart)."""
    return RequestFactory().post(
        path, data=urlencode(fields), content_type="application/x-www-form-urlencoded", headers=headers
    )
