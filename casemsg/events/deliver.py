"""Posting event deliveries: a loop of its own in each worker (`casemsg worker` starts `run` in a thread).

A claim takes due deliveries — per endpoint as many as it has room for (CASEMSG_WEBHOOK_CONCURRENCY on the
wire at once), and only the oldest pending one of each subject (a message, a phone number), so events
about one subject arrive in order. The worker's loop (`Worker`) posts them as tasks, each within
CASEMSG_WEBHOOK_TIMEOUT_SECONDS, stores outcomes as they come and refills each endpoint's room as its
answers arrive, so a slow endpoint never holds back another; `deliver_due` (tests) and `deliver_now` (the
test event) do the same in synchronous rounds. A 2xx is delivered; anything else (another status, a timeout, a
refused connection) is tried again after an exponential back-off (CASEMSG_WEBHOOK_RETRY_BASE_SECONDS,
doubled each time, at most an hour apart) until CASEMSG_WEBHOOK_RETRY_HOURS after the event, then given up.

Claims are conditional updates, so several workers never post one delivery at once; a claim lasts the
timeout plus a margin, so a worker that dies mid-round leaves its deliveries to be retried, not lost.
The HTTP session is the address-guarded one (casemsg.core.netguard): the URL was checked when saved, and
every connection is checked again after DNS and before connecting; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from casemsg.core import bulk, claims, logs, metrics, netguard
from casemsg.events import services
from casemsg.events.models import Delivery

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = "casemsg-webhooks/1"
_FIELDS = [
    "attempts",
    "next_attempt_utc",
    "claim",
    "last_attempt_on",
    "last_status",
    "last_response",
    "last_error",
    "delivered_on",
    "failed_on",
]


def _earlier_pending():
    return Delivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        subject=OuterRef("subject"),
        pk__lt=OuterRef("pk"),
        next_attempt_utc__isnull=False,
    )


def claim(in_flight: Mapping[int, int] | None = None) -> list[Delivery]:
    """Take due deliveries (with their endpoint and project loaded): per endpoint, as many as it may have
    on the wire (CASEMSG_WEBHOOK_CONCURRENCY, less those `in_flight` already)."""
    in_flight = in_flight or {}
    limit = settings.CASEMSG_WEBHOOK_CONCURRENCY
    now = timezone.now()
    due = Delivery.objects.filter(next_attempt_utc__lte=now, endpoint__active=True)
    endpoints = list(due.order_by().values_list("endpoint_id", flat=True).distinct()[:200])
    if not endpoints:
        return []
    token = uuid.uuid4().hex
    lease = now + timedelta(seconds=settings.CASEMSG_WEBHOOK_TIMEOUT_SECONDS + 30)
    ready = due.filter(~Exists(_earlier_pending()))
    taken = 0
    for endpoint_id in endpoints:  # one claim per endpoint with something due (a handful), not per row
        room = limit - in_flight.get(endpoint_id, 0)
        # only one worker moves a row's next attempt from the past to its claim's end
        taken += claims.claim(
            ready.filter(endpoint_id=endpoint_id),
            order_by=["next_attempt_utc", "pk"],
            limit=room,
            claim=token,
            next_attempt_utc=lease,
        )
    if not taken:
        return []
    return list(Delivery.objects.filter(claim=token).select_related("endpoint__project").order_by("pk"))


def _backoff(attempts: int) -> float:
    return min(settings.CASEMSG_WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 3600.0)


def record(d: Delivery, status: int | None, response: str, error: str) -> None:
    """The outcome of one attempt, on the object (stored by the caller with the round's others)."""
    now = timezone.now()
    d.attempts += 1
    d.claim = ""
    d.last_attempt_on = now
    d.last_status = status
    d.last_response = netguard.excerpt(response, 200) if response else ""
    d.last_error = error[:300]
    if status is not None and 200 <= status < 300:
        d.delivered_on, d.next_attempt_utc = now, None
        return
    retry_at = now + timedelta(seconds=_backoff(d.attempts))
    if retry_at > d.created_on + timedelta(hours=settings.CASEMSG_WEBHOOK_RETRY_HOURS):
        d.failed_on, d.next_attempt_utc = now, None
        log.info(
            "event delivery %s to endpoint %s given up after %s attempts",
            d.pk,
            d.endpoint_id,
            d.attempts,
            extra=logs.fields(delivery_id=d.pk, endpoint=d.endpoint_id, event=d.event, message_id=d.message_id),
        )
    else:
        d.next_attempt_utc = retry_at


async def _post(session: aiohttp.ClientSession, d: Delivery, sem: asyncio.Semaphore) -> None:
    endpoint = d.endpoint
    payload = services.body(d, endpoint.project.slug)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Casemsg-Event": d.event,
        "X-Casemsg-Delivery": f"evt_{d.pk}",
        services.SIGNATURE_HEADER: services.sign(endpoint.secret, int(time.time()), payload),
    }
    started = time.perf_counter()
    status: int | None = None
    text, error, outcome = "", "", ""
    async with sem:
        try:
            async with session.post(endpoint.url, data=payload, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                text = (await resp.content.read(4096)).decode("utf-8", "replace")
                outcome = metrics.http_outcome(status)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            blocked = netguard.blocked_reason(exc)
            if blocked is not None:
                error, outcome = blocked, "blocked"
            elif isinstance(exc, TimeoutError):
                error = f"No answer within {settings.CASEMSG_WEBHOOK_TIMEOUT_SECONDS:g} seconds."
                outcome = "timeout"
            else:
                error, outcome = netguard.excerpt(f"{type(exc).__name__}: {exc}", 300), "connection_error"
    metrics.EVENT_DELIVERIES.labels(d.event, outcome).inc()
    metrics.EVENT_LATENCY.observe(time.perf_counter() - started)
    record(d, status, text, error)


async def post_all(session: aiohttp.ClientSession, deliveries: list[Delivery]) -> None:
    """Post every delivery, the endpoints concurrently, at most CASEMSG_WEBHOOK_CONCURRENCY per endpoint."""
    sems: dict[int, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(settings.CASEMSG_WEBHOOK_CONCURRENCY))
    await asyncio.gather(*(_post(session, d, sems[d.endpoint_id]) for d in deliveries))


def make_session() -> aiohttp.ClientSession:
    """The guarded session (call inside a coroutine): internal addresses refused at every connection."""
    return netguard.make_session(
        settings.CASEMSG_GATEWAY_ALLOW_PRIVATE,
        label="Event webhook URL",
        timeout=aiohttp.ClientTimeout(total=settings.CASEMSG_WEBHOOK_TIMEOUT_SECONDS),
        connector_kwargs={"limit": 256},
    )


def store(deliveries: list[Delivery]) -> None:
    with transaction.atomic():
        bulk.update_rows(deliveries, _FIELDS)


class Deliverer:
    """One event loop and one HTTP session, kept between rounds (keep-alive connections to each endpoint)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.session: aiohttp.ClientSession | None = None

    def round(self) -> int:
        """Claim, post and store one round; the number of deliveries posted."""
        deliveries = claim()
        if deliveries:
            self.loop.run_until_complete(self._post(deliveries))
            store(deliveries)
        return len(deliveries)

    async def _post(self, deliveries: list[Delivery]) -> None:
        if self.session is None or self.session.closed:
            self.session = make_session()
        await post_all(self.session, deliveries)

    def close(self) -> None:
        if self.session is not None and not self.session.closed:
            self.loop.run_until_complete(self.session.close())
        self.loop.close()


def deliver_due(max_rounds: int | None = None) -> int:
    """Post what is due now, round after round until nothing is (tests and `send a test event`)."""
    deliverer = Deliverer()
    done = rounds = 0
    try:
        while max_rounds is None or rounds < max_rounds:
            n = deliverer.round()
            if not n:
                break
            done += n
            rounds += 1
    finally:
        deliverer.close()
    return done


class Worker:
    """The worker's delivery loop: endpoints never wait for each other.

    Posts run as tasks on one event loop; the database work (claiming, storing outcomes) runs on one
    thread of its own, so the loop never blocks on it. Each pass stores the outcomes that came in, then
    claims what is due for the endpoints with room (CASEMSG_WEBHOOK_CONCURRENCY posts on the wire each):
    a slow endpoint fills its own room and waits there, while a fast one is refilled as its answers come.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.in_flight: dict[int, int] = defaultdict(int)
        self.finished: list[Delivery] = []
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-db")

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    async def _one(self, session: aiohttp.ClientSession, d: Delivery, sem: asyncio.Semaphore) -> None:
        try:
            await _post(session, d, sem)
        finally:
            self.in_flight[d.endpoint_id] -= 1
            self.finished.append(d)

    def _claim(self, in_flight: dict[int, int]) -> list[Delivery]:
        close_old_connections()
        return claim(in_flight)

    async def _flush(self) -> None:
        if self.finished:
            done, self.finished = self.finished, []
            await self._db(store, done)

    async def run(self, stop: threading.Event) -> None:
        session = make_session()
        tasks: set[asyncio.Task[None]] = set()
        unlimited = asyncio.Semaphore(10**9)  # room is enforced by the claim
        try:
            while not stop.is_set():
                try:
                    await self._flush()
                    claimed = await self._db(self._claim, dict(self.in_flight))
                except Exception:  # noqa: BLE001 — the loop must survive a database hiccup
                    log.exception("event deliveries failed; retrying")
                    claimed = []
                    await asyncio.sleep(self.interval)
                for d in claimed:
                    self.in_flight[d.endpoint_id] += 1
                    task = asyncio.create_task(self._one(session, d, unlimited))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if claimed:
                    await asyncio.sleep(0.05)  # let them start; claim again for the endpoints with room
                elif tasks:
                    await asyncio.wait(tasks, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
                else:
                    await asyncio.sleep(self.interval)
            if tasks:
                await asyncio.wait(tasks, timeout=settings.CASEMSG_WEBHOOK_TIMEOUT_SECONDS)
            await self._flush()
        finally:
            await session.close()
            await self._db(connections.close_all)  # the database thread's own connection
            self.db.shutdown(wait=True)


def run(stop: threading.Event, interval: float = 1.0) -> None:
    """The worker's delivery thread (`casemsg worker` starts it): Worker.run until `stop` is set."""
    asyncio.run(Worker(interval).run(stop))


def deliver_now(delivery: Delivery) -> Delivery:
    """Post one delivery at once (the "send a test event" call), unless a worker holds it already."""
    now = timezone.now()
    token = uuid.uuid4().hex
    lease = now + timedelta(seconds=settings.CASEMSG_WEBHOOK_TIMEOUT_SECONDS + 30)
    Delivery.objects.filter(pk=delivery.pk, next_attempt_utc__lte=now).update(claim=token, next_attempt_utc=lease)
    held = list(Delivery.objects.filter(pk=delivery.pk, claim=token).select_related("endpoint__project"))
    if held:
        deliverer = Deliverer()
        try:
            deliverer.loop.run_until_complete(deliverer._post(held))
        finally:
            deliverer.close()
        store(held)
    return Delivery.objects.select_related("endpoint").get(pk=delivery.pk)
