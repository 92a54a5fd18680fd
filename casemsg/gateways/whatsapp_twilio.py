"""WhatsApp through Twilio (https://www.twilio.com/docs/whatsapp/api).

Config: `TwilioWhatsAppGateway.config_schema`.

Send: the Messages API of the `twilio` type with `whatsapp:+E164` addresses: free text as `Body`; a
template as a Content API item, `ContentSid` + `ContentVariables` (a JSON object {"1": …}). Twilio sends
buttons and lists only as approved Content items, so a survey question's choices go as numbered text.

Templates: GET {content_url}/v1/ContentAndApprovals (paged by `meta.next_page_url`): each item's
`approval_requests` holds its WhatsApp name, category and status.

Webhooks: `X-Twilio-Signature` (the `twilio` type's check); inbound `From=whatsapp:+…`, `Body`,
`ButtonPayload` (a quick-reply button), `ListId` (a list choice); status callbacks with `MessageStatus`
sent, delivered, read, failed/undelivered and `ErrorCode`.

Error mapping: 63016 (outside the window) → WHATSAPP_WINDOW_CLOSED; 63003 (not a WhatsApp number) →
WHATSAPP_NOT_ON_WHATSAPP; 63018 / 20429 (rate limits) → retry; 63005/63027/63028 (template) →
WHATSAPP_TEMPLATE_NOT_APPROVED; the `twilio` type's mapping otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from django.http import HttpRequest

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.base import (
    BASE_URL_FIELD,
    TIMEOUT_FIELD,
    ConfigField,
    HttpReply,
    InboundSms,
    OutboundSms,
    SendResult,
    StatusUpdate,
    digits,
)
from casemsg.gateways.models import Gateway
from casemsg.gateways.twilio import TwilioGateway
from casemsg.gateways.twilio import error_for_code as sms_error_for_code
from casemsg.gateways.whatsapp import ProviderTemplate, TemplateListError, WhatsAppGatewayType, numbered, variables_in

DEFAULT_BASE_URL = "https://api.twilio.com"
DEFAULT_CONTENT_URL = "https://content.twilio.com"

RETRY_CODES = frozenset({20429, 63018})
WINDOW_CODES = frozenset({63016})
NOT_ON_WHATSAPP_CODES = frozenset({63003})
TEMPLATE_CODES = frozenset({63005, 63027, 63028})

STATUS_MAP = {
    "accepted": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
}


def error_for_code(code: Any) -> tuple[str, bool]:
    n = _int(code)
    if n in WINDOW_CODES:
        return errors.WHATSAPP_WINDOW_CLOSED, False
    if n in NOT_ON_WHATSAPP_CODES:
        return errors.WHATSAPP_NOT_ON_WHATSAPP, False
    if n in TEMPLATE_CODES:
        return errors.WHATSAPP_TEMPLATE_NOT_APPROVED, False
    return sms_error_for_code(code)


class TwilioWhatsAppGateway(WhatsAppGatewayType):
    type_name = "twilio_whatsapp"
    title = "WhatsApp through Twilio"
    config_schema = {
        "account_sid": ConfigField(required=True, help="The account SID (AC…): the basic-auth username."),
        "auth_token": ConfigField(
            required=True, secret=True, help="The auth token: basic-auth password and signatures."
        ),
        "from_number": ConfigField(required=True, help="The WhatsApp sender: a +E.164 number enabled for WhatsApp."),
        "status_callback_url": ConfigField(help="Sent as StatusCallback, so Twilio posts statuses there."),
        "public_url_base": ConfigField(help="The public scheme://host[:port] Twilio calls, behind a proxy."),
        "base_url": BASE_URL_FIELD,
        "content_url": ConfigField(
            "text", url=True, help="The Content API's address; set only to reach a test server."
        ),
        "timeout": TIMEOUT_FIELD,
        "survey_template": ConfigField(
            help="An approved template that opens a survey outside the 24-hour window; its {{1}} is the case's name."
        ),
    }

    def __init__(self, gateway: Gateway):
        super().__init__(gateway)
        c = self.config
        base = str(c.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{c.get('account_sid', '')}/Messages.json"
        self.content_url = str(c.get("content_url") or DEFAULT_CONTENT_URL).rstrip("/")
        self.headers = {
            "Authorization": aiohttp.encode_basic_auth(str(c.get("account_sid", "")), str(c.get("auth_token", "")))
        }
        self.fixed = {"From": "whatsapp:+" + digits(str(c.get("from_number", "")))}
        if c.get("status_callback_url"):
            self.fixed["StatusCallback"] = str(c["status_callback_url"])
        # the signature check is the twilio type's own
        self._sms = TwilioGateway(gateway)

    def form(self, msg: OutboundSms) -> dict[str, str]:
        form = {"To": "whatsapp:+" + digits(msg.to), **self.fixed}
        rich = msg.rich or {}
        tpl = rich.get("template")
        inter = rich.get("interactive")
        if tpl:
            form["ContentSid"] = str(tpl.get("provider_id") or "")
            form["ContentVariables"] = json.dumps({str(i): p for i, p in enumerate(tpl.get("params") or [], 1)})
        elif inter:
            form["Body"] = numbered(str(inter.get("body") or msg.text), list(inter.get("choices") or []))
        else:
            form["Body"] = msg.text
        return form

    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        reply = await self.post(session, self.url, data=self.form(msg), headers=self.headers)
        return self.classify(msg.message_id, reply)

    @staticmethod
    def classify(message_id: int, reply: HttpReply) -> SendResult:
        data = reply.json_object()
        if reply.ok:
            return SendResult(message_id, "sent", provider_id=str(data.get("sid") or ""))
        code = _int(data.get("code"))
        detail = f"Twilio {code}: {data.get('message', '')}" if code else reply.detail
        if reply.transient or code in RETRY_CODES:
            return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail)
        error, opt_out = error_for_code(code)
        return SendResult(message_id, "failed", error=error, detail=detail, opt_out=opt_out)

    async def list_templates(self, session: aiohttp.ClientSession) -> list[ProviderTemplate]:
        url: str | None = f"{self.content_url}/v1/ContentAndApprovals"
        params: dict[str, str] | None = {"PageSize": "100"}
        out: list[ProviderTemplate] = []
        pages = 0
        while url and pages < 100:
            reply = await self.post(session, url, method="GET", params=params, headers=self.headers)
            if not reply.ok:
                raise TemplateListError(reply.detail)
            data = reply.json_object()
            for item in data.get("contents") or []:
                if isinstance(item, dict):
                    out.append(_template(item))
            nxt = (data.get("meta") or {}).get("next_page_url")
            url, params, pages = (str(nxt) if nxt else None), None, pages + 1
        return out

    # --- webhooks --------------------------------------------------------------------------------
    def verify_request(self, request: HttpRequest) -> bool:
        return self._sms.verify_request(request)

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        p = self.form_data(request)
        if not p.get("From"):
            raise InputError(errors.INVALID_WEBHOOK, "A Twilio WhatsApp message needs From.", 400)
        extra: dict[str, Any] = {"channel": "whatsapp"}
        text = p.get("Body", "")
        if p.get("ButtonPayload"):
            text, extra["reply_title"] = p["ButtonPayload"], p.get("ButtonText", "")
        elif p.get("ListId"):
            text, extra["reply_title"] = p["ListId"], p.get("ListTitle", "")
        if p.get("ProfileName"):
            extra["profile_name"] = p["ProfileName"]
        return [
            InboundSms(
                from_number=digits(p.get("From", "")),
                text=text,
                provider_id=p.get("MessageSid") or p.get("SmsSid") or "",
                to_number=digits(p.get("To", "")),
                extra=extra,
            )
        ]

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        p = self.form_data(request)
        sid = p.get("MessageSid") or p.get("SmsSid") or ""
        status = STATUS_MAP.get((p.get("MessageStatus") or p.get("SmsStatus") or "").lower())
        if not sid or status is None:
            return []
        if status != "failed":
            return [StatusUpdate(sid, status)]
        code = p.get("ErrorCode", "")
        error, opt_out = error_for_code(code)
        detail = f"Twilio error {code}" + (f": {p['ErrorMessage']}" if p.get("ErrorMessage") else "")
        return [StatusUpdate(sid, "failed", error=error, detail=detail, opt_out=opt_out)]

    def inbound_response(self) -> Any:
        return self._sms.inbound_response()


def _template(item: dict[str, Any]) -> ProviderTemplate:
    approval = _obj(item.get("approval_requests"))
    wa = _obj(approval.get("whatsapp")) or approval
    types = _obj(item.get("types"))
    body = ""
    for t in types.values():
        if isinstance(t, dict) and t.get("body"):
            body = str(t["body"])
            break
    variables = _obj(item.get("variables"))
    return ProviderTemplate(
        name=str(wa.get("name") or item.get("friendly_name") or ""),
        language=str(item.get("language") or ""),
        category=str(wa.get("category") or "").upper(),
        status=str(wa.get("status") or "").upper(),
        provider_id=str(item.get("sid") or ""),
        components=[{"type": k, **v} for k, v in types.items() if isinstance(v, dict)],
        body=body,
        variables=list(variables) or variables_in(body),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
