"""The sandbox gateway: sends nothing anywhere. Messages "sent" through it are listed by
`GET /api/v1/projects/{project}/sandbox/outbox`, and the phone simulator replies as a contact through
`POST /api/v1/projects/{project}/sandbox/incoming`. It is the `*` route of `make run`."""

from __future__ import annotations

from typing import Any

import aiohttp
from django.http import HttpRequest

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.base import GatewayType, InboundSms, OutboundSms, SendResult, digits


class SandboxGateway(GatewayType):
    type_name = "sandbox"
    title = "Sandbox (sends nothing)"
    # No keys of its own: only the common ones (opt_out_keywords, opt_in_keywords).

    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        return SendResult(msg.message_id, "sent", provider_id=f"sandbox-{msg.message_id}")

    async def send_batch(self, session: aiohttp.ClientSession, msgs: list[OutboundSms]) -> list[SendResult]:
        # No I/O: answer the whole batch at once rather than scheduling a coroutine per message.
        return [SendResult(m.message_id, "sent", provider_id=f"sandbox-{m.message_id}") for m in msgs]

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        data = self.json_body(request)
        sender = _text(data.get("phone_number"))
        if not sender:
            raise InputError(errors.INVALID_WEBHOOK, "A sandbox inbound message needs phone_number.", 400)
        return [
            InboundSms(
                from_number=digits(sender),
                text=_text(data.get("text")),
                provider_id=_text(data.get("id")),
            )
        ]


def _text(value: Any) -> str:
    return "" if value is None else str(value)
