"""Telerivet (https://telerivet.com/api/rest and https://telerivet.com/api/webhook).

Config: `TelerivetGateway.config_schema`.

Send: POST {base_url}/v1/projects/{project_id}/messages/send with JSON {"to_number", "content",
"route_id"?}; the answer is the Message object ("id", "status"); errors are JSON
{"error": {"code", "message", "param"?}}.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import aiohttp
from django.http import HttpRequest

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.base import (
    BASE_URL_FIELD,
    TIMEOUT_FIELD,
    ConfigField,
    GatewayType,
    HttpReply,
    InboundSms,
    OutboundSms,
    SendResult,
    StatusUpdate,
    digits,
)
from casemsg.gateways.models import Gateway

DEFAULT_BASE_URL = "https://api.telerivet.com"

# Telerivet message statuses (send answer and send_status webhooks) → ours. "queued"/"processing" mean
# still waiting on the phone or route, and "failed_queued" means Telerivet will try again by itself:
# none of them is news for a message we already count as handed over, so they produce no update.
STATUS_MAP = {
    "sent": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "not_delivered": "failed",
    "cancelled": "failed",
}


def error_for(error: dict[str, Any]) -> str:
    """Telerivet error object → catalogue code. Telerivet reports a bad number as an invalid to_number
    parameter; its message names the phone number."""
    code = str(error.get("code") or "")
    param = str(error.get("param") or "")
    message = str(error.get("message") or "").lower()
    if code == "invalid_param" and (param == "to_number" or "phone number" in message):
        return errors.INVALID_DESTINATION_NUMBER
    if "invalid phone number" in message:
        return errors.INVALID_DESTINATION_NUMBER
    return errors.GATEWAY_ERROR


class TelerivetGateway(GatewayType):
    type_name = "telerivet"
    title = "Telerivet"
    config_schema = {
        "api_key": ConfigField(required=True, secret=True, help="The API key: the basic-auth username."),
        "project_id": ConfigField(required=True, help="The Telerivet project (PJ…) to send from."),
        "route_id": ConfigField(help="The phone or route to send from (the project's default route otherwise)."),
        "routes": ConfigField(
            "object",
            help="{pool number: route_id}: the phone (PN…) or route each number of the gateway's pool sends "
            "from (Telerivet picks the sender by route, not by number).",
        ),
        "webhook_secret": ConfigField(
            secret=True,
            help="Telerivet posts it as `secret` with every webhook (checked when set); sent as status_secret.",
        ),
        "status_callback_url": ConfigField(help="Sent as status_url, so Telerivet posts send_status there."),
        "base_url": BASE_URL_FIELD,
        "timeout": TIMEOUT_FIELD,
    }

    def __init__(self, gateway: Gateway):
        super().__init__(gateway)
        c = self.config
        base = str(c.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/v1/projects/{c.get('project_id', '')}/messages/send"
        self.headers = {"Authorization": aiohttp.encode_basic_auth(str(c.get("api_key", "")), "")}
        fixed: dict[str, str] = {}
        if c.get("route_id"):
            fixed["route_id"] = str(c["route_id"])
        if c.get("status_callback_url"):
            fixed["status_url"] = str(c["status_callback_url"])
            if c.get("webhook_secret"):
                fixed["status_secret"] = str(c["webhook_secret"])
        self.fixed_fields = fixed
        routes = c.get("routes")
        self.routes = {str(k).lstrip("+"): str(v) for k, v in routes.items() if v} if isinstance(routes, dict) else {}

    # --- outbound --------------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        payload = {"to_number": "+" + digits(msg.to), "content": msg.text, **self.fixed_fields}
        if msg.sender:  # the recipient's number of the gateway's pool (gateways.pools): its phone or route
            route = self.routes.get(msg.sender.lstrip("+"))
            if route is None:
                detail = f"Pool number {msg.sender} has no route_id in the gateway's `routes`."
                return SendResult(msg.message_id, "failed", error=errors.INVALID_GATEWAY_CONFIG, detail=detail)
            payload["route_id"] = route
        return self.classify(msg.message_id, await self.post(session, self.url, json=payload, headers=self.headers))

    @staticmethod
    def classify(message_id: int, reply: HttpReply) -> SendResult:
        data = reply.json_object()
        detail = reply.detail
        error = data.get("error")
        if reply.ok and not isinstance(error, dict):
            provider_id = str(data.get("id") or "")
            if STATUS_MAP.get(str(data.get("status") or "")) == "failed":
                return SendResult(
                    message_id, "failed", provider_id=provider_id, error=errors.GATEWAY_ERROR, detail=detail
                )
            return SendResult(message_id, "sent", provider_id=provider_id)
        if reply.transient:
            return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail)
        code = error_for(error if isinstance(error, dict) else {})
        return SendResult(message_id, "failed", error=code, detail=detail)

    # --- inbound and status callbacks -----------------------------------------------------------
    def verify_request(self, request: HttpRequest) -> bool:
        expected = str(self.config.get("webhook_secret") or "")
        if not expected:
            return True  # the inbound key in the URL is the only check, as for other gateways
        return hmac.compare_digest(request.POST.get("secret", "").encode(), expected.encode())

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        p = self.form_data(request)
        # One Telerivet webhook URL may receive every project event; only incoming SMS are messages.
        if p.get("event", "incoming_message") != "incoming_message" or p.get("message_type", "sms") != "sms":
            return []
        sender = p.get("from_number_e164") or p.get("from_number", "")
        if not sender:
            raise InputError(errors.INVALID_WEBHOOK, "A Telerivet incoming_message needs from_number.", 400)
        return [
            InboundSms(
                from_number=digits(sender),
                text=p.get("content", ""),
                provider_id=p.get("id", ""),
                to_number=digits(p.get("to_number", "")),
                received_on=_from_unix(p.get("time_created")),
                extra={k: p[k] for k in ("phone_id", "contact_id", "project_id") if k in p},
            )
        ]

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        p = self.form_data(request)
        if p.get("event", "send_status") != "send_status":
            return []
        status = STATUS_MAP.get(p.get("status", ""))
        if not p.get("id") or status is None:
            return []
        if status != "failed":
            return [StatusUpdate(p["id"], status)]
        message = p.get("error_message", "")
        error = error_for({"message": message})
        return [StatusUpdate(p["id"], "failed", error=error, detail=f"Telerivet {p.get('status')}: {message}".strip())]


def _from_unix(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC) if value else None
    except (TypeError, ValueError, OverflowError, OSError):  # OSError: beyond the platform's time_t
        return None
