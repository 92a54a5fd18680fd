"""What the WhatsApp gateway types share (`whatsapp_meta`: the Cloud API, `whatsapp_twilio`: Twilio's
WhatsApp senders): the rich content a WhatsApp message may carry, the template a provider lists, and the
base class that adds template listing and webhook verification to `GatewayType`.

A WhatsApp message reaches its gateway as an `OutboundSms` whose `rich` is one of:

- None: free text (`text`), allowed inside the 24-hour window only;
- {"template": {"name", "language", "provider_id", "params": [..]}}: an approved template, allowed always;
- {"interactive": {"kind": "buttons" | "list", "body", "choices": [{"id", "title"}], "button"}}: reply
  buttons (at most 3) or a list (at most 10), inside the window (`casemsg.surveys.whatsapp` builds them).

The window decision itself is the pipeline's (`casemsg.messaging.whatsapp`); gateway types only say it in
the provider's words and read the provider's answers back (docs/whatsapp.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp

from casemsg.gateways.base import GatewayType

# The provider's window and rate rules.
DEFAULT_RATE_LIMIT = 80  # messages per second per business number (Meta's default throughput)
MAX_BUTTONS = 3
MAX_LIST_ROWS = 10


@dataclass
class ProviderTemplate:
    """One template as the provider lists it."""

    name: str
    language: str
    category: str = ""
    status: str = ""
    provider_id: str = ""
    components: list[Any] = field(default_factory=list)
    body: str = ""
    variables: list[str] = field(default_factory=list)


class TemplateListError(Exception):
    """The provider refused or did not answer the template list."""


class WhatsAppGatewayType(GatewayType):
    """A WhatsApp gateway type: also lists its templates and may answer a webhook verification GET."""

    channel: ClassVar[str] = "whatsapp"

    async def list_templates(self, session: aiohttp.ClientSession) -> list[ProviderTemplate]:
        raise NotImplementedError


def is_whatsapp_type(type_name: str) -> bool:
    return type_name in WHATSAPP_TYPE_NAMES


WHATSAPP_TYPE_NAMES = frozenset({"meta_cloud", "twilio_whatsapp", "whatsapp_sandbox"})
SANDBOX_TYPE = "whatsapp_sandbox"  # sends nothing: the phone simulator's (whatsapp_sandbox)


def variables_in(text: str) -> list[str]:
    """The {{1}}, {{2}} … (or named {{name}}) variables of a template text, in order, each once."""
    out: list[str] = []
    i = 0
    while True:
        start = text.find("{{", i)
        if start < 0:
            return out
        end = text.find("}}", start)
        if end < 0:
            return out
        name = text[start + 2 : end].strip()
        if name and name not in out:
            out.append(name)
        i = end + 2


def fill(text: str, params: list[str], names: list[str]) -> str:
    """A template's text with its variables replaced by the values (what the person reads)."""
    for name, value in zip(names, params, strict=False):
        text = text.replace("{{" + name + "}}", value)
    return text


def numbered(body: str, choices: list[dict[str, str]]) -> str:
    """Choices as numbered text (a provider or a message without buttons)."""
    lines = [body] + [f"{i}. {c.get('title', '')}" for i, c in enumerate(choices, 1)]
    return "\n".join(lines)
