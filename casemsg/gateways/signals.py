"""The hooks the gateways area announces (docs/architecture.md, "Hooks").

`gateway_delivered`: a gateway that pushes over a connection of its own rather than a webhook (the `smpp`
type's bind) received delivery reports and inbound messages. Sent on the bind's delivery thread, outside
any transaction, once per batch, with `gateway` (the Gateway row), `statuses` (list[StatusUpdate]) and
`inbound` (list[InboundSms]). `inbound` subscribes: it stores the messages and applies the reports exactly
as the two webhooks do (`casemsg.inbound.receive.on_gateway_delivered`), and answers the provider ids of
reports it found no message for (a receipt that overtook its send's outcome): the gateway offers those
again a little later.
"""

from __future__ import annotations

from django.dispatch import Signal

gateway_delivered = Signal()
