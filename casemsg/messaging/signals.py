"""What the send pipeline announces, for the areas that act on it without the pipeline importing them."""

from __future__ import annotations

from django.dispatch import Signal

# After the commit of a transaction that queued messages: wake a worker. The job module
# (casemsg.messaging.tasks) connects its wake-up; with nobody connected the ticker still sends them.
messages_queued = Signal()

# Messages the gateway took (sent or delivered), inside the transaction that stores the results. Keyword
# arguments: messages. Consent starts waiting for the answer to an opt-in question only from here.
messages_sent = Signal()

# A gateway reported that numbers opted out (a send refused as "unsubscribed", a failed delivery
# report), inside the transaction that stores the results. Keyword arguments: messages (the failed
# outbound messages, one per number). Consent records the opt-out and its ledger row.
opt_out_reported = Signal()

# Outbound messages reached a new outcome (sent, delivered or failed), inside the transaction that stores
# it: one call per batch, never per message. Keyword arguments: messages (Message objects as stored, with
# `project` loaded). The event webhooks (casemsg.events) queue a `message.status` delivery per message.
statuses_changed = Signal()
