"""Sending a claimed batch: the HTTP session and event loop every gateway type sends through.

Each thread (a worker, or a test's) keeps its own event loop and one aiohttp session between batches,
so the keep-alive connections to each provider are reused instead of reconnecting for every batch; the
sessions are closed at exit. Within a batch the gateways are sent to concurrently: a gateway without a
rate limit gets its messages in one concurrent `send_batch`; a rate-limited one gets each message at the
time reserved for it (`messaging.pipeline.reserve_slots`).

The session is guarded (`casemsg.core.netguard.make_session`): every connection's address is checked
after DNS resolution and right before connecting, and so is every redirect target, so a gateway whose
name later resolves to an internal address (DNS rebinding) or whose provider redirects there is refused,
unless the installation sets CASEMSG_GATEWAY_ALLOW_PRIVATE=1 (cloud metadata addresses never pass). A
refused send fails the message with GATEWAY_URL_NOT_ALLOWED (`base.classify_exception`), not retried.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import aiohttp
from django.conf import settings

from casemsg.core import netguard
from casemsg.gateways.base import OutboundSms, SendResult
from casemsg.gateways.cleaning import provider_key
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import adapter_for

T = TypeVar("T")

# Per gateway, its messages with the time (epoch seconds) each may be sent at.
Plan = Sequence[tuple[Gateway, Sequence[tuple[OutboundSms, float]]]]

_local = threading.local()
_sessions: list[tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = []

# Replaces the guard's block predicate (netguard.is_blocked_ip) when set: an installation with its own
# list of forbidden addresses, or a test that needs one loopback address to count as public.
BLOCKED_CHECK: netguard.BlockedCheck | None = None
# A result's detail is cut to this (gateway types already show only an excerpt of a provider's answer).
MAX_DETAIL = 300


def send(plan: Plan) -> dict[int, SendResult]:
    """Send every message of the plan; the results by message id."""
    if not plan:
        return {}
    return _run(_send_all(plan))


@atexit.register
def _close_sessions() -> None:
    """Close every thread's HTTP session at exit (their loops are idle by then)."""
    for loop, session in _sessions:
        if not loop.is_closed() and not loop.is_running() and not session.closed:
            try:
                loop.run_until_complete(session.close())
            except RuntimeError:
                pass


def _loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on this thread's own event loop, kept between batches so that its HTTP session (and the
    keep-alive connections to each gateway) are reused instead of reconnecting for every batch."""
    return _loop().run_until_complete(coro)


async def _session() -> aiohttp.ClientSession:
    """This thread's guarded session; called on its loop (aiohttp binds a session to the running loop).
    A new one is made when the address policy changed (a test overriding the setting)."""
    policy = (settings.CASEMSG_GATEWAY_ALLOW_PRIVATE, BLOCKED_CHECK)
    session: aiohttp.ClientSession | None = getattr(_local, "session", None)
    if session is not None and not session.closed and getattr(_local, "policy", None) != policy:
        await session.close()
    if session is None or session.closed or getattr(_local, "policy", None) != policy:
        session = _local.session = netguard.make_session(
            policy[0],
            blocked=policy[1],
            label="Gateway URL",
            timeout=aiohttp.ClientTimeout(total=30),
            connector_kwargs={"limit": 128},
        )
        _local.policy = policy
        _sessions[:] = [(lp, s) for lp, s in _sessions if not s.closed]
        _sessions.append((_loop(), session))
    return session


def _stored(r: SendResult) -> SendResult:
    """A result as the message row can hold it: a bounded provider id, a short plain detail."""
    r.provider_id = provider_key(r.provider_id)
    if r.detail:
        r.detail = netguard.excerpt(r.detail, MAX_DETAIL)
    return r


async def _send_all(plan: Plan) -> dict[int, SendResult]:
    session = await _session()

    async def one_gateway(gw: Gateway, items: Sequence[tuple[OutboundSms, float]]) -> list[SendResult]:
        adapter = adapter_for(gw)
        if not gw.rate_limit:
            return await adapter.send_batch(session, [sms for sms, _slot in items])

        async def paced(sms: OutboundSms, slot: float) -> list[SendResult]:
            delay = slot - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            return await adapter.send_batch(session, [sms])

        nested = await asyncio.gather(*(paced(sms, slot) for sms, slot in items))
        return [r for rs in nested for r in rs]

    groups = await asyncio.gather(*(one_gateway(gw, items) for gw, items in plan))
    return {r.message_id: _stored(r) for rs in groups for r in rs}
