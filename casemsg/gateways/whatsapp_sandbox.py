"""The WhatsApp sandbox: a WhatsApp gateway that sends nothing anywhere, for the phone simulator acting as
a WhatsApp user (docs/whatsapp.md, "The phone simulator").

It is a WhatsApp gateway in every other respect: the send path decides free text or template by its
window, its templates are synced (from its config, as a provider would list them: `templates`, name →
body with {{1}}, {{2}} …; all approved), survey questions go to it with their buttons or list, and what it
"sent" is what the simulator shows. Nothing reaches a provider, so the simulator may open its 24-hour
window itself when it plays the person writing (`casemsg.inbound.whatsapp_sandbox`).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from django.http import HttpRequest

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.base import ConfigField, InboundSms, OutboundSms, SendResult, digits
from casemsg.gateways.whatsapp import ProviderTemplate, WhatsAppGatewayType, variables_in

# The templates of a sandbox whose config names none: enough to try a reminder and a survey's opening.
DEFAULT_TEMPLATES = {
    "visit_reminder": "Hello {{1}}, your visit is on {{2}}.",
    "survey_start": "{{1}}, may we ask you a few questions?",
}


class WhatsAppSandboxGateway(WhatsAppGatewayType):
    type_name = "whatsapp_sandbox"
    title = "WhatsApp sandbox (sends nothing: the phone simulator)"
    config_schema = {
        "templates": ConfigField(
            type="object",
            help="The approved templates it lists, name → body with {{1}}, {{2}} … (default: visit_reminder, "
            "survey_start).",
        ),
        "survey_template": ConfigField(
            help="An approved template that opens a survey outside the 24-hour window; its {{1}} is the case's name."
        ),
    }

    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        return SendResult(msg.message_id, "sent", provider_id=f"wa-sandbox-{msg.message_id}")

    async def send_batch(self, session: aiohttp.ClientSession, msgs: list[OutboundSms]) -> list[SendResult]:
        return [SendResult(m.message_id, "sent", provider_id=f"wa-sandbox-{m.message_id}") for m in msgs]

    async def list_templates(self, session: aiohttp.ClientSession) -> list[ProviderTemplate]:
        listed = self.config.get("templates")
        templates: dict[str, Any] = listed if isinstance(listed, dict) and listed else DEFAULT_TEMPLATES
        return [
            ProviderTemplate(
                name=str(name),
                language="en",
                category="UTILITY",
                status="APPROVED",
                provider_id=f"sandbox-{name}",
                components=[{"type": "BODY", "text": str(body)}],
                body=str(body),
                variables=variables_in(str(body)),
            )
            for name, body in sorted(templates.items())
        ]

    def parse_inbound(self, request: HttpRequest) -> list[InboundSms]:
        """As the SMS sandbox: {"phone_number", "text", "id"}; `reply_title` for a tapped button."""
        data = self.json_body(request)
        sender = str(data.get("phone_number") or "")
        if not sender:
            raise InputError(errors.INVALID_WEBHOOK, "A sandbox inbound message needs phone_number.", 400)
        extra: dict[str, Any] = {"channel": "whatsapp"}
        if data.get("reply_title"):
            extra["reply_title"] = str(data["reply_title"])
        return [
            InboundSms(
                from_number=digits(sender),
                text=str(data.get("text") or ""),
                provider_id=str(data.get("id") or ""),
                extra=extra,
            )
        ]
