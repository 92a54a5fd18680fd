"""A generic HTTP gateway, for SMS providers and in-country aggregators without their own module.

Config: `HttpGateway.config_schema` (only `url` is required).

A non-accepted answer is classified as usual: 429/5xx retry, other codes fail with GATEWAY_ERROR.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from django.http import HttpRequest, HttpResponse, QueryDict

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.base import (
    TIMEOUT_FIELD,
    ConfigField,
    GatewayType,
    HttpReply,
    InboundSms,
    OutboundSms,
    SendResult,
    StatusUpdate,
    classify_http,
    digits,
    json_object_body,
)
from casemsg.gateways.models import Gateway

PLACEHOLDER = re.compile(r"\{(to|to_plus|text|message_id|from)\}")
DEFAULT_PARAMS = {"to": "{to}", "text": "{text}"}
DEFAULT_INBOUND = {"from": "from", "text": "text", "id": "id", "to": "to"}
DEFAULT_STATUS = {"id": "id", "status": "status", "error": "error"}
# Provider words for delivery states, matched case-insensitively when the config gives no `values`.
DEFAULT_STATUS_VALUES = {
    "sent": "sent",
    "submitted": "sent",
    "accepted": "sent",
    "delivered": "delivered",
    "delivrd": "delivered",  # SMPP delivery-receipt words, common among aggregators
    "failed": "failed",
    "undelivered": "failed",
    "undeliv": "failed",
    "rejected": "failed",
    "rejectd": "failed",
    "expired": "failed",
}


def render(template: Any, values: dict[str, str]) -> Any:
    """Fill placeholders in one pass, so a message text that itself contains "{to}" stays as written."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    return template


def lookup(data: Any, path: str) -> Any:
    """A dotted path into decoded JSON; numbers index lists. None when any step is missing. A key that
    itself contains dots (a form field "msg.from") is found as written first."""
    if isinstance(data, dict) and path in data:
        return data[path]
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit():
            i = int(part)
            cur = cur[i] if -len(cur) <= i < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


class HttpGateway(GatewayType):
    type_name = "http"
    title = "Generic HTTP"
    config_schema = {
        "url": ConfigField(required=True, url=True, help="Where to send, http(s)://…"),
        "method": ConfigField(
            choices=("POST", "GET"), help="POST (default) or GET (the parameters then go in the query string)."
        ),
        "body": ConfigField(choices=("form", "json"), help="How POST parameters are encoded (default form)."),
        "params": ConfigField(
            "object",
            secret_values=True,
            help="{name: value}; text values may contain {to} (E.164 digits), {to_plus} (+ and digits), {text}, "
            "{from} (the sender: the recipient's pool number, else `sender`) and {message_id}; nested objects "
            'and lists are templated too. Default {"to": "{to}", "text": "{text}"}. '
            "Values are not shown again once saved (a value left as <hidden> keeps the stored one).",
        ),
        "headers": ConfigField(
            "object",
            secret_values=True,
            help='{name: value}, templated like params (e.g. an idempotency key "{message_id}"). Values are '
            "not shown again once saved (a value left as <hidden> keeps the stored one).",
        ),
        "sender": ConfigField(help="The sender number or ID, as {from} in params and headers (a pool's number wins)."),
        "username": ConfigField(help="HTTP basic auth user (optional)."),
        "password": ConfigField(secret=True, help="HTTP basic auth password."),
        "success_status": ConfigField("list", help='HTTP codes meaning "accepted" (default: any 2xx).'),
        "success_contains": ConfigField(help="Text the answer must contain to count as accepted."),
        "provider_id_path": ConfigField(
            help='A dotted path into the JSON answer to the provider\'s message id ("data.messages.0.id").'
        ),
        "timeout": TIMEOUT_FIELD,
        "inbound": ConfigField(
            "object",
            help='{"from", "text", "id", "to"}: the field holding each value in the inbound webhook (form, JSON '
            "or query string; dotted paths in JSON). Default: the same names.",
        ),
        "status": ConfigField(
            "object",
            help='{"id", "status", "error", "values": {provider word: sent | delivered | failed}}: the '
            "delivery-report webhook; by default sent/delivered/failed (any case), DELIVRD, UNDELIV and others.",
        ),
        "inbound_secret": ConfigField(
            "object",
            secret=True,
            help='{"header": name | "param": name, "value": secret}: a secret the provider sends with every webhook.',
        ),
        "inbound_response": ConfigField(
            "object", help='{"body", "content_type", "status"}: what the webhooks answer (default: an empty 200).'
        ),
    }

    def __init__(self, gateway: Gateway):
        super().__init__(gateway)
        c = self.config
        self.url = str(c.get("url", ""))
        self.method = str(c.get("method") or "POST").upper()
        self.body = str(c.get("body") or "form").lower()
        self.params: dict[str, Any] = c.get("params") or DEFAULT_PARAMS
        self.headers: dict[str, Any] = c.get("headers") or {}
        self.auth_header = (
            aiohttp.encode_basic_auth(str(c["username"]), str(c.get("password") or "")) if c.get("username") else ""
        )
        statuses = c.get("success_status")
        self.success_status: set[int] | None = {int(s) for s in statuses} if statuses else None
        self.success_contains = str(c.get("success_contains") or "")
        self.provider_id_path = str(c.get("provider_id_path") or "")
        self.sender = str(c.get("sender") or "")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """The schema, then what it cannot say: the URL scheme, the status codes, the status words."""
        super().validate_config(config)

        def bad(message: str) -> InputError:
            return InputError(errors.INVALID_GATEWAY_CONFIG, message)

        if urlsplit(str(config["url"])).scheme not in ("http", "https"):
            raise bad("An http gateway's url must start with http:// or https://.")
        statuses = config.get("success_status")
        if statuses and not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses):
            raise bad("An http gateway's success_status must be a list of HTTP status codes.")
        values = (config.get("status") or {}).get("values") or {}
        if not isinstance(values, dict) or any(v not in ("sent", "delivered", "failed") for v in values.values()):
            raise bad("An http gateway's status.values must map to sent, delivered or failed.")

    # --- outbound --------------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        to = digits(msg.to)
        values = {
            "to": to,
            "to_plus": "+" + to,
            "text": msg.text,
            "message_id": str(msg.message_id),
            # the recipient's number of the gateway's pool (gateways.pools), else the configured sender
            "from": msg.sender or self.sender,
        }
        params = render(self.params, values)
        headers = {str(k): str(v) for k, v in render(self.headers, values).items()}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        if self.method == "GET":
            reply = await self.post(session, self.url, method="GET", params=_form(params), headers=headers)
        elif self.body == "json":
            reply = await self.post(session, self.url, json=params, headers=headers)
        else:
            reply = await self.post(session, self.url, data=_form(params), headers=headers)
        return self.classify(msg.message_id, reply)

    def classify(self, message_id: int, reply: HttpReply) -> SendResult:
        accepted = reply.status in self.success_status if self.success_status else reply.ok
        if not accepted:
            if reply.ok:  # a 2xx the config does not count as success: the provider refused
                return SendResult(message_id, "failed", error=errors.GATEWAY_ERROR, detail=reply.detail)
            return classify_http(message_id, reply)
        if self.success_contains and self.success_contains not in reply.body:
            # Many aggregators answer 200 with "ERR: …" in the body: a refusal, not a transient failure.
            return SendResult(message_id, "failed", error=errors.GATEWAY_ERROR, detail=reply.detail)
        provider_id = ""
        if self.provider_id_path:
            try:
                found = lookup(json.loads(reply.body), self.provider_id_path)
            except ValueError:
                found = None
            provider_id = "" if found is None else str(found)
        return SendResult(message_id, "sent", provider_id=provider_id)

    # --- inbound and status callbacks -----------------------------------------------------------
    def request_data(self, request: HttpRequest) -> dict[str, Any]:
        """Query string, then form or JSON body (the body wins): providers use all three."""
        data: dict[str, Any] = _flat(request.GET)
        if (request.content_type or "").lower() == "application/json":
            data.update(json_object_body(request.body, "The webhook"))
        elif request.method == "POST":
            data.update(_flat(request.POST))
        return data

    def verify_request(self, request: HttpRequest) -> bool:
        secret = self.config.get("inbound_secret") or {}
        expected = str(secret.get("value") or "")
        if not expected:
            return True
        if secret.get("header"):
            given = request.headers.get(str(secret["header"]), "")
        else:
            given = str(self.request_data(request).get(str(secret.get("param") or "secret"), ""))
        return hmac.compare_digest(given.encode(), expected.encode())

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        fields = {**DEFAULT_INBOUND, **(self.config.get("inbound") or {})}
        data = self.request_data(request)
        sender = _text(lookup(data, fields["from"]))
        if not sender:
            raise InputError(errors.INVALID_WEBHOOK, f"The inbound webhook has no '{fields['from']}' field.", 400)
        return [
            InboundSms(
                from_number=digits(sender),
                text=_text(lookup(data, fields["text"])),
                provider_id=_text(lookup(data, fields["id"])),
                to_number=digits(_text(lookup(data, fields["to"]))),
            )
        ]

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        cfg = {**DEFAULT_STATUS, **(self.config.get("status") or {})}
        values: dict[str, str] = cfg.get("values") or {}
        data = self.request_data(request)
        provider_id = _text(lookup(data, cfg["id"]))
        raw = _text(lookup(data, cfg["status"]))
        status = values.get(raw) if values else DEFAULT_STATUS_VALUES.get(raw.lower())
        if not provider_id or status is None:
            return []  # an intermediate state we do not track
        if status != "failed":
            return [StatusUpdate(provider_id, status)]
        error_text = _text(lookup(data, cfg["error"]))
        return [StatusUpdate(provider_id, "failed", error=errors.GATEWAY_ERROR, detail=f"{raw} {error_text}".strip())]

    def inbound_response(self) -> HttpResponse:
        r = self.config.get("inbound_response") or {}
        return HttpResponse(
            str(r.get("body") or ""),
            content_type=str(r.get("content_type") or "text/plain"),
            status=int(r.get("status") or 200),
        )


def _form(params: dict[str, Any]) -> dict[str, str]:
    return {k: _form_value(v) for k, v in params.items()}


def _form_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v)
    return "" if v is None else str(v)


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _flat(q: QueryDict) -> dict[str, Any]:
    return {k: q.get(k) for k in q}
