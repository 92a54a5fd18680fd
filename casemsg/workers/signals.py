"""The mobile-worker after-change hook (see casemsg.cases.signals): the phone registry subscribes."""

from __future__ import annotations

from django.dispatch import Signal

# After a worker was created or changed, inside the write transaction. Keyword arguments: project, workers,
# previous ({pk: phone_numbers before the change} for workers that existed).
workers_changed = Signal()

# Just before workers are deleted, inside the delete transaction. Keyword arguments: project, workers.
workers_deleting = Signal()
