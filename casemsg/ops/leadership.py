"""Leadership: a duty that one process at a time performs across every machine, held as a lease.

Every `casemsg worker` runs a ticker thread (the due-row scan, the scheduler's beat, the sweeper, case source
syncs, the reports' roll-up), but only the holder of the `ticker` lease ticks; the others try to take it at
each beat, once a second. Their work is safe to run twice (claims are atomic), so the lease is about cost: one
process scans for due rows, not every worker on every machine.

- **One row, one statement.** Taking or renewing the lease is a single conditional UPDATE: it succeeds when
  the row is free, expired, or already this process's. Two processes racing for an expired lease both run
  it; the database serialises them and the second one's condition no longer holds.
- **The database's clock.** `expires_on` is written and compared as the database's `now()`, so a machine
  whose clock is ahead cannot see a live lease as expired.
- **Failover.** A holder renews its lease at every beat for LEASE_SECONDS. When it dies (a crash, a
  machine gone), another worker takes the lease once that has passed; when it stops cleanly it releases
  the lease and the next beat of another worker takes it at once.
- **Terms.** Each change of holder adds one to `term`; the lines logged when a process takes or loses the
  lease carry it (`bench/cluster.py` counts them).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, When
from django.db.models.functions import Now

from casemsg.ops import heartbeat
from casemsg.ops.models import Lease

log = logging.getLogger("casemsg.leadership")

TICKER = "ticker"
# Renewed every beat (1 s): long enough that a beat slowed down by a busy database (a scheduler beat has a
# 2 s budget, a sweep over a large backlog takes a few seconds) does not let it lapse, short enough that the
# ticker is back within seconds when its machine is gone.
LEASE_SECONDS = 10.0


class Leadership:
    """This process's claim on one lease. `hold()` at every beat: True while this process holds it."""

    def __init__(self, name: str = TICKER, holder: str | None = None, seconds: float = LEASE_SECONDS) -> None:
        self.name = name
        self.holder = holder or heartbeat.worker_name()
        self.seconds = seconds
        self.leading = False
        self.term = 0

    def hold(self) -> bool:
        """Take the lease if it is free or expired, renew it if it is ours; whether we hold it now."""
        mine = Q(holder=self.holder)
        expires = ExpressionWrapper(Now() + timedelta(seconds=self.seconds), output_field=DateTimeField())
        taken = (
            Lease.objects.filter(name=self.name)
            .filter(mine | Q(expires_on__isnull=True) | Q(expires_on__lt=Now()))
            .update(
                holder=self.holder,
                term=Case(When(mine, then=F("term")), default=F("term") + 1),
                acquired_on=Case(When(mine, then=F("acquired_on")), default=Now()),
                renewed_on=Now(),
                expires_on=expires,
            )
        )
        if not taken and not Lease.objects.filter(name=self.name).exists():
            # the first beat of the installation: make the row, then race for it like everyone else
            try:
                with transaction.atomic():
                    Lease.objects.create(name=self.name)
            except IntegrityError:
                pass  # another process made it first
            return self.hold()
        if taken and not self.leading:
            self.term = Lease.objects.filter(name=self.name).values_list("term", flat=True).get()
            log.info("%s lease taken by %s (term %d)", self.name, self.holder, self.term)
        elif not taken and self.leading:
            log.warning(
                "%s lease lost by %s (term %d): a beat outlasted %g s, or the database was away",
                self.name,
                self.holder,
                self.term,
                self.seconds,
            )
        self.leading = bool(taken)
        return self.leading

    def release(self) -> None:
        """Give the lease up (a clean stop): another process's next beat takes it."""
        if Lease.objects.filter(name=self.name, holder=self.holder).update(holder="", expires_on=Now()):
            log.info("%s lease released by %s (term %d)", self.name, self.holder, self.term)
        self.leading = False


def current(name: str = TICKER) -> Lease | None:
    """The lease's row as it stands (who holds it, since when, until when); None before any worker ran."""
    return Lease.objects.filter(name=name).first()
