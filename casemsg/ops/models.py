"""What operations need stored: each worker's heartbeat (readiness asks whether one is alive) and the
leases of duties one process holds at a time (the ticker)."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per worker process ("host:pid"), its `seen_on` renewed every few seconds while it runs."""

    name = models.CharField(max_length=200, unique=True)
    started_on = models.DateTimeField()
    seen_on = models.DateTimeField(db_index=True)


class Lease(models.Model):
    """A duty one process holds at a time across every machine (the ticker's: `casemsg.ops.leadership`).
    Times are the database's clock, so the machines' own clocks cannot hand it to two holders."""

    name = models.CharField(max_length=50, unique=True)
    holder = models.CharField(max_length=200, default="")  # "host:pid", "" when released
    # +1 at every change of holder: a log line or a metric can tell one leadership from the next
    term = models.PositiveBigIntegerField(default=0)
    acquired_on = models.DateTimeField(null=True)
    renewed_on = models.DateTimeField(null=True)
    expires_on = models.DateTimeField(null=True)
