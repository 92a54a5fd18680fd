"""Failover, the messages' side: a message moves along its route's gateways when its gateway certainly did
not take it, and its history records each hop (`casemsg.gateways.failover` keeps the circuits).

- `route_around`, after routing: a message whose gateway is disabled or has its circuit open goes to the
  next usable gateway of its route at once; with none usable it waits (GATEWAY_CIRCUIT_OPEN) until one
  may be probed.
- `after_send`, after a window: the circuits learn what each gateway took, and a message answered
  `not_taken` goes back to the queue, due now, on the route's next gateway (not counted as an attempt);
  after the last gateway it is retried as usual, starting again from the first. A message whose outcome is
  unknown never moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from casemsg.core import errors, phone
from casemsg.gateways import failover
from casemsg.gateways.base import SendResult
from casemsg.gateways.models import Gateway
from casemsg.gateways.routing import Router
from casemsg.messaging.models import Message

WHY_LIMIT = 200


def _hop(m: Message, src: Gateway, dst: Gateway | None, why: str, now: datetime) -> None:
    entry: dict[str, object] = {
        "at": now.isoformat(),
        "code": errors.GATEWAY_FAILOVER,
        "from": src.name,
        "to": dst.name if dst is not None else "",
        "why": why[:WHY_LIMIT],
        "attempt": m.attempts,
    }
    m.history = [*(m.history or []), entry]


def route_around(sms: list[Message], router: Router, now: datetime) -> None:
    """Each routed message's route chain (kept on it for `after_send`), and the gateway it goes to now."""
    live = [m for m in sms if m.status == Message.SENDING and m.gateway is not None]
    if not live:
        return
    chains: dict[int, list[Gateway]] = {}
    for m in live:
        assert m.gateway is not None
        chain = router.chain(m.project_id or 0, m.to, m.gateway)
        if len(chain) > 1:
            region = phone.check(m.to).region
            chain = [g for g in chain if g.pk == m.gateway.pk or not g.countries or region in g.countries]
        chains[m.pk] = chain
        m._chain = chain
    circuits = failover.Circuits({g.pk for chain in chains.values() for g in chain})
    if not circuits.states:
        return  # no gateway has ever failed: the common case costs one query
    for m in live:
        assert m.gateway is not None
        chain = chains[m.pk]
        gw, skipped = circuits.pick(chain, m.gateway)
        for i, (g, why) in enumerate(skipped):
            dst = skipped[i + 1][0] if i + 1 < len(skipped) else gw
            _hop(m, g, dst, why, now)
        if gw is None:
            m.status, m.claim = Message.QUEUED, ""
            m.delay_reason = errors.GATEWAY_CIRCUIT_OPEN
            m.error_detail = "; ".join(f"{g.name}: {why}" for g, why in skipped)[:300]
            m.next_attempt_on = circuits.reopens_on(chain)
            continue
        if gw.pk != m.gateway.pk:
            m.gateway, m.gateway_name = gw, gw.name


def after_send(msgs: list[Message], results: Mapping[int, SendResult], now: datetime) -> set[int]:
    """Teach the circuits what each gateway took, and move the messages a gateway did not take. Returns the
    ids of the messages moved (their outcome is written; `apply_result` must not see them).

    A message one of whose submits got no answer (`outcome_unknown`: the gateway may have it) gets a
    SENDING_OUTCOME_UNKNOWN entry in its history now, per submit: sent again, it may be a duplicate, and only
    those are."""
    outcomes: dict[int, tuple[int, int, str]] = {}
    for m in msgs:
        r = results.get(m.pk)
        if r is None or m.gateway is None or m.channel == "email":
            continue
        if r.outcome_unknown:
            entry = {"at": now.isoformat(), "code": errors.SENDING_OUTCOME_UNKNOWN, "attempt": m.attempts}
            m.history = [*(m.history or []), {**entry, "gateway": m.gateway.name, "why": r.detail[:WHY_LIMIT]}]
        taken, not_taken, error = outcomes.get(m.gateway.pk, (0, 0, ""))
        if r.not_taken:
            outcomes[m.gateway.pk] = (taken, not_taken + 1, r.detail)
        elif r.status in ("sent", "delivered", "failed"):
            outcomes[m.gateway.pk] = (taken + 1, not_taken, error)
    if outcomes:
        failover.record(outcomes)
    moved: set[int] = set()
    for m in msgs:
        r = results.get(m.pk)
        chain = m._chain
        if r is None or not r.not_taken or m.gateway is None or not chain or len(chain) < 2:
            continue
        nxt = failover.next_on(chain, m.gateway)
        if nxt is None:
            # the route's last gateway did not take it either: retried as usual, from the first gateway
            _hop(m, m.gateway, chain[0], f"{r.detail} (last gateway of the route; retried later)", now)
            m.gateway, m.gateway_name = chain[0], chain[0].name
            continue
        _hop(m, m.gateway, nxt, r.detail, now)
        m.error_detail = f"Gateway '{m.gateway.name}' did not take it ({r.detail}); moved to '{nxt.name}'."[:300]
        m.gateway, m.gateway_name = nxt, nxt.name
        m.status, m.claim, m.next_attempt_on = Message.QUEUED, "", now
        m.delay_reason = errors.GATEWAY_FAILOVER
        m.attempts -= 1  # it went nowhere: not an attempt
        moved.add(m.pk)
    return moved
