"""The interface every gateway type implements (one module per gateway type, like RapidPro's
channels/types/<gateway>/).

A gateway type is a thin adapter over the provider's documented HTTP API. Its module declares everything
about it, on its `GatewayType` subclass:
- `type_name`, and `title` (what a person reads);
- `config_schema`: each config key with its type, whether it is required and a help text
  (`ConfigField`), plus `required_one_of`; `validate_config` checks a config against it, and a settings
  form can be built from `config_fields()`;
- `extra_opt_out_words`: the provider's own opt-out words, if it has any beyond the standard ones;
- `send_one`: build the provider's request, `post` it, and classify the answer into a `SendResult`;
- `parse_inbound` and `parse_status`: the provider's own webhook formats (`casemsg.api.webhooks` serves
  both webhooks for every type), `verify_request` (a provider signature, where it has one) and
  `inbound_response` (what the provider expects back).

What every type shares lives here once: `post` (send, read the whole answer, decode it leniently),
`classify_http` (the default reading of an answer) and `classify_exception`. The pipeline sends claimed
messages through `casemsg.gateways.transport`, which keeps one HTTP session per thread and calls
`send_batch` (concurrent `send_one`s) per gateway.

Classification rules (docs/gateways.md, "Error mapping"): timeouts, connection errors, HTTP 5xx and 429 are
*transient* (`retry`); anything else the provider refuses is *permanent* (`failed`, with a catalogue code).
"""

from __future__ import annotations

import asyncio
import contextvars
import json as jsonlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlencode

import aiohttp
from django.http import HttpRequest, HttpResponse

from casemsg.core import errors, metrics, netguard
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway

if TYPE_CHECKING:
    from django.http.request import _ImmutableQueryDict  # the stubs' type of request.POST


@dataclass
class OutboundSms:
    message_id: int
    to: str  # E.164 digits, no '+'
    text: str
    segments: int = 1
    sender: str = ""  # the pool number it goes out from (gateways.pools); "" for the gateway's own
    # A WhatsApp message's template or buttons/list (casemsg.gateways.whatsapp); None for plain text.
    rich: dict[str, Any] | None = None


@dataclass
class SendResult:
    message_id: int
    status: str  # "sent" | "delivered" | "failed" | "retry"
    provider_id: str = ""
    error: str | None = None  # catalogue code when failed / retry
    detail: str = ""
    opt_out: bool = False  # the provider says the number opted out (Twilio 21610): a STOP through this gateway
    # The gateway certainly did not take the message (not bound, bind refused, circuit open): it may move to
    # the route's next gateway (gateways.failover). Never set when the outcome is unknown.
    not_taken: bool = False
    # A submit went on the wire and got no answer (an SMPP submit_sm without its submit_sm_resp): the gateway
    # may have it, so sending it again may duplicate it; its history says so (messaging.pipeline.failover).
    outcome_unknown: bool = False


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
    # accepting the message: the number is opted out, as for SendResult.opt_out.
    opt_out: bool = False


def digits(number: str) -> str:
    """Provider numbers often carry '+'; the registry keeps bare E.164 digits."""
    return "".join(ch for ch in (number or "") if ch.isdigit())


# --- configuration schema ----------------------------------------------------------------------------
FieldType = Literal["text", "number", "bool", "object", "list"]

_TYPE_PHRASES: dict[str, str] = {
    "text": "text",
    "number": "a number",
    "bool": "true or false",
    "object": "a JSON object",
    "list": "a JSON list",
}


@dataclass(frozen=True)
class ConfigField:
    """One key of a gateway type's JSON config: what `validate_config` checks and a settings form shows."""

    type: FieldType = "text"
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()  # the allowed values of a text field, compared case-insensitively
    secret: bool = False  # a password, token or key: never shown again once saved (write-only)
    # An object whose keys may be shown but whose values may hold secrets (an http gateway's headers and
    # params: "Authorization: Bearer …", "api_key"): each value is shown as SECRET_MASK (`masked`), and a
    # value left as the mask keeps the stored one (`unmasked`).
    secret_values: bool = False
    # casemsg itself sends to this URL: checked against internal addresses when the gateway is saved
    # (gateways.services) and again at send time (gateways.transport).
    url: bool = False

    def problem(self, value: Any) -> str | None:
        """What `value` must be instead (the end of "… must be …"), or None when it fits. None and "" count
        as absent: whether a key is required is checked apart."""
        if value is None or value == "":
            return None
        if self.type == "text":
            # Numbers are accepted as text: a project id or sender typed as a JSON number is meant as text.
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return _TYPE_PHRASES["text"]
            if self.choices and str(value).lower() not in {c.lower() for c in self.choices}:
                return " or ".join(self.choices)
            return None
        if self.type == "number":
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return _TYPE_PHRASES["number"]
            try:
                float(value)
            except ValueError:
                return _TYPE_PHRASES["number"]
            return None
        if self.type == "bool":
            return None if isinstance(value, bool) or value in (0, 1) else _TYPE_PHRASES["bool"]
        expected: type = dict if self.type == "object" else list
        return None if isinstance(value, expected) else _TYPE_PHRASES[self.type]


# What a secret value of an object shows instead (ConfigField.secret_values). A value that is one
# placeholder alone ("{to}", "{text}") holds no secret and is shown as it is.
SECRET_MASK = "<hidden>"
_ONE_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def masked(f: ConfigField, value: Any) -> Any:
    """A stored config value as anyone may see it: None for a secret (never shown again), an object of
    secret values with each value masked, anything else as it is."""
    if f.secret:
        return None
    if f.secret_values and isinstance(value, dict):
        return {k: v if isinstance(v, str) and _ONE_PLACEHOLDER.fullmatch(v) else SECRET_MASK for k, v in value.items()}
    return value


def unmasked(key: str, f: ConfigField, value: Any, stored: Any) -> Any:
    """A typed value with its masks replaced by the stored values they stand for (`masked`'s inverse, for
    an edit). A mask with no stored value behind it is refused (INVALID_GATEWAY_CONFIG)."""
    if not (f.secret_values and isinstance(value, dict)):
        return value
    kept = stored if isinstance(stored, dict) else {}
    out = {}
    for k, v in value.items():
        if v == SECRET_MASK:
            if k not in kept:
                raise InputError(
                    errors.INVALID_GATEWAY_CONFIG,
                    f"{key} {k}: {SECRET_MASK} stands for the stored value, but there is none; type the value.",
                )
            v = kept[k]
        out[k] = v
    return out


# Keys every gateway type understands. The words are added to the standard ones (consent.words) for
# messages arriving on this gateway.
COMMON_CONFIG: dict[str, ConfigField] = {
    "opt_out_keywords": ConfigField("list", help="More opt-out words for messages arriving on this gateway."),
    "opt_in_keywords": ConfigField("list", help="More opt-in words for messages arriving on this gateway."),
}
TIMEOUT_FIELD = ConfigField("number", help="Seconds for one API call (default 15).")
BASE_URL_FIELD = ConfigField("text", url=True, help="The provider's API address; set only to reach a test server.")


# --- answers ---------------------------------------------------------------------------------------
DETAIL_EXCERPT = 160  # characters of a provider's answer a message's error_detail shows at most


@dataclass(frozen=True)
class HttpReply:
    """A provider's answer to one send, read in full."""

    status: int
    body: str  # decoded leniently: a provider's odd charset must not turn an answer into an exception

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """429 and 5xx: the provider may well accept the same request later."""
        return self.status == 429 or self.status >= 500

    @property
    def detail(self) -> str:
        """What a project may read of the answer: the status and a short, plain-text excerpt (no markup,
        no control characters) — never the whole body."""
        shown = netguard.excerpt(self.body, DETAIL_EXCERPT)
        return f"HTTP {self.status}: {shown}" if shown else f"HTTP {self.status}"

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; {} when it is empty, not JSON (an HTML error page from a proxy) or
        not an object."""
        if not self.body:
            return {}
        try:
            data = jsonlib.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def classify_http(message_id: int, reply: HttpReply, provider_id: str = "") -> SendResult:
    """The default reading of an HTTP answer: 2xx sent, 429/5xx retry, anything else failed."""
    if reply.ok:
        return SendResult(message_id, "sent", provider_id=provider_id)
    if reply.transient:
        return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=reply.detail)
    return SendResult(message_id, "failed", error=errors.GATEWAY_ERROR, detail=reply.detail)


def classify_exception(message_id: int, exc: BaseException) -> SendResult:
    """No answer at all (timeout, refused or dropped connection): transient. A send the address guard
    refused (an internal address, found by DNS or in a redirect) fails for good: trying again cannot help."""
    blocked = netguard.blocked_reason(exc)
    if blocked is not None:
        return SendResult(message_id, "failed", error=errors.GATEWAY_URL_NOT_ALLOWED, detail=blocked)
    detail = netguard.excerpt(f"{type(exc).__name__}: {exc}", DETAIL_EXCERPT)
    return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail)


# The failures of one call that mean "no answer" (classify_exception), not a bug.
TRANSPORT_ERRORS = (TimeoutError, aiohttp.ClientError, OSError)


# The metric children by labels (prometheus-client's `labels()` hashes and locks on every call), and the
# request counts of the batch being sent: a batch's calls are counted once per outcome when it ends, not
# once per call (the latency histogram still takes each call's duration).
_children: dict[tuple[str, ...], Any] = {}
_tally: contextvars.ContextVar[dict[tuple[str, ...], int] | None] = contextvars.ContextVar(
    "casemsg_gateway_tally", default=None
)


def _child(metric: Any, labels: tuple[str, ...]) -> Any:
    key = (metric._name, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def _count(labels: tuple[str, str], outcome: str, seconds: float) -> None:
    _child(metrics.GATEWAY_LATENCY, labels).observe(seconds)
    tally = _tally.get()
    if tally is None:
        _child(metrics.GATEWAY_REQUESTS, (*labels, outcome)).inc()
    else:
        key = (*labels, outcome)
        tally[key] = tally.get(key, 0) + 1


def _flush(tally: dict[tuple[str, ...], int]) -> None:
    for labels, n in tally.items():
        _child(metrics.GATEWAY_REQUESTS, labels).inc(n)


def _failure_outcome(exc: BaseException) -> str:
    """The metrics outcome of a call that got no answer."""
    if netguard.blocked_reason(exc) is not None:
        return "blocked"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "connection_error" if isinstance(exc, aiohttp.ClientError | OSError) else "error"


def _seconds(value: Any, default: float) -> float:
    try:
        return float(value) if value else default
    except (TypeError, ValueError):
        return default


# --- the gateway type ------------------------------------------------------------------------------
class GatewayType(ABC):
    """Base class of one gateway type. An instance is built per gateway row (`registry.adapter_for`);
    `config` is the row's JSON config."""

    type_name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    # The type's own config keys (COMMON_CONFIG is added to every type), and groups of keys of which at
    # least one must be set.
    config_schema: ClassVar[Mapping[str, ConfigField]] = {}
    required_one_of: ClassVar[tuple[tuple[str, ...], ...]] = ()
    # Opt-out words the provider itself acts on beyond the standard ones (consent.words.OPT_OUT_WORDS):
    # a number that sends one is opted out by the provider, so it must be opted out here too.
    extra_opt_out_words: ClassVar[frozenset[str]] = frozenset()
    concurrency: ClassVar[int] = 64
    timeout_seconds: ClassVar[float] = 15.0

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.config: dict[str, Any] = dict(gateway.config or {})
        self.timeout = aiohttp.ClientTimeout(total=_seconds(self.config.get("timeout"), self.timeout_seconds))

    # --- configuration -------------------------------------------------------------------------
    @classmethod
    def config_fields(cls) -> dict[str, ConfigField]:
        """Every config key this type reads: the common ones, then the type's own."""
        return {**COMMON_CONFIG, **cls.config_schema}

    @classmethod
    def url_keys(cls) -> list[str]:
        """The config keys holding a URL casemsg sends to (checked against internal addresses)."""
        return [key for key, f in cls.config_fields().items() if f.url]

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Check a config against the schema: required keys set, each value of its type and among its
        choices. Keys outside the schema are kept and ignored. A type whose rules a schema cannot say
        (the http gateway's URL scheme) extends this."""
        fields = cls.config_fields()
        missing = [k for k, f in fields.items() if f.required and not config.get(k)]
        if missing:
            raise InputError(
                errors.INVALID_GATEWAY_CONFIG,
                f"A {cls.type_name} gateway needs {', '.join(missing)} in its config.",
            )
        for group in cls.required_one_of:
            if not any(config.get(k) for k in group):
                raise InputError(
                    errors.INVALID_GATEWAY_CONFIG,
                    f"A {cls.type_name} gateway needs {' or '.join(group)} in its config.",
                )
        for key, f in fields.items():
            problem = f.problem(config.get(key))
            if problem is not None:
                raise InputError(errors.INVALID_GATEWAY_CONFIG, f"A {cls.type_name} gateway's {key} must be {problem}.")

    # --- outbound --------------------------------------------------------------------------------
    @abstractmethod
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        """Send one message and classify the answer: usually build the provider's request, `post` it and
        read the `HttpReply` (each gateway type's own). Transport errors may propagate: `send_batch`
        classifies them."""

    async def post(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        method: str = "POST",
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        """The one HTTP call of every gateway type: send (form `data` or `json`; with method="GET",
        `params` go in the query string), read the whole answer and decode it leniently, within the
        gateway's timeout. Timeouts and connection errors propagate (TRANSPORT_ERRORS).

        Every call is counted and timed here, the one place all gateway types pass through
        (casemsg_gateway_requests_total, casemsg_gateway_request_seconds)."""
        labels = (self.gateway.name, self.type_name)
        if data is not None and method != "GET":
            # The form encoded here, once, as aiohttp would (urlencoded UTF-8): aiohttp's FormData builds a
            # multipart writer (a random boundary) for every request even when it sends it urlencoded, which
            # measured 7 % of a sending worker's CPU.
            if not any(k.lower() == "content-type" for k in headers or {}):
                headers = {**(headers or {}), "Content-Type": "application/x-www-form-urlencoded"}
            body: Any = urlencode(data, doseq=True).encode()
        else:
            body = data
        started = time.perf_counter()
        try:
            async with session.request(
                method, url, params=params, data=body, json=json, headers=headers, timeout=self.timeout
            ) as resp:
                reply = HttpReply(resp.status, (await resp.read()).decode("utf-8", "replace"))
        except BaseException as exc:
            _count(labels, _failure_outcome(exc), time.perf_counter() - started)
            raise
        _count(labels, metrics.http_outcome(reply.status), time.perf_counter() - started)
        return reply

    async def send_batch(self, session: aiohttp.ClientSession, msgs: list[OutboundSms]) -> list[SendResult]:
        """Send concurrently (at most `concurrency` calls at once); results in the order of `msgs`."""
        sem = asyncio.Semaphore(self.concurrency)

        async def guarded(m: OutboundSms) -> SendResult:
            async with sem:
                try:
                    return await self.send_one(session, m)
                except TRANSPORT_ERRORS as exc:
                    return classify_exception(m.message_id, exc)

        tally: dict[tuple[str, ...], int] = {}
        token = _tally.set(tally)
        try:
            return list(await asyncio.gather(*(guarded(m) for m in msgs)))
        finally:
            _tally.reset(token)
            _flush(tally)

    # --- inbound and status callbacks -----------------------------------------------------------
    def verify_request(self, request: HttpRequest) -> bool:
        """A provider signature check; the inbound key in the URL is checked before this."""
        return True

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        raise InputError(errors.INBOUND_NOT_SUPPORTED, f"{self.type_name} gateways do not receive messages.", 400)

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        raise InputError(errors.STATUS_NOT_SUPPORTED, f"{self.type_name} gateways send no status callbacks.", 400)

    def inbound_response(self) -> HttpResponse:
        """What the provider expects back from an inbound webhook."""
        return HttpResponse("", status=200)

    # The provider posts delivery statuses to the inbound URL too (Meta: one callback URL per app): the
    # inbound webhook then applies `parse_status` of the same request as well.
    statuses_with_inbound: ClassVar[bool] = False

    def verify_subscription(self, request: HttpRequest) -> HttpResponse | None:
        """The answer to a provider's webhook verification GET at the inbound URL (Meta's hub.challenge), or
        None (403) when the type has none or the check fails."""
        return None

    # --- reading webhook bodies (a 400 INVALID_WEBHOOK naming the problem, never an exception) --------
    def form_data(self, request: HttpRequest) -> _ImmutableQueryDict:
        """The form fields of a provider webhook that posts form data; refuses any other body."""
        content_type = (request.content_type or "").lower()
        if content_type not in FORM_TYPES:
            shown = f"'{content_type[:80]}'" if content_type else "no content type"
            raise InputError(
                errors.INVALID_WEBHOOK,
                f"A {self.type_name} webhook posts form data (application/x-www-form-urlencoded); this one has "
                f"{shown}.",
                400,
            )
        return request.POST

    def json_body(self, request: HttpRequest) -> dict[str, Any]:
        """The body of a webhook that posts a JSON object; refuses anything else with the reason."""
        return json_object_body(request.body, f"A {self.type_name} webhook")


FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def json_object_body(body: bytes, what: str) -> dict[str, Any]:
    """`body` decoded as a JSON object, or InputError(INVALID_WEBHOOK, 400) saying what is wrong."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(errors.INVALID_WEBHOOK, f"{what}'s body is not valid UTF-8.", 400) from exc
    try:
        data = jsonlib.loads(text)
    except ValueError as exc:
        raise InputError(errors.INVALID_WEBHOOK, f"{what}'s body is not valid JSON ({exc}).", 400) from exc
    if not isinstance(data, dict):
        raise InputError(
            errors.INVALID_WEBHOOK, f"{what}'s body is JSON but not an object ({type(data).__name__}).", 400
        )
    return data
