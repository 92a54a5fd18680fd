"""A generic HTTP gateway, for SMS providers and in-country aggregators without their own module.

Config (only `url` is required):
    url                 where to send, http(s)://…
    method              "POST" (default) or "GET" (parameters then go in the query string)
    body                "form" (default) or "json": how POST parameters are encoded
    params              {name: value}; string values may contain {to} (E.164 digits), {to_plus} ("+" and
                        digits), {text} and {message_id}; nested dicts/lists are templated too (JSON body).
                        Default {"to": "{to}", "text": "{text}"}
    headers             {name: value}, templated like params (e.g. an idempotency key "{message_id}")
    username, password  optional HTTP basic auth
    success_status      HTTP codes meaning "accepted" (default: any 2xx)
    success_contains    optional text the answer must contain to count as accepted
    provider_id_path    optional dotted path into the JSON answer to the provider's message id
                        ("data.messages.0.id"; list indexes are numbers)
    timeout             seconds for one call (default 15)

    inbound             {"from": field, "text": field, "id": field, "to": field}: where the provider puts
                        each value in its inbound webhook (form, JSON or query string; dotted paths in JSON).
                        Default {"from": "from", "text": "text", "id": "id", "to": "to"}
    status              {"id": field, "status": field, "error": field, "values": {provider status: ours}}:
                        the delivery-report webhook. `values` maps the provider's words to sent, delivered,
                        failed; by default the words sent/delivered/failed (any case) and DELIVRD/UNDELIV…
    inbound_secret      optional {"header": name | "param": name, "value": secret}: a shared secret the
                        provider sends with every webhook
    inbound_response    optional {"body": …, "content_type": …, "status": …}: what the webhook answers

A non-accepted answer is classified as usual: 429/5xx retry, other codes fail with GATEWAY_ERROR.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from django.http import HttpRequest, HttpResponse, QueryDict

from casemsg.core.errors import InputError
from casemsg.gateways.base import (
    GatewayType,
    InboundSms,
    OutboundSms,
    SendResult,
    StatusUpdate,
    classify_http,
    digits,
)

PLACEHOLDER = re.compile(r"\{(to|to_plus|text|message_id)\}")
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
    required_config: ClassVar[tuple[str, ...]] = ("url",)

    def __init__(self, gateway: Any):
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
        self.timeout = aiohttp.ClientTimeout(total=float(c.get("timeout") or self.timeout_seconds))

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        super().validate_config(config)

        def bad(message: str) -> InputError:
            return InputError("INVALID_GATEWAY_CONFIG", message)

        if urlsplit(str(config["url"])).scheme not in ("http", "https"):
            raise bad("An http gateway's url must start with http:// or https://.")
        if str(config.get("method") or "POST").upper() not in ("GET", "POST"):
            raise bad("An http gateway's method must be GET or POST.")
        if str(config.get("body") or "form").lower() not in ("form", "json"):
            raise bad('An http gateway\'s body must be "form" or "json".')
        for key in ("params", "headers", "inbound", "status", "inbound_secret", "inbound_response"):
            if key in config and not isinstance(config[key], dict):
                raise bad(f"An http gateway's {key} must be a JSON object.")
        statuses = config.get("success_status")
        if statuses is not None and not (
            isinstance(statuses, list) and all(isinstance(s, int) and 100 <= s <= 599 for s in statuses)
        ):
            raise bad("An http gateway's success_status must be a list of HTTP status codes.")
        values = (config.get("status") or {}).get("values") or {}
        if any(v not in ("sent", "delivered", "failed") for v in values.values()):
            raise bad("An http gateway's status.values must map to sent, delivered or failed.")

    # --- outbound --------------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        to = digits(msg.to)
        values = {"to": to, "to_plus": "+" + to, "text": msg.text, "message_id": str(msg.message_id)}
        params = render(self.params, values)
        headers = {str(k): str(v) for k, v in render(self.headers, values).items()}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        kwargs: dict[str, Any] = {"headers": headers, "timeout": self.timeout}
        if self.method == "GET":
            kwargs["params"] = {k: _form_value(v) for k, v in params.items()}
        elif self.body == "json":
            kwargs["json"] = params
        else:
            kwargs["data"] = {k: _form_value(v) for k, v in params.items()}
        async with session.request(self.method, self.url, **kwargs) as resp:
            # Decoded leniently: a provider's odd charset must not turn an answer into an exception.
            body = (await resp.read()).decode("utf-8", "replace")
            status = resp.status
        return self.classify(msg.message_id, status, body)

    def classify(self, message_id: int, status: int, body: str) -> SendResult:
        accepted = status in self.success_status if self.success_status else 200 <= status < 300
        if not accepted:
            if 200 <= status < 300:  # a 2xx the config does not count as success: the provider refused
                return SendResult(message_id, "failed", error="GATEWAY_ERROR", detail=f"HTTP {status}: {body[:300]}")
            return classify_http(message_id, status, body)
        if self.success_contains and self.success_contains not in body:
            # Many aggregators answer 200 with "ERR: …" in the body: a refusal, not a transient failure.
            return SendResult(message_id, "failed", error="GATEWAY_ERROR", detail=f"HTTP {status}: {body[:300]}")
        provider_id = ""
        if self.provider_id_path:
            try:
                found = lookup(json.loads(body), self.provider_id_path)
            except ValueError:
                found = None
            provider_id = "" if found is None else str(found)
        return SendResult(message_id, "sent", provider_id=provider_id)

    # --- inbound and status callbacks -----------------------------------------------------------
    def request_data(self, request: HttpRequest) -> dict[str, Any]:
        """Query string, then form or JSON body (the body wins): providers use all three."""
        data: dict[str, Any] = _flat(request.GET)
        if (request.content_type or "").lower() == "application/json":
            try:
                decoded = json.loads(request.body or b"{}")
            except ValueError as exc:
                raise InputError("INVALID_WEBHOOK", "The webhook body is not valid JSON.", 400) from exc
            if isinstance(decoded, dict):
                data.update(decoded)
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
            raise InputError("INVALID_WEBHOOK", f"The inbound webhook has no '{fields['from']}' field.", 400)
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
        return [StatusUpdate(provider_id, "failed", error="GATEWAY_ERROR", detail=f"{raw} {error_text}".strip())]

    def inbound_response(self) -> HttpResponse:
        r = self.config.get("inbound_response") or {}
        return HttpResponse(
            str(r.get("body") or ""),
            content_type=str(r.get("content_type") or "text/plain"),
            status=int(r.get("status") or 200),
        )


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
