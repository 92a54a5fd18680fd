"""The hooks the sources area announces (higher areas subscribe in their AppConfig.ready).

The cases a source writes need no hook of their own: they go through `casemsg.cases.services`, whose
`cases_changed` hook the registry, consent and alerts already follow."""

from __future__ import annotations

from django.dispatch import Signal

# A run ended (succeeded or failed), inside the transaction that records its end. Keyword arguments:
# source (the Source), run (the SourceRun, saved). Subscribers: events (`source.run` deliveries).
run_finished = Signal()
