"""The interface every gateway type implements (one module per gateway type, like RapidPro's
channels/types/<gateway>/).

A gateway type is a thin adapter over the provider's documented HTTP API:
- `send_one` posts one message with aiohttp (chosen by measurement: the fastest client on this kind of
  machine) and classifies the answer into a `SendResult`; the pipeline sends claimed messages in
  concurrent batches through `send_batch` and writes all results in bulk.
- `parse_inbound` and `parse_status` read the provider's own webhook formats.
- `verify_request` checks a provider signature where the provider has one (Twilio).

Classification rules (DESIGN.md §5): timeouts, connection errors, HTTP 5xx and 429 are *transient*
(`retry`); anything else the provider refuses is *permanent* (`failed`, with a catalogue code).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
from django.http import HttpRequest, HttpResponse

from casemsg.core.errors import InputError


@dataclass
class OutboundSms:
    message_id: int
    to: str  # E.164 digits, no '+'
    text: str
    segments: int = 1


@dataclass
class SendResult:
    message_id: int
    status: str  # "sent" | "delivered" | "failed" | "retry"
    provider_id: str = ""
    error: str | None = None  # catalogue code when failed / retry
    detail: str = ""
    opt_out: bool = False  # the provider says the number opted out (Twilio 21610): record it globally


@dataclass
class InboundSms:
    from_number: str  # E.164 digits, no '+'
    text: str
    provider_id: str = ""
    to_number: str = ""
    received_on: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class StatusUpdate:
    provider_id: str
    status: str  # "sent" | "delivered" | "failed"
    error: str | None = None
    detail: str = ""
    # The provider reports the number opted out (Twilio 21610, Africa's Talking UserInBlacklist) after
    # accepting the message: the number is opted out globally, as for SendResult.opt_out.
    opt_out: bool = False


def digits(number: str) -> str:
    """Provider numbers often carry '+'; the registry keeps bare E.164 digits."""
    return "".join(ch for ch in (number or "") if ch.isdigit())


class GatewayType(ABC):
    """Base class. `config` is the gateway's JSON config; `base_url` is overridable for tests."""

    type_name: ClassVar[str] = ""
    # keys that must be present in the config
    required_config: ClassVar[tuple[str, ...]] = ()
    concurrency: ClassVar[int] = 64
    timeout_seconds: ClassVar[float] = 15.0

    def __init__(self, gateway: Any):
        self.gateway = gateway
        self.config: dict[str, Any] = dict(gateway.config or {})

    # --- configuration -------------------------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        missing = [k for k in cls.required_config if not config.get(k)]
        if missing:
            raise InputError(
                "INVALID_GATEWAY_CONFIG",
                f"A {cls.type_name} gateway needs {', '.join(missing)} in its config.",
            )

    # --- outbound --------------------------------------------------------------------------------
    @abstractmethod
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        """Post one message to the provider and classify its answer (each gateway type's own)."""

    async def send_batch(self, session: aiohttp.ClientSession, msgs: list[OutboundSms]) -> list[SendResult]:
        sem = asyncio.Semaphore(self.concurrency)

        async def guarded(m: OutboundSms) -> SendResult:
            async with sem:
                try:
                    return await self.send_one(session, m)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    detail = f"{type(exc).__name__}: {exc}"
                    return SendResult(m.message_id, "retry", error="GATEWAY_ERROR", detail=detail)

        return list(await asyncio.gather(*(guarded(m) for m in msgs)))

    # --- inbound and status callbacks -----------------------------------------------------------
    def verify_request(self, request: HttpRequest) -> bool:
        """A provider signature check; the inbound key in the URL is checked before this."""
        return True

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        raise InputError("INBOUND_NOT_SUPPORTED", f"{self.type_name} gateways do not receive messages.", 400)

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        raise InputError("STATUS_NOT_SUPPORTED", f"{self.type_name} gateways send no status callbacks.", 400)

    def inbound_response(self) -> HttpResponse:
        """What the provider expects back from an inbound webhook."""
        return HttpResponse("", status=200)


def classify_http(message_id: int, status: int, body: str, provider_id: str = "") -> SendResult:
    """The default reading of an HTTP answer: 2xx sent, 429/5xx retry, other 4xx failed."""
    if 200 <= status < 300:
        return SendResult(message_id, "sent", provider_id=provider_id)
    if status == 429 or status >= 500:
        return SendResult(message_id, "retry", error="GATEWAY_ERROR", detail=f"HTTP {status}: {body[:300]}")
    return SendResult(message_id, "failed", error="GATEWAY_ERROR", detail=f"HTTP {status}: {body[:300]}")
