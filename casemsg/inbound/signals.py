"""What inbound receiving announces, for the job module to act on without the router importing it."""

from __future__ import annotations

from django.dispatch import Signal

# After the commit that stored inbound messages: process them. Keyword arguments: ids.
inbound_received = Signal()
