"""Fake SMS providers on 127.0.0.1 that speak each provider's documented HTTP format.

Every gateway module is tested against one of these real HTTP servers rather than against mocks
(CONTRIBUTING.md, "Standards"), and the pipeline tests use them to measure what a provider would see: what arrived, how
often per number or message id, and when, on the server's own clock.

Kinds: "twilio", "telerivet", "africastalking", "http" (the generic gateway).

In-process (a daemon thread running its own asyncio loop)::

    with FakeGateway("twilio") as fake:
        Gateway(type="twilio", config=fake.gateway_config())
        fake.fail(times=2, status=500)            # two 500s, then normal answers
        fake.error_for("15551230000", 21610)      # a provider error code for one number, every time
        fake.error_for("15551230001", "invalid_number")   # a provider-neutral preset (see PRESETS)
        fake.delay(2.0, times=1)                  # answer the next request 2 s late
        fake.disconnect(times=1)                  # drop the next connection without answering
        fake.messages()                           # accepted messages (Received records)
        fake.requests()                           # every request, refused ones included
        fake.count_by_number(), fake.count_by_message_id(), fake.max_in_window(1.0)

In another process (same API, through the server's /_fake/ control endpoints)::

    with FakeGatewayProcess("http", lean=True) as fake:   # python -m fakes.gateways …
        ...

CLI: ``python -m fakes.gateways --kind twilio --port 0 [--lean] [--latency S]
[--opt key=value …]`` prints ``READY http://127.0.0.1:PORT`` once listening, then serves until
SIGTERM/SIGINT. Control endpoints: GET /_fake/requests[?since=SEQ&accepted=1], GET /_fake/stats,
GET /_fake/config, POST /_fake/rules (a Rule as JSON), DELETE /_fake/rules, POST /_fake/reset,
POST /_fake/latency {"seconds": S}.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from fakes.serving import HOST, ChildProcess, ThreadServer, serve_until_signalled


# --- records and failure scripts ---------------------------------------------------------------------
@dataclass
class Received:
    """One message (one recipient of one request) as the fake provider saw it."""

    seq: int
    t: float  # arrival, time.monotonic() of the server process: the provider's clock for rate checks
    wall: float  # arrival, time.time()
    kind: str
    method: str
    path: str
    to: str  # destination, E.164 digits (no '+')
    text: str
    message_id: str = ""  # the sender's own id when the request carries one (http kind: id_field)
    provider_id: str = ""  # the id the fake answered with; "" when refused
    status: int = 0  # HTTP status answered; 0 = connection dropped
    accepted: bool = False
    error: str = ""  # the provider error code answered, if any
    fields: dict[str, Any] = field(default_factory=dict)  # every parameter received (empty when lean)
    headers: dict[str, str] = field(default_factory=dict)  # request headers (empty when lean)


@dataclass
class Rule:
    """A scripted answer. The first rule matching a request's number (or any number, when `number` is
    None) with `times` left is used and counted down; `times=None` never runs out.

    - `error`: a provider error code (Twilio 21610, Telerivet "invalid_param", Africa's Talking 406) or a
      preset name from PRESETS; answered in the provider's own error format.
    - `status`: an HTTP status to answer (500, 429, …) in the provider's format for that status.
    - `body`: a raw body, overriding the provider's format (with `status`, default 200).
    - `delay`: seconds to wait before answering (the answer is otherwise normal unless set above).
    - `disconnect`: close the connection without answering.
    - `redirect`: answer with a redirect to this URL (`status`, default 307) instead of handling the request.
    """

    times: int | None = 1
    number: str | None = None
    error: str | int | None = None
    status: int | None = None
    body: str | None = None
    delay: float = 0.0
    disconnect: bool = False
    redirect: str | None = None

    @property
    def changes_answer(self) -> bool:
        return self.error is not None or self.status is not None or self.body is not None


# Provider-neutral names for common provider errors.
PRESETS: dict[str, dict[str, str | int]] = {
    "twilio": {
        "invalid_number": 21211,
        "opted_out": 21610,
        "not_mobile": 21614,
        "landline": 30006,
        "rate_limited": 20429,
    },
    "telerivet": {"invalid_number": "invalid_param"},
    "africastalking": {
        "invalid_number": 403,
        "unsupported_number": 404,
        "opted_out": 406,
        "insufficient_balance": 405,
        "gateway_error": 501,
    },
    "http": {},
}


def _digits(s: str) -> str:
    return "".join(ch for ch in s or "" if ch.isdigit())


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


@dataclass
class Item:
    """One recipient of a request, before the answer."""

    to: str
    text: str
    message_id: str = ""


class Refusal(Exception):
    """The provider refuses the request before looking at failure scripts (bad auth, missing field)."""

    def __init__(self, response: web.Response, error: str = ""):
        super().__init__(error)
        self.response = response
        self.error = error


# --- providers ---------------------------------------------------------------------------------------
class Provider:
    kind = ""

    async def fields(self, request: web.Request) -> dict[str, Any]:
        """Every parameter of the request: query string, then form or JSON body."""
        data: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if isinstance(body, dict):
                    data.update(body)
                elif body is not None:
                    data["_json"] = body
            else:
                data.update(await request.post())
        # form values arrive as str or FileField; JSON values keep their types
        return {k: v if isinstance(v, dict | list | int | float | bool | None) else str(v) for k, v in data.items()}

    def check(self, request: web.Request, fields: dict[str, Any]) -> list[Item]:
        """Authentication, path and required fields; raises Refusal like the provider would."""
        raise NotImplementedError

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def success(self, request: web.Request, fields: dict[str, Any], items: list[Item], ids: list[str]) -> web.Response:
        raise NotImplementedError

    def error_response(self, rule: Rule, item: Item) -> tuple[web.Response, str]:
        """The answer for a scripted rule that changes the answer, and the error code it carries."""
        raise NotImplementedError

    def respond(
        self, request: web.Request, fields: dict[str, Any], items: list[Item], rules: list[Rule | None]
    ) -> tuple[web.Response, list[str], list[str]]:
        """The answer, and per item the provider id ("" = refused) and error code. Single-recipient
        providers answer the first item's rule for the whole request. Everything request-specific is
        passed in: requests are answered concurrently, so providers keep no per-request state."""
        rule = rules[0]
        if rule is not None and rule.changes_answer:
            if rule.body is not None:
                resp = web.Response(text=rule.body, status=rule.status or 200, content_type="application/json")
                return resp, [""] * len(items), [str(rule.error or "")] * len(items)
            resp, error = self.error_response(rule, items[0])
            return resp, [""] * len(items), [error] * len(items)
        ids = [self.new_id() for _ in items]
        return self.success(request, fields, items, ids), ids, [""] * len(items)

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        raise NotImplementedError

    def resolve(self, error: str | int | None) -> str | int | None:
        if isinstance(error, str) and error in PRESETS.get(self.kind, {}):
            return PRESETS[self.kind][error]
        return error


class TwilioProvider(Provider):
    """POST /2010-04-01/Accounts/{AccountSid}/Messages.json, basic auth AccountSid:AuthToken, form fields
    To, From | MessagingServiceSid, Body, StatusCallback. 201 + Message resource; errors
    {"code", "message", "more_info", "status"}."""

    kind = "twilio"
    MESSAGES = {
        20003: (401, "Authentication Error - invalid username"),
        20404: (404, "The requested resource was not found"),
        20429: (429, "Too Many Requests"),
        20500: (500, "Internal Server Error"),
        21211: (400, "The 'To' number is not a valid phone number."),
        21602: (400, "Message body is required."),
        21603: (400, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."),
        21604: (400, "A 'To' phone number is required."),
        21610: (400, "Attempt to send to unsubscribed recipient"),
        21614: (400, "'To' number is not a valid mobile number"),
        30006: (400, "Landline or unreachable carrier"),
    }
    STATUS_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "fake-auth-token", **_: Any):
        self.account_sid = account_sid
        self.auth_token = auth_token

    def error(self, code: int, status: int | None = None, message: str | None = None) -> web.Response:
        default_status, default_message = self.MESSAGES.get(code, (400, f"Error {code}"))
        status = status or default_status
        body = {
            "code": code,
            "message": message or default_message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(body, status=status)

    def check(self, request: web.Request, fields: dict[str, Any]) -> list[Item]:
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if request.method != "POST" or request.path != path:
            raise Refusal(self.error(20404), "20404")
        if _basic_auth(request) != (self.account_sid, self.auth_token):
            raise Refusal(self.error(20003), "20003")
        to = str(fields.get("To", ""))
        if not to:
            raise Refusal(self.error(21604), "21604")
        if not fields.get("Body"):
            raise Refusal(self.error(21602), "21602")
        if not (fields.get("From") or fields.get("MessagingServiceSid")):
            raise Refusal(self.error(21603), "21603")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            raise Refusal(self.error(21211, message=f"The 'To' number {to} is not a valid phone number."), "21211")
        return [Item(_digits(to), str(fields["Body"]))]

    def new_id(self) -> str:
        return "SM" + uuid.uuid4().hex

    def success(self, request: web.Request, f: dict[str, Any], items: list[Item], ids: list[str]) -> web.Response:
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        body = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": items[0].text,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": f.get("From"),
            "messaging_service_sid": f.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": ids[0],
            "status": "accepted" if f.get("MessagingServiceSid") and not f.get("From") else "queued",
            "to": "+" + items[0].to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{ids[0]}.json",
        }
        return web.json_response(body, status=201)

    def error_response(self, rule: Rule, item: Item) -> tuple[web.Response, str]:
        code = self.resolve(rule.error)
        if code is None:
            status = rule.status or 500
            code = self.STATUS_CODES.get(status, 20500 if status >= 500 else 21000)
            return self.error(int(code), status), str(code)
        return self.error(int(code), rule.status), str(code)

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "from_number": "+15550001111",
            "base_url": base_url,
        }


class TelerivetProvider(Provider):
    """POST /v1/projects/{project_id}/messages/send, basic auth api_key with an empty password, JSON
    {"to_number", "content", "route_id"?, "status_url"?}. 200 + Message object; errors
    {"error": {"code", "message", "param"?}}."""

    kind = "telerivet"

    def __init__(self, api_key: str = "fake-telerivet-key", project_id: str = "PJ0123456789abcdef", **_: Any):
        self.api_key = api_key
        self.project_id = project_id

    @staticmethod
    def error(code: str, message: str, status: int = 400, param: str | None = None) -> web.Response:
        err: dict[str, Any] = {"code": code, "message": message}
        if param:
            err["param"] = param
        return web.json_response({"error": err}, status=status)

    def check(self, request: web.Request, fields: dict[str, Any]) -> list[Item]:
        if request.method != "POST" or request.path != f"/v1/projects/{self.project_id}/messages/send":
            raise Refusal(self.error("not_found", "Not found", 404), "not_found")
        auth = _basic_auth(request)
        if auth is None or auth[0] != self.api_key:
            raise Refusal(self.error("invalid_api_key", "Invalid API key", 401), "invalid_api_key")
        if request.content_type != "application/json":
            raise Refusal(self.error("invalid_param", "Expected a JSON body"), "invalid_param")
        to = str(fields.get("to_number") or "")
        if not to:
            raise Refusal(self.error("invalid_param", "to_number is required", param="to_number"), "invalid_param")
        if not fields.get("content"):
            raise Refusal(self.error("invalid_param", "content is required", param="content"), "invalid_param")
        if not re.fullmatch(r"\+?[1-9]\d{6,14}", to):
            resp = self.error("invalid_param", f"Invalid phone number: {to}", param="to_number")
            raise Refusal(resp, "invalid_param")
        return [Item(_digits(to), str(fields["content"]))]

    def new_id(self) -> str:
        return "SM" + uuid.uuid4().hex[:16]

    def success(self, request: web.Request, f: dict[str, Any], items: list[Item], ids: list[str]) -> web.Response:
        body = {
            "id": ids[0],
            "direction": "outgoing",
            "status": "queued",
            "message_type": "sms",
            "source": "api",
            "time_created": int(time.time()),
            "to_number": "+" + items[0].to,
            "content": items[0].text,
            "project_id": self.project_id,
            "route_id": f.get("route_id") or "PNdefault",
            "status_url": f.get("status_url"),
        }
        return web.json_response(body)

    def error_response(self, rule: Rule, item: Item) -> tuple[web.Response, str]:
        code = self.resolve(rule.error)
        if code is None:
            status = rule.status or 500
            code = "rate_limit_exceeded" if status == 429 else ("internal_error" if status >= 500 else "bad_request")
            return self.error(code, f"HTTP {status}", status), code
        if code == "invalid_param":
            return self.error(code, f"Invalid phone number: +{item.to}", rule.status or 400, "to_number"), code
        return self.error(str(code), str(code), rule.status or 400), str(code)

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        return {"api_key": self.api_key, "project_id": self.project_id, "base_url": base_url}


class AfricasTalkingProvider(Provider):
    """POST /version1/messaging, header apiKey, form username, to (comma-separated), message, from?.
    201 + {"SMSMessageData": {"Message", "Recipients": [{"statusCode", "number", "status", "cost",
    "messageId", "messageParts"}]}}; JSON only with Accept: application/json (XML otherwise)."""

    kind = "africastalking"
    STATUS_NAMES = {
        100: "Processed",
        101: "Success",
        102: "Queued",
        401: "RiskHold",
        402: "InvalidSenderId",
        403: "InvalidPhoneNumber",
        404: "UnsupportedNumberType",
        405: "InsufficientBalance",
        406: "UserInBlacklist",
        407: "CouldNotRoute",
        409: "DoNotDisturbRejection",
        500: "InternalServerError",
        501: "GatewayError",
        502: "RejectedByGateway",
    }

    def __init__(self, username: str = "sandbox", api_key: str = "fake-at-key", **_: Any):
        self.username = username
        self.api_key = api_key

    def check(self, request: web.Request, fields: dict[str, Any]) -> list[Item]:
        if request.method != "POST" or request.path != "/version1/messaging":
            raise Refusal(web.Response(text="Not Found", status=404), "404")
        if request.headers.get("apiKey") != self.api_key or fields.get("username") != self.username:
            raise Refusal(web.Response(text="The supplied authentication is invalid", status=401), "401")
        for name in ("username", "to", "message"):
            if not fields.get(name):
                raise Refusal(web.Response(text=f"Request is missing required form field '{name}'", status=400), "400")
        return [Item(n.strip(), str(fields["message"])) for n in str(fields["to"]).split(",") if n.strip()]

    def new_id(self) -> str:
        return "ATXid_" + uuid.uuid4().hex

    def respond(
        self, request: web.Request, fields: dict[str, Any], items: list[Item], rules: list[Rule | None]
    ) -> tuple[web.Response, list[str], list[str]]:
        # A rule with only an HTTP status (or a raw body) fails the whole request; an error code fails
        # only its recipient, inside a normal 201 answer, as the real API does.
        for rule in rules:
            if rule is not None and rule.error is None and (rule.status is not None or rule.body is not None):
                status = rule.status or 200
                text = rule.body if rule.body is not None else f"HTTP {status}"
                return web.Response(text=text, status=status), [""] * len(items), [str(status)] * len(items)
        recipients, ids, errors = [], [], []
        for item, rule in zip(items, rules, strict=True):
            valid = re.fullmatch(r"\+[1-9]\d{6,14}", item.to) is not None
            code = self.resolve(rule.error) if rule is not None else None
            if code is None and not valid:
                code = 403
            number = item.to
            if code is None:
                mid = self.new_id()
                recipients.append(
                    {
                        "statusCode": 101,
                        "number": number,
                        "status": "Success",
                        "cost": "KES 0.8000",
                        "messageId": mid,
                        "messageParts": 1,
                    }
                )
                ids.append(mid)
                errors.append("")
            else:
                n = int(code)
                recipients.append(
                    {
                        "statusCode": n,
                        "number": number,
                        "status": self.STATUS_NAMES.get(n, "Failed"),
                        "cost": "0",
                        "messageId": "None",
                    }
                )
                ids.append("")
                errors.append(str(n))
        sent = sum(1 for i in ids if i)
        message = f"Sent to {sent}/{len(items)} Total Cost: KES {0.8 * sent:.4f}"
        data = {"SMSMessageData": {"Message": message, "Recipients": recipients}}
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response(data, status=201), ids, errors
        return web.Response(text=self._xml(data), status=201, content_type="application/xml"), ids, errors

    @staticmethod
    def _xml(data: dict[str, Any]) -> str:
        d = data["SMSMessageData"]
        rows = "".join(
            "<Recipient>" + "".join(f"<{k}>{v}</{k}>" for k, v in r.items()) + "</Recipient>" for r in d["Recipients"]
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><AfricasTalkingResponse><SMSMessageData>'
            f"<Message>{d['Message']}</Message><Recipients>{rows}</Recipients></SMSMessageData></AfricasTalkingResponse>"
        )

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        return {"username": self.username, "api_key": self.api_key, "base_url": base_url}


class HttpProvider(Provider):
    """A generic aggregator: any path (or `path`), any method (or `method`), parameters from the query,
    a form or a JSON body; optional basic auth. 200 {"status": "ok", "id": …}."""

    kind = "http"

    def __init__(
        self,
        path: str | None = None,
        method: str | None = None,
        username: str | None = None,
        password: str | None = None,
        to_field: str = "to",
        text_field: str = "text",
        id_field: str = "message_id",
        **_: Any,
    ):
        self.path = path
        self.method = method.upper() if method else None
        self.username = username
        self.password = password or ""
        self.to_field = to_field
        self.text_field = text_field
        self.id_field = id_field

    def check(self, request: web.Request, fields: dict[str, Any]) -> list[Item]:
        if (self.path and request.path != self.path) or (self.method and request.method != self.method):
            raise Refusal(web.json_response({"status": "error", "error": "not found"}, status=404), "404")
        if self.username and _basic_auth(request) != (self.username, self.password):
            raise Refusal(web.json_response({"status": "error", "error": "unauthorized"}, status=401), "401")
        to = str(fields.get(self.to_field) or "")
        if not to:
            resp = web.json_response({"status": "error", "error": f"missing {self.to_field}"}, status=400)
            raise Refusal(resp, "400")
        return [Item(_digits(to), str(fields.get(self.text_field) or ""), str(fields.get(self.id_field) or ""))]

    def success(self, request: web.Request, fields: dict[str, Any], items: list[Item], ids: list[str]) -> web.Response:
        return web.json_response({"status": "ok", "id": ids[0]})

    def error_response(self, rule: Rule, item: Item) -> tuple[web.Response, str]:
        status = rule.status or (400 if rule.error is not None else 500)
        error = str(rule.error if rule.error is not None else status)
        return web.json_response({"status": "error", "error": error}, status=status), error

    def gateway_config(self, base_url: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "url": base_url + (self.path or "/send"),
            "method": self.method or "POST",
            "body": "form",
            "params": {self.to_field: "{to}", self.text_field: "{text}", self.id_field: "{message_id}"},
            "provider_id_path": "id",
        }
        if self.username:
            config.update(username=self.username, password=self.password)
        return config


PROVIDERS: dict[str, type[Provider]] = {
    p.kind: p for p in (TwilioProvider, TelerivetProvider, AfricasTalkingProvider, HttpProvider)
}


# --- reading and scripting, shared by the in-process and remote fakes --------------------------------
class FakeApi:
    kind: str
    url: str

    # implemented by the two transports
    def requests(self, accepted: bool | None = None, since: int = 0) -> list[Received]:
        raise NotImplementedError

    def add_rule(self, rule: Rule) -> None:
        raise NotImplementedError

    def clear_rules(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every request and rule (and latency)."""
        raise NotImplementedError

    def set_latency(self, seconds: float) -> None:
        """Answer every request this many seconds late."""
        raise NotImplementedError

    def gateway_config(self, **overrides: Any) -> dict[str, Any]:
        """A config for this gateway type that points at this fake (merge `overrides`)."""
        raise NotImplementedError

    # scripting
    def fail(self, times: int | None = 1, status: int = 500, number: str | None = None) -> None:
        """Answer the next `times` requests (to `number`, or to any number) with HTTP `status`."""
        self.add_rule(Rule(times=times, number=_digits(number) if number else None, status=status))

    def error_for(
        self, number: str | None, error: str | int, times: int | None = None, status: int | None = None
    ) -> None:
        """Answer messages to `number` (None: any) with a provider error code, by default every time."""
        self.add_rule(Rule(times=times, number=_digits(number) if number else None, error=error, status=status))

    def delay(self, seconds: float, times: int | None = 1, number: str | None = None) -> None:
        """Answer the next `times` requests normally but `seconds` late."""
        self.add_rule(Rule(times=times, number=_digits(number) if number else None, delay=seconds))

    def disconnect(self, times: int | None = 1, number: str | None = None) -> None:
        """Close the next `times` connections without answering."""
        self.add_rule(Rule(times=times, number=_digits(number) if number else None, disconnect=True))

    # reading
    def messages(self) -> list[Received]:
        """Messages the provider accepted (what a handset would eventually get)."""
        return self.requests(accepted=True)

    def count_by_number(self) -> Counter[str]:
        return Counter(r.to for r in self.messages())

    def count_by_message_id(self) -> Counter[str]:
        return Counter(r.message_id for r in self.messages())

    def count_by_text(self) -> Counter[str]:
        return Counter(r.text for r in self.messages())

    def duplicates(self, key: str = "message_id") -> dict[str, int]:
        """Accepted messages seen more than once, by `key` (message_id, to or text)."""
        counts = Counter(getattr(r, key) for r in self.messages())
        return {k: n for k, n in counts.items() if n > 1}

    def max_in_window(
        self, window: float = 1.0, weight: Callable[[Received], float] | None = None, accepted: bool = True
    ) -> float:
        """The most messages (or summed `weight`, e.g. segments) that arrived within any `window`
        seconds, on the server's clock: the rate a provider would measure."""
        records = sorted(self.requests(accepted=True if accepted else None), key=lambda r: r.t)
        times = [r.t for r in records]
        weights = [weight(r) if weight else 1.0 for r in records]
        best, total, lo = 0.0, 0.0, 0
        for hi, t in enumerate(times):
            total += weights[hi]
            while times[lo] <= t - window:
                total -= weights[lo]
                lo += 1
            best = max(best, total)
        return best

    def arrivals_per_second(self) -> list[int]:
        """Accepted messages per whole second since the first one (server clock)."""
        times = sorted(r.t for r in self.messages())
        if not times:
            return []
        start = times[0]
        return [
            bisect.bisect_left(times, start + s + 1) - bisect.bisect_left(times, start + s)
            for s in range(int(times[-1] - start) + 1)
        ]

    def wait_for(self, count: int, timeout: float = 10.0, accepted: bool = True) -> list[Received]:
        """Wait until `count` messages (or requests, accepted=False) arrived; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests(accepted=True if accepted else None)
            if len(got) >= count or time.monotonic() >= deadline:
                return got
            time.sleep(0.01)


class _State:
    """Records and rules, shared between the server's loop thread and the test thread."""

    def __init__(self, lean: bool):
        self.lean = lean
        self.lock = threading.Lock()
        self.records: list[Received] = []
        self.rules: list[Rule] = []
        self.latency = 0.0
        self.seq = 0

    def take_rule(self, number: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.number not in (None, number) or rule.times == 0:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None

    def add(self, **kw: Any) -> None:
        with self.lock:
            self.seq += 1
            self.records.append(Received(seq=self.seq, **kw))

    def select(self, accepted: bool | None, since: int) -> list[Received]:
        with self.lock:
            records = self.records[since:] if since else list(self.records)  # seq n sits at index n-1
        return [r for r in records if accepted is None or r.accepted == accepted]


def build_app(provider: Provider, state: _State) -> web.Application:
    async def control(request: web.Request) -> web.Response:
        op = request.match_info["op"]
        if op == "requests" and request.method == "GET":
            accepted = {"1": True, "0": False}.get(request.query.get("accepted", ""))
            records = state.select(accepted, int(request.query.get("since", 0)))
            return web.json_response({"requests": [asdict(r) for r in records]})
        if op == "stats" and request.method == "GET":
            records = state.select(None, 0)
            return web.json_response({"requests": len(records), "accepted": sum(r.accepted for r in records)})
        if op == "config" and request.method == "GET":
            base = f"http://{request.host}"
            return web.json_response({"kind": provider.kind, "config": provider.gateway_config(base)})
        if op == "rules" and request.method == "POST":
            data = await request.json()
            with state.lock:
                state.rules.append(Rule(**data))
            return web.json_response({"ok": True})
        if op == "rules" and request.method == "DELETE":
            with state.lock:
                state.rules.clear()
            return web.json_response({"ok": True})
        if op == "reset" and request.method == "POST":
            with state.lock:
                state.rules.clear()
                state.records.clear()
                state.seq = 0
                state.latency = 0.0
            return web.json_response({"ok": True})
        if op == "latency" and request.method == "POST":
            state.latency = float((await request.json())["seconds"])
            return web.json_response({"ok": True})
        return web.json_response({"error": "unknown control operation"}, status=404)

    async def handle(request: web.Request) -> web.StreamResponse:
        t, wall = time.monotonic(), time.time()
        fields = await provider.fields(request)
        common = {
            "t": t,
            "wall": wall,
            "kind": provider.kind,
            "method": request.method,
            "path": request.path,
            "fields": {} if state.lean else fields,
            "headers": {} if state.lean else dict(request.headers),
        }
        try:
            items = provider.check(request, fields)
        except Refusal as refusal:
            to = _digits(str(fields.get("To") or fields.get("to_number") or fields.get("to") or ""))
            state.add(to=to, text="", status=refusal.response.status, error=refusal.error, **common)
            return refusal.response
        rules = [state.take_rule(_digits(item.to)) for item in items]
        wait = state.latency + max((r.delay for r in rules if r is not None), default=0.0)
        if wait:
            await asyncio.sleep(wait)
        if any(r is not None and r.disconnect for r in rules):
            for item in items:
                state.add(to=_digits(item.to), text=item.text, message_id=item.message_id, status=0, **common)
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection reset, no HTTP answer
            raise asyncio.CancelledError
        redirect = next((r for r in rules if r is not None and r.redirect), None)
        if redirect is not None and redirect.redirect:
            status = redirect.status or 307
            for item in items:
                state.add(to=_digits(item.to), text=item.text, message_id=item.message_id, status=status, **common)
            return web.Response(status=status, headers={"Location": redirect.redirect})
        resp, ids, errors = provider.respond(request, fields, items, rules)
        for item, pid, err in zip(items, ids, errors, strict=True):
            state.add(
                to=_digits(item.to),
                text=item.text,
                message_id=item.message_id,
                provider_id=pid,
                status=resp.status,
                accepted=bool(pid),
                error=err,
                **common,
            )
        return resp

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_route("*", "/_fake/{op}", control)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


class FakeGateway(ThreadServer, FakeApi):
    """A fake provider served from a daemon thread of this process. Use as a context manager, or call
    start() and stop()."""

    def __init__(self, kind: str = "http", *, port: int = 0, lean: bool = False, host: str = HOST, **options: Any):
        # `host`: another loopback address (127.0.0.2) for tests of the address guard
        super().__init__(host, port, f"fake-{kind}")
        self.kind = kind
        self.provider = PROVIDERS[kind](**options)
        self.state = _State(lean)

    def app(self) -> web.Application:
        return build_app(self.provider, self.state)

    def requests(self, accepted: bool | None = None, since: int = 0) -> list[Received]:
        return self.state.select(accepted, since)

    def add_rule(self, rule: Rule) -> None:
        with self.state.lock:
            self.state.rules.append(rule)

    def clear_rules(self) -> None:
        with self.state.lock:
            self.state.rules.clear()

    def reset(self) -> None:
        with self.state.lock:
            self.state.rules.clear()
            self.state.records.clear()
            self.state.seq = 0
            self.state.latency = 0.0

    def set_latency(self, seconds: float) -> None:
        self.state.latency = seconds

    def gateway_config(self, **overrides: Any) -> dict[str, Any]:
        return {**self.provider.gateway_config(self.url), **overrides}


class RemoteFakeGateway(FakeApi):
    """The same API for a fake running elsewhere (another process), through /_fake/ endpoints."""

    def __init__(self, url: str, kind: str | None = None):
        self.url = url.rstrip("/")
        self.kind = kind or self._call("GET", "config")["kind"]

    def _call(self, method: str, op: str, body: Any = None, query: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_fake/{op}{query}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def requests(self, accepted: bool | None = None, since: int = 0) -> list[Received]:
        q = f"?since={since}" + ("" if accepted is None else f"&accepted={int(accepted)}")
        return [Received(**r) for r in self._call("GET", "requests", query=q)["requests"]]

    def stats(self) -> dict[str, int]:
        """Counts only: cheap to poll while 100,000 messages arrive."""
        return self._call("GET", "stats")

    def wait_for(self, count: int, timeout: float = 10.0, accepted: bool = True) -> list[Received]:
        deadline = time.monotonic() + timeout
        key = "accepted" if accepted else "requests"
        while self.stats()[key] < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requests(accepted=True if accepted else None)

    def add_rule(self, rule: Rule) -> None:
        self._call("POST", "rules", asdict(rule))

    def clear_rules(self) -> None:
        self._call("DELETE", "rules")

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def set_latency(self, seconds: float) -> None:
        self._call("POST", "latency", {"seconds": seconds})

    def gateway_config(self, **overrides: Any) -> dict[str, Any]:
        return {**self._call("GET", "config")["config"], **overrides}


class FakeGatewayProcess(RemoteFakeGateway):
    """A fake provider in a child process (`python -m fakes.gateways`), so it does not
    share a GIL with the code under test: for multi-process and throughput tests."""

    def __init__(self, kind: str = "http", *, lean: bool = False, latency: float = 0.0, **options: Any):
        self.kind = kind
        args = [sys.executable, "-m", "fakes.gateways", "--kind", kind, "--port", "0"]
        if lean:
            args.append("--lean")
        if latency:
            args += ["--latency", str(latency)]
        for k, v in options.items():
            args += ["--opt", f"{k}={v}"]
        self.child = ChildProcess(args, "gateway")

    @property
    def proc(self) -> subprocess.Popen[str] | None:
        """The child process while it runs."""
        return self.child.proc

    def start(self) -> FakeGatewayProcess:
        super().__init__(self.child.start(), self.kind)
        return self

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> FakeGatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- command line ------------------------------------------------------------------------------------
def _parse_opts(pairs: Iterable[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--opt wants key=value, got {pair!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake SMS provider on 127.0.0.1 (tests and benchmarks).")
    parser.add_argument("--kind", choices=sorted(PROVIDERS), default="http")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the READY line)")
    parser.add_argument("--lean", action="store_true", help="record no fields or headers (long benchmarks)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="provider option: account_sid, auth_token (twilio); api_key, project_id (telerivet); "
        "username, api_key (africastalking); path, method, username, password, to_field, text_field, "
        "id_field (http)",
    )
    args = parser.parse_args(argv)
    fake = FakeGateway(args.kind, port=args.port, lean=args.lean, **_parse_opts(args.opt))
    fake.state.latency = args.latency
    serve_until_signalled(fake)


if __name__ == "__main__":
    main()
