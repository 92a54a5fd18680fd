"""WhatsApp Business Cloud API (Meta), https://developers.facebook.com/docs/whatsapp/cloud-api.

Config: `MetaCloudGateway.config_schema`.

Send: POST {base_url}/{api_version}/{phone_number_id}/messages with `Authorization: Bearer {access_token}`
and a JSON body: `type` text, template or interactive (button / list). 200 with
{"messages": [{"id": "wamid…"}]} on success; errors are {"error": {"code", "message", "error_data"}}.

Templates: GET {base_url}/{api_version}/{waba_id}/message_templates (paged by `paging.next`).

Webhooks: Meta has one callback URL per app; point it at the gateway's inbound URL. It is verified by a
GET (`hub.mode=subscribe`, `hub.verify_token` = the config's `verify_token`, answered with
`hub.challenge`); every POST is signed `X-Hub-Signature-256: sha256=HMAC-SHA256(app_secret, raw body)`
and carries messages (text, button and list replies, template quick replies) and statuses
(sent, delivered, read, failed with its errors) alike.

Error mapping (docs/gateways.md): 130429 and 131056 (throughput and pair rate limits), 131000 / 5xx →
retry; 131047 (more than 24 hours since the person's last message) → WHATSAPP_WINDOW_CLOSED; 131026
(undeliverable: not on WhatsApp) → WHATSAPP_NOT_ON_WHATSAPP; 132000/132001 (template parameters, template
missing) → WHATSAPP_TEMPLATE_NOT_APPROVED; anything else → GATEWAY_ERROR with Meta's own text.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import aiohttp
from django.http import HttpRequest, HttpResponse

from casemsg.core import errors, netguard
from casemsg.core.errors import InputError
from casemsg.gateways.base import (
    BASE_URL_FIELD,
    DETAIL_EXCERPT,
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
from casemsg.gateways.whatsapp import (
    ProviderTemplate,
    TemplateListError,
    WhatsAppGatewayType,
    variables_in,
)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"

RETRY_CODES = frozenset({130429, 131056, 131000, 2, 4, 80007})  # rate limits, "something went wrong", service
WINDOW_CODES = frozenset({131047})
NOT_ON_WHATSAPP_CODES = frozenset({131026})
TEMPLATE_CODES = frozenset({132000, 132001, 132005, 132007, 132012, 132015, 132016})

STATUS_MAP = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}


def error_for_code(code: int | None) -> str:
    if code in WINDOW_CODES:
        return errors.WHATSAPP_WINDOW_CLOSED
    if code in NOT_ON_WHATSAPP_CODES:
        return errors.WHATSAPP_NOT_ON_WHATSAPP
    if code in TEMPLATE_CODES:
        return errors.WHATSAPP_TEMPLATE_NOT_APPROVED
    return errors.GATEWAY_ERROR


def payload(msg: OutboundSms) -> dict[str, Any]:
    """The Cloud API body of one message."""
    base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": digits(msg.to)}
    rich = msg.rich or {}
    tpl = rich.get("template")
    if tpl:
        components = []
        if tpl.get("params"):
            components.append({"type": "body", "parameters": [{"type": "text", "text": p} for p in tpl["params"]]})
        return {
            **base,
            "type": "template",
            "template": {"name": tpl["name"], "language": {"code": tpl["language"]}, "components": components},
        }
    inter = rich.get("interactive")
    if inter:
        choices = inter.get("choices") or []
        body = {"text": inter.get("body") or msg.text}
        if inter.get("kind") == "buttons":
            buttons = [{"type": "reply", "reply": {"id": c["id"], "title": c["title"][:20]}} for c in choices]
            action: dict[str, Any] = {"buttons": buttons}
            return {**base, "type": "interactive", "interactive": {"type": "button", "body": body, "action": action}}
        rows = [{"id": c["id"], "title": c["title"][:24]} for c in choices]
        action = {"button": (inter.get("button") or "Choose")[:20], "sections": [{"title": "Choices", "rows": rows}]}
        return {**base, "type": "interactive", "interactive": {"type": "list", "body": body, "action": action}}
    return {**base, "type": "text", "text": {"preview_url": False, "body": msg.text}}


class MetaCloudGateway(WhatsAppGatewayType):
    type_name = "meta_cloud"
    title = "WhatsApp Cloud API (Meta)"
    statuses_with_inbound = True
    config_schema = {
        "phone_number_id": ConfigField(required=True, help="The business number's Phone number ID (sends from it)."),
        "waba_id": ConfigField(required=True, help="The WhatsApp Business Account ID (its templates are listed)."),
        "access_token": ConfigField(required=True, secret=True, help="A system user's access token (Bearer)."),
        "app_secret": ConfigField(
            required=True, secret=True, help="The app secret: checks X-Hub-Signature-256 of every webhook."
        ),
        "verify_token": ConfigField(secret=True, help="The Verify token typed in the app's webhook settings."),
        "api_version": ConfigField(help=f"The Graph API version (default {DEFAULT_VERSION})."),
        "base_url": BASE_URL_FIELD,
        "timeout": TIMEOUT_FIELD,
        "survey_template": ConfigField(
            help="An approved template that opens a survey outside the 24-hour window; its {{1}} is the case's name."
        ),
    }

    def __init__(self, gateway: Gateway):
        super().__init__(gateway)
        c = self.config
        self.base = str(c.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.version = str(c.get("api_version") or DEFAULT_VERSION)
        self.url = f"{self.base}/{self.version}/{c.get('phone_number_id', '')}/messages"
        self.headers = {"Authorization": f"Bearer {c.get('access_token', '')}"}

    # --- outbound --------------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        reply = await self.post(session, self.url, json=payload(msg), headers=self.headers)
        return self.classify(msg.message_id, reply)

    @staticmethod
    def classify(message_id: int, reply: HttpReply) -> SendResult:
        data = reply.json_object()
        if reply.ok:
            ids = data.get("messages") or [{}]
            wamid = str(ids[0].get("id") or "") if isinstance(ids[0], dict) else ""
            return SendResult(message_id, "sent", provider_id=wamid)
        err = _obj(data.get("error"))
        code = _int(err.get("code"))
        detail = _meta_text(err) or reply.detail
        if reply.transient or code in RETRY_CODES:
            return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail)
        return SendResult(message_id, "failed", error=error_for_code(code), detail=detail)

    async def list_templates(self, session: aiohttp.ClientSession) -> list[ProviderTemplate]:
        url: str | None = f"{self.base}/{self.version}/{self.config.get('waba_id', '')}/message_templates"
        params: dict[str, str] | None = {"limit": "100"}
        out: list[ProviderTemplate] = []
        pages = 0
        while url and pages < 100:
            reply = await self.post(session, url, method="GET", params=params, headers=self.headers)
            if not reply.ok:
                raise TemplateListError(_meta_text(reply.json_object().get("error") or {}) or reply.detail)
            data = reply.json_object()
            for t in data.get("data") or []:
                if isinstance(t, dict):
                    out.append(_template(t))
            nxt = (data.get("paging") or {}).get("next")
            url, params, pages = (str(nxt) if nxt else None), None, pages + 1
        return out

    # --- webhooks --------------------------------------------------------------------------------
    def verify_request(self, request: HttpRequest) -> bool:
        header = request.headers.get("X-Hub-Signature-256", "")
        if not header.startswith("sha256="):
            return False
        secret = str(self.config.get("app_secret") or "").encode()
        expected = hmac.new(secret, request.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, header[7:].strip().lower())

    def verify_subscription(self, request: HttpRequest) -> HttpResponse | None:
        token = str(self.config.get("verify_token") or "")
        given = request.GET.get("hub.verify_token", "")
        if request.GET.get("hub.mode") != "subscribe" or not token or not hmac.compare_digest(token, given):
            return None
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")

    def _values(self, request: HttpRequest) -> list[dict[str, Any]]:
        data = self.json_body(request)
        out = []
        for entry in data.get("entry") or []:
            for change in (entry or {}).get("changes") or [] if isinstance(entry, dict) else []:
                value = change.get("value") if isinstance(change, dict) else None
                if isinstance(value, dict):
                    out.append(value)
        return out

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        items = []
        for value in self._values(request):
            to = digits(str((value.get("metadata") or {}).get("display_phone_number") or ""))
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name", "") for c in value.get("contacts") or []}
            for m in value.get("messages") or []:
                if not isinstance(m, dict):
                    continue
                text, extra = _message_text(m)
                if not m.get("from"):
                    raise InputError(errors.INVALID_WEBHOOK, "A WhatsApp message needs from.", 400)
                extra["channel"] = "whatsapp"
                if names.get(m.get("from")):
                    extra["profile_name"] = names[m.get("from")]
                items.append(
                    InboundSms(
                        from_number=digits(str(m.get("from"))),
                        text=text,
                        provider_id=str(m.get("id") or ""),
                        to_number=to,
                        received_on=_time(m.get("timestamp")),
                        extra=extra,
                    )
                )
        return items

    def parse_status(self, request: HttpRequest) -> list[StatusUpdate]:
        out = []
        for value in self._values(request):
            for s in value.get("statuses") or []:
                if not isinstance(s, dict):
                    continue
                status = STATUS_MAP.get(str(s.get("status") or ""))
                if status is None or not s.get("id"):
                    continue
                if status != "failed":
                    out.append(StatusUpdate(str(s["id"]), status))
                    continue
                errs = [e for e in s.get("errors") or [] if isinstance(e, dict)]
                first = errs[0] if errs else {}
                code = _int(first.get("code"))
                out.append(StatusUpdate(str(s["id"]), "failed", error=error_for_code(code), detail=_meta_text(first)))
        return out

    def inbound_response(self) -> HttpResponse:
        return HttpResponse("", status=200)


def _message_text(m: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the person said, and how: a button or list reply answers with its id (the choice's name)."""
    kind = str(m.get("type") or "")
    if kind == "text":
        return str((m.get("text") or {}).get("body") or ""), {}
    if kind == "interactive":
        inter = m.get("interactive") or {}
        reply = inter.get("button_reply") or inter.get("list_reply") or {}
        return str(reply.get("id") or reply.get("title") or ""), {"reply_title": str(reply.get("title") or "")}
    if kind == "button":  # a template's quick-reply button
        b = m.get("button") or {}
        return str(b.get("payload") or b.get("text") or ""), {"reply_title": str(b.get("text") or "")}
    return "", {"whatsapp_type": kind}


def _template(t: dict[str, Any]) -> ProviderTemplate:
    components = [c for c in t.get("components") or [] if isinstance(c, dict)]
    body = next((str(c.get("text") or "") for c in components if str(c.get("type")).upper() == "BODY"), "")
    return ProviderTemplate(
        name=str(t.get("name") or ""),
        language=str(t.get("language") or ""),
        category=str(t.get("category") or ""),
        status=str(t.get("status") or ""),
        provider_id=str(t.get("id") or ""),
        components=components,
        body=body,
        variables=variables_in(body),
    )


def _meta_text(err: dict[str, Any]) -> str:
    """Meta's own words for an error: code, message and details."""
    if not isinstance(err, dict) or not err:
        return ""
    details = (err.get("error_data") or {}).get("details") if isinstance(err.get("error_data"), dict) else ""
    text = f"WhatsApp {err.get('code', '')}: {err.get('message') or err.get('title') or ''}"
    if details:
        text += f" ({details})"
    return netguard.excerpt(text, DETAIL_EXCERPT)


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
