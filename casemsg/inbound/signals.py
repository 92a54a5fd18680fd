"""What inbound receiving and handling announce, for other areas to act on without the router importing
them."""

from __future__ import annotations

from django.dispatch import Signal

# After the commit that stored inbound messages (in the provider's webhook request): wake a worker to
# handle them. Only the wake-up listens here — whatever runs in it runs on the webhook's hot path.
# Keyword arguments: ids.
inbound_stored = Signal()

# After a worker handled inbound messages (routed to their contact and project, replies queued), one
# batch at a time. Keyword arguments: ids.
inbound_received = Signal()
