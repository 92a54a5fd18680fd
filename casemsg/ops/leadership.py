"""Leadership: a duty that one process at a time performs across every machine, held as a lease.

Every `casemsg worker` runs a ticker thread (the due-row scan, the scheduler's beat, the sweeper, case source
syncs, the reports' roll-up), but only the holder of the `ticker` lease ticks; the others try to take it
once a second. Their work is safe to run twice (claims are atomic), so the lease is about cost: one
process scans for due rows, not every worker on every machine.

- **One row, one statement.** Taking or renewing the lease is a single conditional UPDATE: it succeeds when
  the row is free, expired, or already this process's. Two processes racing for an expired lease both run
  it; the database serialises them and the second one's condition no longer holds.
- **The database's clock.** `expires_on` is written and compared as the database's `now()`, so a machine
  whose clock is ahead cannot see a live lease as expired.
- **Failover.** A holder renews its lease every second for LEASE_SECONDS, from a thread of its own
  (`keep`), so a long beat does not let it lapse. When the holder dies (a crash, a machine gone), another
  worker takes the lease once that has passed; when it stops cleanly it releases the lease and another
  worker takes it within a second.
- **Terms.** Each change of holder adds one to `term`; the lines logged when a process takes or loses the
  lease carry it (`bench/cluster.py` counts them).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, When
from django.db.models.functions import Now

from casemsg.ops import heartbeat
from casemsg.ops.models import Lease

log = logging.getLogger("casemsg.leadership")

TICKER = "ticker"
# Renewed every second by a thread of its own, whatever the ticker is doing: it lapses only when the process
# is gone, stalled, or cannot reach the database for this long; short enough that the ticker is back within
# seconds when its machine is gone.
LEASE_SECONDS = 10.0
# How often the holder renews it (and a follower tries to take it), from a thread of its own.
RENEW_SECONDS = 1.0


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
                "%s lease lost by %s (term %d): not renewed for %g s (a stalled process, the database away)",
                self.name,
                self.holder,
                self.term,
                self.seconds,
            )
        self.leading = bool(taken)
        return self.leading

    def keep(self, stop: threading.Event, interval: float = RENEW_SECONDS) -> None:
        """Hold the lease from a thread of its own until `stop`, then release it: renewed every `interval`
        while held, tried for while another process holds it. The ticker reads `leading` between its steps,
        so a beat longer than the lease (a starved machine, a slow scheduler tick) does not lose it, and a
        ticker that did lose it stops at its next step."""
        while not stop.is_set():
            try:
                close_old_connections()
                self.hold()
            except Exception:  # noqa: BLE001 — without the database this process cannot know it still leads
                if self.leading:
                    log.warning("%s lease: renewal failed; %s stops leading", self.name, self.holder, exc_info=True)
                self.leading = False
            stop.wait(interval)
        try:
            self.release()
        except Exception:  # noqa: BLE001 — the database may be the reason we stop
            log.warning("could not release the %s lease", self.name, exc_info=True)
        finally:
            connection.close()  # this thread's own connection: it ends here

    def release(self) -> None:
        """Give the lease up (a clean stop): another process's next beat takes it."""
        if Lease.objects.filter(name=self.name, holder=self.holder).update(holder="", expires_on=Now()):
            log.info("%s lease released by %s (term %d)", self.name, self.holder, self.term)
        self.leading = False


def current(name: str = TICKER) -> Lease | None:
    """The lease's row as it stands (who holds it, since when, until when); None before any worker ran."""
    return Lease.objects.filter(name=name).first()
