"""Twilio Programmable Messaging (https://www.twilio.com/docs/messaging/api/message-resource).

Config:
    account_sid, auth_token        required; HTTP basic auth account_sid:auth_token
    from_number | messaging_service_sid
                                   one of them is required: the sender (+E.164 number or alphanumeric
                                   sender ID) or a Messaging Service
    status_callback_url            optional; sent as StatusCallback so Twilio posts delivery reports
    public_url_base                optional; the public scheme://host[:port] Twilio calls, used to rebuild
                                   the signed URL when the app sits behind a proxy
    base_url                       optional; default https://api.twilio.com (a fake server in tests)
    timeout                        optional; seconds for one API call (default 15)

Send: POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json, form fields To, From or
MessagingServiceSid, Body, StatusCallback. 201 with the Message resource (`sid`) on success; errors are
JSON {"code", "message", "more_info", "status"}.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import aiohttp
from django.http import HttpRequest, HttpResponse
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from casemsg.core.errors import InputError
from casemsg.gateways.base import GatewayType, InboundSms, OutboundSms, SendResult, StatusUpdate, digits

DEFAULT_BASE_URL = "https://api.twilio.com"

# Twilio error codes that mean the destination cannot receive SMS at all: sending again cannot help.
INVALID_NUMBER_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21614,  # 'To' number is not a mobile number
        30005,  # unknown destination handset (the number may no longer exist)
        30006,  # landline or unreachable carrier
    }
)
OPTED_OUT_CODE = 21610  # the recipient replied STOP to this sender: Twilio blocks every further message
RATE_LIMIT_CODE = 20429  # too many requests: transient

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Message resource statuses (callbacks and the create answer) → ours. Statuses before hand-off to the
# carrier count as "sent": from our side the message has left; only the carrier's verdict changes it.
STATUS_MAP = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}


def error_for_code(code: Any) -> tuple[str, bool]:
    """A Twilio error code → (catalogue code, the number opted out)."""
    try:
        n = int(code)
    except (TypeError, ValueError):
        return "GATEWAY_ERROR", False
    if n == OPTED_OUT_CODE:
        return "PHONE_OPTED_OUT", True
    if n in INVALID_NUMBER_CODES:
        return "INVALID_DESTINATION_NUMBER", False
    return "GATEWAY_ERROR", False


def sender_address(value: str) -> str:
    """A phone number goes as +E.164; an alphanumeric sender ID ("CASEMSG") goes as written."""
    if any(ch.isalpha() for ch in value):
        return value.strip()
    return "+" + digits(value)


class TwilioGateway(GatewayType):
    type_name = "twilio"
    required_config: ClassVar[tuple[str, ...]] = ("account_sid", "auth_token")

    def __init__(self, gateway: Any):
        super().__init__(gateway)
        c = self.config
        base = str(c.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{c.get('account_sid', '')}/Messages.json"
        # Built once per adapter, not per message: the pipeline sends thousands per batch.
        self.headers = {
            "Authorization": aiohttp.encode_basic_auth(str(c.get("account_sid", "")), str(c.get("auth_token", "")))
        }
        self.timeout = aiohttp.ClientTimeout(total=float(c.get("timeout") or self.timeout_seconds))
        sender: dict[str, str] = {}
        if c.get("messaging_service_sid"):
            sender["MessagingServiceSid"] = str(c["messaging_service_sid"])
        if c.get("from_number"):
            sender["From"] = sender_address(str(c["from_number"]))
        if c.get("status_callback_url"):
            sender["StatusCallback"] = str(c["status_callback_url"])
        self.fixed_fields = sender

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        super().validate_config(config)
        if not (config.get("from_number") or config.get("messaging_service_sid")):
            raise InputError(
                "INVALID_GATEWAY_CONFIG",
                "A twilio gateway needs from_number or messaging_service_sid in its config.",
            )

    # --- outbound --------------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        form = {"To": "+" + digits(msg.to), "Body": msg.text, **self.fixed_fields}
        async with session.post(self.url, data=form, headers=self.headers, timeout=self.timeout) as resp:
            # Decoded leniently: a provider's odd charset must not turn an answer into an exception.
            body = (await resp.read()).decode("utf-8", "replace")
            status = resp.status
            data = _json_or_empty(body)
        return self.classify(msg.message_id, status, body, data)

    @staticmethod
    def classify(message_id: int, status: int, body: str, data: dict[str, Any]) -> SendResult:
        code = data.get("code")
        detail = f"HTTP {status}: {body[:300]}"
        if 200 <= status < 300:
            sid = str(data.get("sid") or "")
            # The create answer is normally "queued"; a message refused at once comes back "failed".
            if STATUS_MAP.get(str(data.get("status") or "queued"), "sent") == "failed":
                error, opt_out = error_for_code(data.get("error_code"))
                return SendResult(message_id, "failed", provider_id=sid, error=error, detail=detail, opt_out=opt_out)
            return SendResult(message_id, "sent", provider_id=sid)
        if status == 429 or status >= 500 or _int(code) == RATE_LIMIT_CODE:
            return SendResult(message_id, "retry", error="GATEWAY_ERROR", detail=detail)
        error, opt_out = error_for_code(code)
        return SendResult(message_id, "failed", error=error, detail=detail, opt_out=opt_out)

    # --- inbound and status callbacks -----------------------------------------------------------
    def signed_url(self, request: HttpRequest) -> str:
        """The URL Twilio signed: behind a proxy Django sees an internal host/scheme, so the config may
        name the public base."""
        base = str(self.config.get("public_url_base") or "").rstrip("/")
        if base:
            return base + request.get_full_path()
        return request.build_absolute_uri()

    def verify_request(self, request: HttpRequest) -> bool:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER, "")
        algorithm = get_signature_algorithm(settings_header)
        # Webhooks signed with a SharedKey name it in the settings header; the secret is then that key's,
        # not the auth token.
        secret = str(
            (self.config.get("webhook_signing_secret") if settings_header else None) or self.config.get("auth_token")
        )
        content_type = (request.content_type or "").lower()
        # JSON webhooks are signed over the URL (which carries bodySHA256) plus the raw body.
        params: Any = request.body.decode("utf-8", "replace") if content_type == "application/json" else request.POST
        return RequestValidator(secret).validate(self.signed_url(request), params, signature, algorithm)

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        p = request.POST
        sid = p.get("MessageSid") or p.get("SmsSid") or ""
        if not p.get("From"):
            raise InputError("INVALID_WEBHOOK", "A Twilio inbound message needs From.", 400)
        extra = {k: p[k] for k in ("NumSegments", "NumMedia", "MessagingServiceSid", "AccountSid") if k in p}
        return [
            InboundSms(
                from_number=digits(p.get("From", "")),
                text=p.get("Body", ""),
                provider_id=sid,
                to_number=digits(p.get("To", "")),
                extra=extra,
            )
        ]

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        p = request.POST
        sid = p.get("MessageSid") or p.get("SmsSid") or ""
        raw = (p.get("MessageStatus") or p.get("SmsStatus") or "").lower()
        status = STATUS_MAP.get(raw)
        if not sid or status is None:
            return []  # "receiving"/"received" and unknown statuses say nothing about an outbound message
        if status != "failed":
            return [StatusUpdate(sid, status)]
        code = p.get("ErrorCode", "")
        error, opt_out = error_for_code(code)
        detail = (
            f"Twilio {raw}"
            + (f", error {code}" if code else "")
            + (f": {p['ErrorMessage']}" if p.get("ErrorMessage") else "")
        )
        return [StatusUpdate(sid, "failed", error=error, detail=detail, opt_out=opt_out)]

    def inbound_response(self) -> HttpResponse:
        # Twilio expects TwiML; an empty <Response> means "no automatic reply" (replies go out through the
        # pipeline like every other message).
        return HttpResponse(EMPTY_TWIML, content_type="text/xml")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_or_empty(body: str) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}  # an HTML error page from a proxy: classify by HTTP status alone
    return data if isinstance(data, dict) else {}
