"""The hooks the gateways area announces (docs/architecture.md, "Hooks").

`gateway_delivered`: a gateway that pushes over a connection of its own rather than a webhook (the `smpp`
type's bind) received delivery reports and inbound messages. Sent on the bind's delivery thread, outside
any transaction, once per batch, with `gateway` (the Gateway row), `statuses` (list[StatusUpdate]) and
`inbound` (list[InboundSms]). `inbound` subscribes: it stores the messages and applies the reports exactly
as the two webhooks do (`casemsg.inbound.receive.on_gateway_delivered`), and answers the provider ids of
reports it found no message for (a receipt that overtook its send's outcome): the gateway offers those
again a little later.

`gateway_uses`: asked before a gateway is removed (gateways.services.remove_gateway), inside its
transaction, with `gateway` (the Gateway row). Each receiver answers a list of sentences naming what of its
area still depends on the gateway ("2 messages waiting to be sent"), or an empty list. `messaging` answers
for the messages queued or being sent through it.
"""

from __future__ import annotations

from django.dispatch import Signal

gateway_delivered = Signal()
gateway_uses = Signal()
