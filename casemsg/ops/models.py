"""What operations need stored: each worker's heartbeat (readiness asks whether one is alive)."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per worker process ("host:pid"), its `seen_on` renewed every few seconds while it runs."""

    name = models.CharField(max_length=200, unique=True)
    started_on = models.DateTimeField()
    seen_on = models.DateTimeField(db_index=True)
