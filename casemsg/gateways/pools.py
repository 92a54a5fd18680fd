"""Number pools: a gateway with several sender numbers (or sender IDs), each recipient keeping the same one.

- `assign`: the sender of each recipient of a batch — the stored one (`carrier.StickySender`), else the
  pool number with the fewest recipients, stored at once. Stored, not hashed: adding a number moves nobody
  (new recipients fill it first); removing one lets its recipients be assigned again.
- `remember_inbound`: a person who writes to one of the pool's numbers is answered from that number from
  then on (the reply, and what follows).
- `reserve`: each number's own rate limit (segments per second), shared by every worker like a gateway's.

Inbound to any pool number arrives through the gateway, so it reaches the gateway's project. The numbers
are sent as the submit's source (`OutboundSms.sender`; the `smpp` type uses it as source_addr, a sender ID
with TON 5).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, transaction
from django.db.models import Count

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.carrier.models import PoolNumber, StickySender
from casemsg.gateways.models import Gateway

PACE_HORIZON = 1.0
# Which gateways have a pool, as this process last read it (the inbound webhook's hot path asks): seconds kept.
POOLED_TTL = 10.0
_pooled: tuple[float, frozenset[int]] = (0.0, frozenset())


def has_pool(gateway_id: int) -> bool:
    """Whether the gateway has pool numbers (read at most every POOLED_TTL seconds per process)."""
    global _pooled
    read_at, ids = _pooled
    if time.monotonic() - read_at > POOLED_TTL:
        ids = frozenset(PoolNumber.objects.values_list("gateway_id", flat=True).distinct())
        _pooled = (time.monotonic(), ids)
    return gateway_id in ids


def forget_pools() -> None:
    """Read which gateways have a pool again at the next question (after a number is added or removed)."""
    global _pooled
    _pooled = (0.0, frozenset())


def numbers(gateway_ids: Iterable[int]) -> dict[int, list[PoolNumber]]:
    """The pool numbers of these gateways (none for most), by gateway id; one query."""
    out: dict[int, list[PoolNumber]] = {}
    for n in PoolNumber.objects.filter(gateway_id__in=set(gateway_ids)).order_by("pk"):
        out.setdefault(n.gateway_id, []).append(n)
    return out


def assign(gateway: Gateway, pool: Sequence[PoolNumber], recipients: Iterable[str]) -> dict[str, PoolNumber]:
    """Each recipient's pool number: the stored one, else the least used, stored now (a fixed number of
    queries per batch)."""
    wanted = sorted(set(recipients))
    if not pool or not wanted:
        return {}
    by_id = {n.pk: n for n in pool}
    out: dict[str, PoolNumber] = {}
    for recipient, number_id in StickySender.objects.filter(gateway=gateway, recipient__in=wanted).values_list(
        "recipient", "number_id"
    ):
        if number_id in by_id:
            out[recipient] = by_id[number_id]
    new = [r for r in wanted if r not in out]
    if not new:
        return out
    load = Counter({n.pk: 0 for n in pool})
    load.update(
        dict(
            StickySender.objects.filter(gateway=gateway, number__in=pool)
            .values_list("number_id")
            .annotate(n=Count("pk"))
            .values_list("number_id", "n")
        )
    )
    rows = []
    for r in new:
        pk = min(load, key=lambda k: (load[k], k))
        load[pk] += 1
        rows.append(StickySender(gateway=gateway, recipient=r, number_id=pk))
    StickySender.objects.bulk_create(rows, ignore_conflicts=True)
    # another worker may have assigned some of them at the same moment: what is stored wins
    for recipient, number_id in StickySender.objects.filter(gateway=gateway, recipient__in=new).values_list(
        "recipient", "number_id"
    ):
        if number_id in by_id:
            out[recipient] = by_id[number_id]
    return out


def remember_inbound(gateway: Gateway, pairs: Iterable[tuple[str, str]]) -> int:
    """(sender, the number they wrote to): a sender who wrote to one of the gateway's pool numbers is
    answered from it from now on. Returns how many senders changed number."""
    pairs = [(s, t.lstrip("+")) for s, t in pairs if s and t]
    if not pairs:
        return 0
    pool = {n.number: n for n in PoolNumber.objects.filter(gateway=gateway, number__in={t for _, t in pairs})}
    latest = {s: pool[t] for s, t in pairs if t in pool}  # the last message of a sender counts
    if not latest:
        return 0
    stored = dict(
        StickySender.objects.filter(gateway=gateway, recipient__in=list(latest)).values_list("recipient", "number_id")
    )
    changed = 0
    with transaction.atomic():
        for s, n in latest.items():
            if stored.get(s) == n.pk:
                continue
            changed += 1
            if s in stored:
                StickySender.objects.filter(gateway=gateway, recipient=s).update(number=n)
            else:
                StickySender.objects.bulk_create(
                    [StickySender(gateway=gateway, recipient=s, number=n)], ignore_conflicts=True
                )
    return changed


def reserve(number: PoolNumber, wanted: Sequence[int]) -> list[float]:
    """Send times (epoch) for messages of these segment counts from this number, in order, at its rate limit,
    shared by every worker; shorter than `wanted` when the rest must wait (as `pipeline.reserve_slots`)."""
    if not number.rate_limit:
        return [time.time()] * len(wanted)
    with transaction.atomic():
        row = PoolNumber.objects.select_for_update().get(pk=number.pk)
        now = time.time()
        t = max(row.next_slot, now)
        slots: list[float] = []
        for seg in wanted:
            if t >= now + PACE_HORIZON:
                break
            slots.append(t)
            t += max(seg, 1) / number.rate_limit
        if slots:
            PoolNumber.objects.filter(pk=number.pk).update(next_slot=t)
    return slots


# --- configuring (gateways.services calls these) -----------------------------------------------------------
def add_number(gateway: Gateway, number: str, rate_limit: int = 0) -> PoolNumber:
    number = (number or "").strip().lstrip("+")
    if not number or len(number) > 32 or not (number.isdigit() or (number.isalnum() and len(number) <= 11)):
        raise InputError(
            errors.INVALID_GATEWAY_CONFIG,
            "A pool number is a phone number (digits, country code first) or a sender ID of at most 11 letters "
            "and digits.",
        )
    if not 0 <= rate_limit <= 100_000:
        raise InputError(errors.INVALID_GATEWAY_CONFIG, "A pool number's rate limit is 0 (none) to 100000.")
    try:
        with transaction.atomic():
            n = PoolNumber.objects.create(gateway=gateway, number=number, rate_limit=rate_limit)
        forget_pools()
        return n
    except IntegrityError as exc:
        raise InputError(
            errors.INVALID_GATEWAY_CONFIG, f"Gateway '{gateway.name}' has {number} in its pool already."
        ) from exc


def remove_number(gateway: Gateway, number: str) -> bool:
    """Remove a number; its recipients get a number of the rest of the pool at their next message."""
    number = (number or "").strip().lstrip("+")
    if not number.isalnum() or len(number) > 32:
        return False  # not a number a pool can hold
    deleted, _ = PoolNumber.objects.filter(gateway=gateway, number=number).delete()
    forget_pools()
    return bool(deleted)


def listing(gateway: Gateway) -> list[tuple[PoolNumber, int]]:
    """The gateway's pool numbers with how many recipients each keeps; one query."""
    rows = PoolNumber.objects.filter(gateway=gateway).annotate(kept=Count("recipients")).order_by("pk")
    return [(n, n.kept) for n in rows]


def listing_for(gateways: Iterable[Gateway]) -> dict[int, list[tuple[PoolNumber, int]]]:
    """`listing` for several gateways at once (a page's list); one query."""
    out: dict[int, list[tuple[PoolNumber, int]]] = {g.pk: [] for g in gateways}
    rows = PoolNumber.objects.filter(gateway_id__in=list(out)).annotate(kept=Count("recipients")).order_by("pk")
    for n in rows:
        out[n.gateway_id].append((n, n.kept))
    return out
