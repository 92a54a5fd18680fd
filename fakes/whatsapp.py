"""Fake WhatsApp providers on 127.0.0.1: Meta's Graph API (Cloud API) and Twilio's WhatsApp Messages and
Content APIs, each checking what the real one checks and answering its documented bodies.

    with FakeWhatsApp("meta") as fake:                 # or "twilio"
        Gateway(type="meta_cloud", config=fake.gateway_config())
        fake.add_template("visit_reminder", "Hello {{1}}, your visit is on {{2}}.")
        fake.user_wrote("254711000001")                  # the person wrote: their 24-hour window opens
        fake.error_for("254711000002", 131026)           # a provider error for one number (times=None: always)
        fake.fail(130429, times=1)                       # the next request answers 130429
        fake.messages()                                  # accepted messages: (to, body as received)
        fake.requests()                                  # every request, refused ones too

Meta (https://developers.facebook.com/docs/whatsapp/cloud-api): POST /{version}/{phone_number_id}/messages
needs `Authorization: Bearer <token>` (else 401, code 190) and a JSON body with messaging_product
"whatsapp", `to` and a `type` whose object is present and well formed (else 400, code 100); free text
(`text`, `interactive`) to a number whose window is closed answers 131047 like the real API (the window
is the fake's own: `user_wrote`; `enforce_window=False` turns it off); a template must be listed and
APPROVED (else 132001). GET /{version}/{waba_id}/message_templates lists the templates, paged by
`paging.next`.

Twilio (https://www.twilio.com/docs/whatsapp/api): POST /2010-04-01/Accounts/{sid}/Messages.json with
basic auth (else 401, code 20003), `To`/`From` as whatsapp:+E164 (else 21211/63007), and `Body` or
`ContentSid` (+ `ContentVariables` JSON); free text outside the window answers 63016. GET
/v1/ContentAndApprovals lists Content items with their WhatsApp approval.

Webhooks to casemsg: `meta_webhook(...)` / `meta_status(...)` build Meta's bodies and `meta_signature`
signs them (X-Hub-Signature-256); `twilio_signature` signs Twilio's form posts (X-Twilio-Signature).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
VERSION = "v21.0"

# The documented error bodies (Meta: {"error": {...}}; Twilio: {"code", "message", "more_info", "status"}).
META_ERRORS: dict[int, tuple[int, str, str]] = {
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    130429: (400, "Rate limit hit", "Cloud API message throughput has been reached."),
    131056: (
        400,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number in a short "
        "period of time.",
    ),
    131026: (
        400,
        "Message Undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number.",
    ),
    132001: (
        404,
        "Template name does not exist in the translation",
        "Template name does not exist in the translation.",
    ),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    100: (400, "Invalid parameter", "Invalid parameter."),
    190: (401, "Invalid OAuth access token - Cannot parse access token", ""),
}
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. If you are using "
        "WhatsApp, please use a Message Template.",
    ),
    63018: (429, "Rate limit exceeded for Channel"),
    20429: (429, "Too Many Requests"),
    63003: (400, "Channel could not find To address"),
    63027: (400, "Template does not exist for a language and locale"),
    21211: (400, "Invalid 'To' Phone Number"),
    20003: (401, "Authenticate"),
    21619: (400, "A text message body or media urls must be specified."),
}


def meta_error_body(code: int) -> tuple[int, dict[str, Any]]:
    status, message, details = META_ERRORS.get(code, (400, "Unknown error", ""))
    err: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": uuid.uuid4().hex[:20],
    }
    if details:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return status, {"error": err}


def twilio_error_body(code: int) -> tuple[int, dict[str, Any]]:
    status, message = TWILIO_ERRORS.get(code, (400, "Error"))
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class Request:
    seq: int
    t: float
    method: str
    path: str
    status: int
    to: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    accepted: bool = False
    error: int | None = None
    provider_id: str = ""


@dataclass
class _Rule:
    code: int
    times: int | None
    number: str | None


def _digits(s: str) -> str:
    return "".join(ch for ch in s or "" if ch.isdigit())


class FakeWhatsApp:
    def __init__(
        self, kind: str = "meta", *, enforce_window: bool = True, lean: bool = False, latency: float = 0.0
    ) -> None:
        assert kind in ("meta", "twilio")
        self.kind = kind
        self.enforce_window = enforce_window
        self.lean = lean  # keep counts only (the benchmark): no request records
        self.latency = latency
        self.token = "EAAG-fake-token"
        self.phone_number_id = "106540352242922"
        self.waba_id = "102290129340398"
        self.account_sid = "AC" + "0" * 32
        self.auth_token = "fake-auth-token"
        self.from_number = "15550001111"
        self.templates: list[dict[str, Any]] = []
        self.windows: dict[str, float] = {}
        self._rules: list[_Rule] = []
        self._requests: list[Request] = []
        self.accepted = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeWhatsApp:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=4 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, HOST, 0, backlog=1024)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name=f"fake-whatsapp-{self.kind}")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop, runner = self._loop, self._runner

        async def shutdown() -> None:
            if runner is not None:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeWhatsApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def gateway_config(self, **extra: Any) -> dict[str, Any]:
        if self.kind == "meta":
            return {
                "phone_number_id": self.phone_number_id,
                "waba_id": self.waba_id,
                "access_token": self.token,
                "app_secret": "fake-app-secret",
                "verify_token": "fake-verify-token",
                "api_version": VERSION,
                "base_url": self.url,
                **extra,
            }
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "from_number": "+" + self.from_number,
            "base_url": self.url,
            "content_url": self.url,
            **extra,
        }

    # --- scripting ---------------------------------------------------------------------------------
    def user_wrote(self, number: str, at: float | None = None) -> None:
        self.windows[_digits(number)] = time.time() if at is None else at

    def error_for(self, number: str, code: int, times: int | None = None) -> None:
        self._rules.append(_Rule(code, times, _digits(number)))

    def fail(self, code: int, times: int | None = 1) -> None:
        self._rules.append(_Rule(code, times, None))

    def add_template(
        self, name: str, body: str, language: str = "en", status: str = "APPROVED", category: str = "UTILITY"
    ) -> None:
        n = len(self.templates) + 1
        variables = {}
        for i in range(1, 10):
            if "{{" + str(i) + "}}" in body:
                variables[str(i)] = f"example {i}"
        if self.kind == "meta":
            self.templates.append(
                {
                    "name": name,
                    "language": language,
                    "status": status,
                    "category": category,
                    "id": str(900000 + n),
                    "components": [{"type": "BODY", "text": body}],
                }
            )
        else:
            self.templates.append(
                {
                    "sid": f"HX{n:032x}",
                    "friendly_name": name,
                    "language": language,
                    "variables": variables,
                    "types": {"twilio/text": {"body": body}},
                    "approval_requests": {"name": name, "category": category.lower(), "status": status.lower()},
                }
            )

    # --- records -----------------------------------------------------------------------------------
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def messages(self) -> list[Request]:
        """The messages accepted (not the template lists)."""
        return [r for r in self.requests() if r.accepted and r.method == "POST"]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._rules.clear()
            self.accepted = self.refused = 0

    def _scripted(self, number: str) -> int | None:
        with self._lock:
            for r in self._rules:
                if r.number is not None and r.number != number:
                    continue
                if r.times is not None:
                    if r.times <= 0:
                        continue
                    r.times -= 1
                return r.code
        return None

    def _record(self, req: Request) -> None:
        with self._lock:
            self._seq += 1
            req.seq = self._seq
            if req.accepted:
                self.accepted += 1
            else:
                self.refused += 1
            if not self.lean:
                self._requests.append(req)

    def _window_open(self, number: str) -> bool:
        at = self.windows.get(number)
        return at is not None and time.time() - at < 24 * 3600

    # --- the HTTP server ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.kind == "meta":
            return await self._meta(request)
        return await self._twilio(request)

    async def _meta(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        req = Request(0, time.monotonic(), request.method, path, 0)
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return self._meta_refuse(req, 190)
        if request.method == "GET" and path == f"/{VERSION}/{self.waba_id}/message_templates":
            return self._meta_templates(request, req)
        if request.method != "POST" or path != f"/{VERSION}/{self.phone_number_id}/messages":
            req.status = 404
            self._record(req)
            return web.json_response({"error": {"message": "Unknown path", "code": 803}}, status=404)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._meta_refuse(req, 100)
        req.body = {} if self.lean else body
        to = _digits(str(body.get("to") or "")) if isinstance(body, dict) else ""
        req.to = to
        if not _meta_shape_ok(body):
            return self._meta_refuse(req, 100)
        scripted = self._scripted(to)
        if scripted is not None:
            return self._meta_refuse(req, scripted)
        kind = body["type"]
        if kind == "template":
            t = body["template"]
            known = [x for x in self.templates if x["name"] == t["name"] and x["language"] == t["language"]["code"]]
            if not known or known[0]["status"] != "APPROVED":
                return self._meta_refuse(req, 132001)
        elif self.enforce_window and not self._window_open(to):
            return self._meta_refuse(req, 131047)
        wamid = "wamid." + base64.b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        req.status, req.accepted, req.provider_id = 200, True, wamid
        self._record(req)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": to}],
                "messages": [{"id": wamid}],
            }
        )

    def _meta_refuse(self, req: Request, code: int) -> web.Response:
        status, body = meta_error_body(code)
        req.status, req.error = status, code
        self._record(req)
        return web.json_response(body, status=status)

    def _meta_templates(self, request: web.Request, req: Request) -> web.Response:
        limit = int(request.query.get("limit", "25"))
        after = int(request.query.get("after", "0"))
        page = self.templates[after : after + limit]
        data: dict[str, Any] = {
            "data": page,
            "paging": {"cursors": {"before": str(after), "after": str(after + len(page))}},
        }
        if after + limit < len(self.templates):
            data["paging"]["next"] = (
                f"{self.url}/{VERSION}/{self.waba_id}/message_templates?limit={limit}&after={after + limit}"
            )
        req.status, req.accepted = 200, True
        self._record(req)
        return web.json_response(data)

    def sends(self) -> list[Request]:
        """Every message request, refused ones too (not the template lists)."""
        return [r for r in self.requests() if r.method == "POST"]

    async def _twilio(self, request: web.Request) -> web.StreamResponse:
        req = Request(0, time.monotonic(), request.method, request.path, 0)
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization", "") != expected:
            return self._twilio_refuse(req, 20003)
        if request.method == "GET" and request.path == "/v1/ContentAndApprovals":
            req.status, req.accepted = 200, True
            self._record(req)
            size = int(request.query.get("PageSize", "50"))
            page = int(request.query.get("Page", "0"))
            items = self.templates[page * size : (page + 1) * size]
            nxt = (
                f"{self.url}/v1/ContentAndApprovals?PageSize={size}&Page={page + 1}"
                if (page + 1) * size < len(self.templates)
                else None
            )
            return web.json_response(
                {"contents": items, "meta": {"page": page, "page_size": size, "next_page_url": nxt}}
            )
        if request.method != "POST" or request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            req.status = 404
            self._record(req)
            return web.json_response({"code": 20404, "message": "Not found", "status": 404}, status=404)
        form = dict(await request.post())
        req.body = {} if self.lean else {k: str(v) for k, v in form.items()}
        to, sender = str(form.get("To", "")), str(form.get("From", ""))
        req.to = _digits(to)
        if not to.startswith("whatsapp:+") or not req.to:
            return self._twilio_refuse(req, 21211)
        if sender != f"whatsapp:+{self.from_number}":
            return self._twilio_refuse(req, 63007)
        if not form.get("Body") and not form.get("ContentSid"):
            return self._twilio_refuse(req, 21619)
        scripted = self._scripted(req.to)
        if scripted is not None:
            return self._twilio_refuse(req, scripted)
        if form.get("ContentSid"):
            known = [t for t in self.templates if t["sid"] == form["ContentSid"]]
            if not known or known[0]["approval_requests"]["status"] != "approved":
                return self._twilio_refuse(req, 63027)
            try:
                json.loads(str(form.get("ContentVariables") or "{}"))
            except ValueError:
                return self._twilio_refuse(req, 21619)
        elif self.enforce_window and not self._window_open(req.to):
            return self._twilio_refuse(req, 63016)
        sid = "SM" + uuid.uuid4().hex
        req.status, req.accepted, req.provider_id = 201, True, sid
        self._record(req)
        return web.json_response(
            {
                "sid": sid,
                "status": "queued",
                "to": to,
                "from": sender,
                "body": form.get("Body", ""),
                "account_sid": self.account_sid,
            },
            status=201,
        )

    def _twilio_refuse(self, req: Request, code: int) -> web.Response:
        status, body = twilio_error_body(code)
        req.status, req.error = status, code
        self._record(req)
        return web.json_response(body, status=status)


TWILIO_ERRORS.setdefault(63007, (400, "Twilio could not find a Channel with the specified From address"))


def _meta_shape_ok(body: Any) -> bool:
    """The Cloud API's checks of a message body (the parts casemsg sends)."""
    if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp" or not _digits(str(body.get("to"))):
        return False
    kind = body.get("type")
    obj = body.get(kind) if isinstance(kind, str) else None
    if not isinstance(obj, dict):
        return False
    if kind == "text":
        return isinstance(obj.get("body"), str) and 0 < len(obj["body"]) <= 4096
    if kind == "template":
        lang = obj.get("language")
        return bool(obj.get("name")) and isinstance(lang, dict) and bool(lang.get("code"))
    if kind == "interactive":
        action = obj.get("action") or {}
        if obj.get("type") == "button":
            buttons = action.get("buttons") or []
            return 1 <= len(buttons) <= 3 and all(len(b["reply"]["title"]) <= 20 for b in buttons)
        if obj.get("type") == "list":
            rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
            return 1 <= len(rows) <= 10 and bool(action.get("button"))
        return False
    return False


# --- webhooks to casemsg -------------------------------------------------------------------------
def meta_signature(body: bytes, app_secret: str = "fake-app-secret") -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _envelope(value: dict[str, Any], phone_number_id: str = "106540352242922") -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def meta_webhook(
    number: str,
    text: str = "",
    *,
    button: tuple[str, str] | None = None,
    list_reply: tuple[str, str] | None = None,
    timestamp: float | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """An inbound message as Meta posts it: text, a reply button (id, title) or a list choice (id, title)."""
    msg: dict[str, Any] = {
        "from": number,
        "id": message_id or "wamid.in" + uuid.uuid4().hex,
        "timestamp": str(int(timestamp or time.time())),
    }
    if button is not None:
        msg |= {
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": button[0], "title": button[1]}},
        }
    elif list_reply is not None:
        msg |= {
            "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": list_reply[0], "title": list_reply[1]}},
        }
    else:
        msg |= {"type": "text", "text": {"body": text}}
    return _envelope({"contacts": [{"profile": {"name": "Person"}, "wa_id": number}], "messages": [msg]})


def meta_status(wamid: str, status: str, number: str = "", error: int | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": number}
    if error is not None:
        _st, body = meta_error_body(error)
        e = body["error"]
        s["errors"] = [
            {"code": error, "title": e["message"], "message": e["message"], "error_data": e.get("error_data", {})}
        ]
    return _envelope({"statuses": [s]})


def twilio_signature(url: str, params: dict[str, str], auth_token: str = "fake-auth-token") -> str:
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(auth_token).compute_signature(url, params))
