"""What the consent area announces, for the areas above it (event webhooks) to act on without consent
importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Consent ledger rows were written (a consent, refusal, expiry, request, opt-out or opt-in), inside the
# transaction that writes them: one call per bulk write. Keyword arguments: records (ConsentRecord
# objects as saved). The event webhooks (casemsg.events) queue `consent.changed` / `optout.changed`.
ledger_written = Signal()
