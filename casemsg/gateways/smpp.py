"""The `smpp` gateway type: casemsg as an ESME bound straight to an operator's or aggregator's SMSC over
SMPP 3.4 (no Kannel or Jasmin in between).

Config (docs/gateways.md, "SMPP"):
- `host`, `port` (2775), `system_id`, `password` (secret), `system_type`, `tls`;
- `bind_mode`: `transceiver` (default: one bind sends and receives receipts and MO) or `transmitter`
  (sends only; receipts and MO then need the operator to deliver them over another bind);
- `source_addr` (the sender number or alphanumeric ID), `source_addr_ton` / `source_addr_npi` (default
  1/1 for a number, 5/0 for an alphanumeric ID), `dest_addr_ton` / `dest_addr_npi` (1/1);
- `bind_per`: `worker` (default: each worker process holds its own bind) or `process` (one `casemsg smpp`
  process holds the only bind and workers hand it their messages: casemsg.gateways.smpp_handoff);
- `window` (10): submit_sm outstanding at once per bind; `long_messages`: `udh` (default) or `sar`
  (the concatenation in sar_* TLVs instead of a user data header); `registered_delivery` (true).

The SMPP library is `smpp34` (a Rust/tokio core under an asyncio API; it keeps the session's timers —
enquire_link, response timeouts — and the window). The bind itself is held by `casemsg.gateways.smpp_bind`:
one persistent bind per gateway per worker process, on a thread of its own, reconnecting with back-off.

What this module does: the type's declaration and config, encoding a text into submit_sm parts (GSM-7 or
UCS-2, concatenated by UDH or SAR, as many parts as `messaging.segments` counts), reading a submit_sm_resp's
command_status into a `SendResult`, and reading a deliver_sm (a receipt → `StatusUpdate`, else an MO →
`InboundSms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from casemsg.core import errors, netguard
from casemsg.core.errors import InputError
from casemsg.gateways import smpp_bind, smpp_handoff
from casemsg.gateways import smpp_codec as codec
from casemsg.gateways.base import TIMEOUT_FIELD, ConfigField, GatewayType, OutboundSms, SendResult


# --- the gateway type -----------------------------------------------------------------------------
class SmppGateway(GatewayType):
    type_name = "smpp"
    title = "SMPP 3.4 (an operator's or aggregator's SMSC)"
    config_schema: ClassVar[Mapping[str, ConfigField]] = {
        "host": ConfigField(required=True, help="The SMSC's host name or address."),
        "port": ConfigField("number", help="The SMSC's port (default 2775)."),
        "system_id": ConfigField(required=True, help="The bind's system_id (the account)."),
        "password": ConfigField(required=True, secret=True, help="The bind's password."),
        "system_type": ConfigField(help="The bind's system_type, when the operator asks for one."),
        "bind_mode": ConfigField(
            choices=("transceiver", "transmitter"),
            help="transceiver (default): one bind sends and receives receipts and MO; transmitter: send only.",
        ),
        "tls": ConfigField("bool", help="Bind over TLS."),
        "source_addr": ConfigField(help="The sender number or alphanumeric sender ID."),
        "source_addr_ton": ConfigField("number", help="Source TON (default 1 for a number, 5 for an ID)."),
        "source_addr_npi": ConfigField("number", help="Source NPI (default 1 for a number, 0 for an ID)."),
        "dest_addr_ton": ConfigField("number", help="Destination TON (default 1, international)."),
        "dest_addr_npi": ConfigField("number", help="Destination NPI (default 1, E.164)."),
        "window": ConfigField("number", help="submit_sm outstanding at once on the bind (default 10)."),
        "long_messages": ConfigField(
            choices=("udh", "sar"), help="How long messages are concatenated: udh (default) or sar TLVs."
        ),
        "registered_delivery": ConfigField("bool", help="Ask for delivery receipts (default true)."),
        "bind_per": ConfigField(
            choices=("worker", "process"),
            help="worker (default): each worker process binds; process: one `casemsg smpp` process holds the "
            "only bind and submits for every worker (an operator that allows one bind).",
        ),
        "timeout": TIMEOUT_FIELD,
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        super().validate_config(config)
        try:
            port = int(float(config.get("port") or 2775))
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise InputError(errors.INVALID_GATEWAY_CONFIG, "An smpp gateway's port must be between 1 and 65535.")
        try:
            codec.check_host(str(config["host"]), port)
        except netguard.BlockedAddress as exc:
            raise InputError(errors.GATEWAY_URL_NOT_ALLOWED, exc.reason, 422) from exc

    # --- outbound: the bind sends ------------------------------------------------------------------------
    async def send_one(self, session: aiohttp.ClientSession, msg: OutboundSms) -> SendResult:
        return (await self.send_batch(session, [msg]))[0]

    async def send_batch(self, session: aiohttp.ClientSession, msgs: list[OutboundSms]) -> list[SendResult]:
        """Hand the messages to this process's bind for the gateway (smpp_bind), which submits them within
        its window on its own thread; the HTTP session is not used."""
        if smpp_handoff.by_process(self.gateway):  # the bind is the `casemsg smpp` process's
            return await smpp_handoff.submit(self.gateway, msgs)
        return await smpp_bind.submit(self.gateway, msgs)
