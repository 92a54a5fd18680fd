"""Africa's Talking SMS (https://developers.africastalking.com/docs/sms/sending).

Config: `AfricasTalkingGateway.config_schema`.

Send: POST {base_url}/version1/messaging, form fields username, to (+E.164), message, from?, with
Accept: application/json (the API answers XML otherwise). The answer lists one entry per recipient in
SMSMessageData.Recipients with a statusCode: 100-102 accepted, 4xx refused, 5xx provider trouble.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
    classify_http,
    digits,
)
from casemsg.gateways.models import Gateway

DEFAULT_BASE_URL = "https://api.africastalking.com"
SANDBOX_BASE_URL = "https://api.sandbox.africastalking.com"

SENT_CODES = frozenset({100, 101, 102})  # Processed, Sent, Queued
RETRY_CODES = frozenset({500, 501, 502})  # InternalServerError, GatewayError, RejectedByGateway
# Recipient statusCode → (catalogue code, the number opted out). Codes not listed (401 RiskHold,
# 402 InvalidSenderId, 405 InsufficientBalance, 407 CouldNotRoute, 409 DoNotDisturbRejection, ...) are
# account or route problems: GATEWAY_ERROR.
FAILED_CODES: dict[int, tuple[str, bool]] = {
    403: (errors.INVALID_DESTINATION_NUMBER, False),  # InvalidPhoneNumber
    404: (errors.INVALID_DESTINATION_NUMBER, False),  # UnsupportedNumberType
    406: (errors.PHONE_OPTED_OUT, True),  # UserInBlacklist: the subscriber blocked messages from this sender
}

# Delivery report statuses → ours. Sent/Submitted/Buffered are on the way; Success is the handset's receipt.
STATUS_MAP = {
    "Sent": "sent",
    "Submitted": "sent",
    "Buffered": "sent",
    "Success": "delivered",
    "Failed": "failed",
    "Rejected": "failed",
}
# Delivery report failureReason → (catalogue code, opted out).
FAILURE_REASONS: dict[str, tuple[str, bool]] = {
    "UserInBlackList": (errors.PHONE_OPTED_OUT, True),
    "UserInBlacklist": (errors.PHONE_OPTED_OUT, True),
    "UserDoesNotExist": (errors.INVALID_DESTINATION_NUMBER, False),
    "NotNetworkSubscriber": (errors.INVALID_DESTINATION_NUMBER, False),
}


class AfricasTalkingGateway(GatewayType):
    type_name = "africastalking"
    title = "Africa's Talking"
    config_schema = {
        "username": ConfigField(required=True, help='The app\'s username ("sandbox" in the sandbox).'),
        "api_key": ConfigField(required=True, secret=True, help="The app's API key (sent in the apiKey header)."),
        "sender_id": ConfigField(help="The short code or alphanumeric sender ID, sent as `from`."),
        "sandbox": ConfigField("bool", help="Send to Africa's Talking's sandbox API."),
        "base_url": BASE_URL_FIELD,
        "timeout": TIMEOUT_FIELD,
    }

    def __init__(self, gateway: Gateway):
        super().__init__(gateway)
        c = self.config
        default = SANDBOX_BASE_URL if c.get("sandbox") else DEFAULT_BASE_URL
        self.url = str(c.get("base_url") or default).rstrip("/") + "/version1/messaging"
        self.headers = {"apiKey": str(c.get("api_key", "")), "Accept": "application/json"}
        fixed = {"username": str(c.get("username", ""))}
        if c.get("sender_id"):
            fixed["from"] = str(c["sender_id"])
        self.fixed_fields = fixed

    # --- outbound --------------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        form = {**self.fixed_fields, "to": "+" + digits(msg.to), "message": msg.text}
        if msg.sender:  # the recipient's short code or sender ID of the gateway's pool (gateways.pools)
            form["from"] = msg.sender
        return self.classify(msg.message_id, await self.post(session, self.url, data=form, headers=self.headers))

    @staticmethod
    def classify(message_id: int, reply: HttpReply) -> SendResult:
        if not reply.ok:
            return classify_http(message_id, reply)  # 401 bad key, 5xx outage, ...
        detail = reply.detail
        data = reply.json_object().get("SMSMessageData")
        recipients = data.get("Recipients") if isinstance(data, dict) else None
        if not isinstance(recipients, list) or not recipients or not isinstance(recipients[0], dict):
            # e.g. {"Message": "InvalidSenderId", "Recipients": []}: the whole request was refused.
            return SendResult(message_id, "failed", error=errors.GATEWAY_ERROR, detail=detail)
        r = recipients[0]  # one number per request
        try:
            code = int(r.get("statusCode") or 0)
        except (TypeError, ValueError):
            code = 0
        message_id_at = str(r.get("messageId") or "")
        if code in SENT_CODES:
            return SendResult(message_id, "sent", provider_id=message_id_at)
        detail = f"Africa's Talking {code} {r.get('status', '')}".strip()
        if code in RETRY_CODES:
            return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail)
        error, opt_out = FAILED_CODES.get(code, (errors.GATEWAY_ERROR, False))
        return SendResult(message_id, "failed", error=error, detail=detail, opt_out=opt_out)

    # --- inbound and delivery reports -----------------------------------------------------------
    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        p = self.form_data(request)
        if not p.get("from"):
            raise InputError(errors.INVALID_WEBHOOK, "An Africa's Talking inbound message needs from.", 400)
        extra = {"link_id": p["linkId"]} if p.get("linkId") else {}  # needed to reply on premium short codes
        return [
            InboundSms(
                from_number=digits(p.get("from", "")),
                text=p.get("text", ""),
                provider_id=p.get("id", ""),
                to_number=digits(p.get("to", "")),
                received_on=_parse_date(p.get("date")),
                extra=extra,
            )
        ]

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        p = self.form_data(request)
        status = STATUS_MAP.get(p.get("status", ""))
        if not p.get("id") or status is None:
            return []
        if status != "failed":
            return [StatusUpdate(p["id"], status)]
        reason = p.get("failureReason", "")
        error, opt_out = FAILURE_REASONS.get(reason, (errors.GATEWAY_ERROR, False))
        detail = f"Africa's Talking {p.get('status')}" + (f": {reason}" if reason else "")
        return [StatusUpdate(p["id"], "failed", error=error, detail=detail, opt_out=opt_out)]


def _parse_date(value: str | None) -> datetime | None:
    """AT sends e.g. "2024-05-31 12:15:36" or ISO 8601; times without a zone are UTC."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
