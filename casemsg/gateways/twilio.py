"""Twilio Programmable Messaging (https://www.twilio.com/docs/messaging/api/message-resource).

Config: `TwilioGateway.config_schema`.

Send: POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json, form fields To, From or
MessagingServiceSid, Body, StatusCallback. 201 with the Message resource (`sid`) on success; errors are
JSON {"code", "message", "more_info", "status"}.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from django.http import HttpRequest, HttpResponse
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

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
        return errors.GATEWAY_ERROR, False
    if n == OPTED_OUT_CODE:
        return errors.PHONE_OPTED_OUT, True
    if n in INVALID_NUMBER_CODES:
        return errors.INVALID_DESTINATION_NUMBER, False
    return errors.GATEWAY_ERROR, False


def sender_address(value: str) -> str:
    """A phone number goes as +E.164; an alphanumeric sender ID ("CASEMSG") goes as written."""
    if any(ch.isalpha() for ch in value):
        return value.strip()
    return "+" + digits(value)


class TwilioGateway(GatewayType):
    type_name = "twilio"
    title = "Twilio"
    config_schema = {
        "account_sid": ConfigField(required=True, help="The account SID (AC…): the basic-auth username."),
        "auth_token": ConfigField(required=True, secret=True, help="The auth token: the basic-auth password."),
        "from_number": ConfigField(help="The sender: a +E.164 number or an alphanumeric sender ID."),
        "messaging_service_sid": ConfigField(help="A Messaging Service (MG…) to send from, instead of from_number."),
        "status_callback_url": ConfigField(help="Sent as StatusCallback, so Twilio posts delivery reports there."),
        "public_url_base": ConfigField(
            help="The public scheme://host[:port] Twilio calls: rebuilds the signed URL behind a proxy."
        ),
        "webhook_signing_secret": ConfigField(
            secret=True, help="The SharedKey secret of webhooks that name one in their signature settings."
        ),
        "base_url": BASE_URL_FIELD,
        "timeout": TIMEOUT_FIELD,
    }
    required_one_of = (("from_number", "messaging_service_sid"),)

    def __init__(self, gateway: Gateway):
        super().__init__(gateway)
        c = self.config
        base = str(c.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{c.get('account_sid', '')}/Messages.json"
        # Built once per adapter, not per message: the pipeline sends thousands per batch.
        self.headers = {
            "Authorization": aiohttp.encode_basic_auth(str(c.get("account_sid", "")), str(c.get("auth_token", "")))
        }
        sender: dict[str, str] = {}
        if c.get("messaging_service_sid"):
            sender["MessagingServiceSid"] = str(c["messaging_service_sid"])
        if c.get("from_number"):
            sender["From"] = sender_address(str(c["from_number"]))
        if c.get("status_callback_url"):
            sender["StatusCallback"] = str(c["status_callback_url"])
        self.fixed_fields = sender

    # --- outbound --------------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        form = {"To": "+" + digits(msg.to), "Body": msg.text, **self.fixed_fields}
        if msg.sender:  # the recipient's number of the gateway's pool (gateways.pools) instead of from_number
            form["From"] = sender_address(msg.sender)
        return self.classify(msg.message_id, await self.post(session, self.url, data=form, headers=self.headers))

    @staticmethod
    def classify(message_id: int, reply: HttpReply) -> SendResult:
        data = reply.json_object()
        code = data.get("code")
        detail = reply.detail
        if reply.ok:
            sid = str(data.get("sid") or "")
            # The create answer is normally "queued"; a message refused at once comes back "failed".
            if STATUS_MAP.get(str(data.get("status") or "queued"), "sent") == "failed":
                error, opt_out = error_for_code(data.get("error_code"))
                return SendResult(message_id, "failed", provider_id=sid, error=error, detail=detail, opt_out=opt_out)
            return SendResult(message_id, "sent", provider_id=sid)
        if reply.transient or _int(code) == RATE_LIMIT_CODE:
            return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail)
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
        # JSON webhooks are signed over the URL (which carries bodySHA256) plus the raw body. Without
        # bodySHA256 the validator would iterate over the body's characters (a TypeError): such a request is
        # checked over the URL alone, and fails.
        params: Any = request.POST
        if content_type == "application/json":
            params = request.body.decode("utf-8", "replace") if "bodySHA256" in request.GET else {}
        return RequestValidator(secret).validate(self.signed_url(request), params, signature, algorithm)

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        p = self.form_data(request)
        sid = p.get("MessageSid") or p.get("SmsSid") or ""
        if not p.get("From"):
            raise InputError(errors.INVALID_WEBHOOK, "A Twilio inbound message needs From.", 400)
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
        p = self.form_data(request)
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
