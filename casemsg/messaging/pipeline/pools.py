"""Number pools, the messages' side: each SMS through a gateway with a pool goes out from its recipient's
number (`casemsg.gateways.pools`: stored per recipient), paced by that number's own rate limit."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from casemsg.core import errors
from casemsg.gateways import pools
from casemsg.gateways.carrier.models import PoolNumber
from casemsg.messaging.models import Message


def assign_senders(sms: list[Message]) -> dict[int, PoolNumber]:
    """Set each routed message's sender (`_sender`) from its gateway's pool; the numbers by message id."""
    live = [m for m in sms if m.status == Message.SENDING and m.gateway is not None]
    by_gateway = pools.numbers({m.gateway.pk for m in live if m.gateway is not None})
    if not by_gateway:
        return {}
    out: dict[int, PoolNumber] = {}
    for gid, pool in by_gateway.items():
        group = [m for m in live if m.gateway is not None and m.gateway.pk == gid]
        gateway = group[0].gateway
        assert gateway is not None
        senders = pools.assign(gateway, pool, [m.to for m in group])
        for m in group:
            n = senders.get(m.to)
            if n is not None:
                m._sender = n.number
                out[m.pk] = n
    return out


def pace_numbers(sms: list[Message], senders: dict[int, PoolNumber], now: datetime) -> None:
    """Each pool number's rate limit, after the gateway's (`send.reserve_rate`): a message goes at the later
    of its two slots; past the horizon it waits (RATE_LIMITED, a delay)."""
    by_number: dict[int, list[Message]] = defaultdict(list)
    numbers: dict[int, PoolNumber] = {}
    for m in sms:
        n = senders.get(m.pk)
        if m.status == Message.SENDING and n is not None and n.rate_limit:
            by_number[n.pk].append(m)
            numbers[n.pk] = n
    for pk, group in by_number.items():
        slots = pools.reserve(numbers[pk], [m.segments for m in group])
        for m, slot in zip(group, slots, strict=False):
            m._slot = max(m._slot, slot)
        for m in group[len(slots) :]:
            m.status, m.claim = Message.QUEUED, ""
            m.delay_reason = errors.RATE_LIMITED
            m.next_attempt_on = now + timedelta(seconds=pools.PACE_HORIZON)
