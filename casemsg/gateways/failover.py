"""Failover between the gateways of a route, and each gateway's circuit.

A route (a prefix of the project's or the installation's map) lists gateways in order: its own gateway
first, then its further ones (`carrier.RouteGateway`, `casemsg gateway map PREFIX A --then B,C`). A message
moves to the next gateway only when its gateway **certainly did not take it** — the adapter says so with
`SendResult.not_taken` (an SMPP gateway that is not bound: bind refused, wrong password, SMSC unreachable),
or the gateway is disabled, or its circuit is open. A message whose outcome is unknown (no answer after it
was handed over) never moves: it could be sent twice.

The circuit (`carrier.Circuit`, one row per gateway, shared by every worker): FAILURES_TO_OPEN consecutive
not-taken sends open it for OPEN_SECONDS; while open, messages routed to it go to the next gateway at once.
When the time passes, one message is let through as a probe (the circuit is re-armed for another
OPEN_SECONDS as it goes, so that other workers do not probe too); a send the gateway takes closes it.

What this module answers is about gateways only; the messages' side (history, status) is
`casemsg.messaging.pipeline.failover`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from casemsg.gateways.carrier.models import Circuit
from casemsg.gateways.models import Gateway

FAILURES_TO_OPEN = 3
OPEN_SECONDS = 30


@dataclass
class State:
    """A gateway's circuit as one batch sees it."""

    open_until: datetime | None = None
    disabled: bool = False
    failures: int = 0
    last_error: str = ""
    probing: bool = False  # this batch holds the probe

    def usable(self, now: datetime) -> bool:
        return not self.disabled and (self.open_until is None or self.open_until <= now or self.probing)

    def describe(self, now: datetime) -> str:
        if self.disabled:
            return "disabled"
        if self.open_until is not None and self.open_until > now:
            return f"circuit open until {self.open_until:%H:%M:%S} UTC after {self.failures} failures"
        if self.open_until is not None:
            return "circuit half-open: the next message probes it"
        return "closed"


class Circuits:
    """The circuits of a batch's gateways, read once; `pick` chooses a message's gateway on its chain."""

    def __init__(self, gateway_ids: Iterable[int]):
        ids = set(gateway_ids)
        self.now = timezone.now()
        self.states: dict[int, State] = {
            c.gateway_id: State(c.open_until, c.disabled, c.failures, c.last_error)
            for c in Circuit.objects.filter(gateway_id__in=ids)
        }

    def state(self, gateway: Gateway) -> State:
        return self.states.get(gateway.pk) or State()

    def _probe(self, gateway: Gateway) -> bool:
        """Take the probe of a half-open circuit for this batch (at most one worker gets it)."""
        st = self.state(gateway)
        if st.disabled or st.open_until is None or st.open_until > self.now:
            return False
        if st.probing:
            return False  # one probe message per batch
        rearm = self.now + timedelta(seconds=OPEN_SECONDS)
        won = Circuit.objects.filter(gateway_id=gateway.pk, open_until=st.open_until).update(open_until=rearm)
        if won:
            st.probing = True
            st.open_until = rearm
        return bool(won)

    def pick(self, chain: Sequence[Gateway], current: Gateway) -> tuple[Gateway | None, list[tuple[Gateway, str]]]:
        """The gateway a message routed to `current` goes to now: `current` when usable, else the next usable
        one after it on the chain (the route's gateways in order). Returns it (None when none is usable) and
        the gateways skipped, each with why."""
        start = next((i for i, g in enumerate(chain) if g.pk == current.pk), None)
        candidates = [current] if start is None else list(chain[start:])
        skipped: list[tuple[Gateway, str]] = []
        for gw in candidates:
            st = self.state(gw)
            if not st.disabled and st.open_until is None:
                return gw, skipped
            if self._probe(gw):
                return gw, skipped
            if st.usable(self.now) and st.probing is False and st.open_until is not None and st.open_until <= self.now:
                return gw, skipped
            skipped.append((gw, st.describe(self.now)))
        return None, skipped

    def peek(self, chain: Sequence[Gateway], current: Gateway) -> Gateway | None:
        """The gateway a message routed to `current` would use now, without taking a probe (contact status,
        pre-flight): `current` or the next on the chain that is neither disabled nor open."""
        start = next((i for i, g in enumerate(chain) if g.pk == current.pk), None)
        for gw in [current] if start is None else list(chain[start:]):
            if self.state(gw).usable(self.now):
                return gw
        return None

    def reopens_on(self, chain: Sequence[Gateway]) -> datetime:
        """When the first of these gateways may be probed again (a disabled one never)."""
        times = [st.open_until for g in chain if (st := self.state(g)) and not st.disabled and st.open_until]
        return min(times, default=self.now + timedelta(seconds=OPEN_SECONDS))


def next_on(chain: Sequence[Gateway], current: Gateway) -> Gateway | None:
    """The gateway after `current` on the chain; None when it is the last (or not on it)."""
    for i, g in enumerate(chain):
        if g.pk == current.pk:
            return chain[i + 1] if i + 1 < len(chain) else None
    return None


def record(outcomes: Mapping[int, tuple[int, int, str]]) -> None:
    """After a window: per gateway id, (sends it took — any answer at all, even a refusal —, sends it
    certainly did not take, the last such error). A gateway that took one closes its circuit; one that
    took none counts its failures and opens at FAILURES_TO_OPEN. One statement per gateway."""
    now = timezone.now()
    for gid, (taken, not_taken, error) in outcomes.items():
        if taken:
            Circuit.objects.filter(gateway_id=gid).exclude(failures=0, open_until=None).update(
                failures=0, open_until=None, last_error=""
            )
            continue
        if not not_taken:
            continue
        with transaction.atomic():
            Circuit.objects.get_or_create(gateway_id=gid)
            Circuit.objects.filter(gateway_id=gid).update(failures=F("failures") + not_taken, last_error=error[:300])
            Circuit.objects.filter(gateway_id=gid, failures__gte=FAILURES_TO_OPEN).update(
                open_until=now + timedelta(seconds=OPEN_SECONDS)
            )


def set_disabled(gateway: Gateway, disabled: bool) -> Circuit:
    circuit, _ = Circuit.objects.get_or_create(gateway=gateway)
    circuit.disabled = disabled
    if not disabled:
        circuit.failures, circuit.open_until, circuit.last_error = 0, None, ""
    circuit.save()
    return circuit


def states(gateways: Iterable[Gateway]) -> dict[int, str]:
    """Each gateway's circuit in words (the gateway list, the page)."""
    c = Circuits(g.pk for g in gateways)
    return {g.pk: c.state(g).describe(c.now) for g in gateways}
