"""The SMPP binds of one process: one persistent bind per `smpp` gateway, held on a thread of its own.

Why a thread: the transport runs each sending thread's event loop only while a batch is on the wire, but a
bind must be read all the time — delivery receipts and MO messages arrive whenever the SMSC sends them, and
an unread bind fills its inbound buffer. So the binds live on one event loop (`Hub`) that runs for the
life of the process; a sending thread hands its messages over (`submit`) and awaits the results. The
library (smpp34, a Rust/tokio core) answers the SMSC's enquire_link and sends its own every 30 s, keeps the
sequence numbers and times out unanswered requests.

Each worker process binds every `smpp` gateway it sends through (and `hold` binds them all at start, so
receipts and MO flow with no outbound traffic). A bind no worker holds (a gateway's test message sent from
a web process) is unbound after IDLE_SECONDS without a send. An operator that allows a single bind per
account needs a single worker process for it (`casemsg worker`, any number of threads).

A bind (`Bind`):
- connects and binds (transceiver or transmitter, TLS by config); a failed bind is retried with back-off
  (1 s doubling to 60 s) by its supervisor task; after a drop it rebinds at once;
- sends at most `window` submit_sm outstanding;
- ESME_RTHROTTLED / ESME_RMSGQFUL pause the whole bind (50 ms doubling to 2 s) and the same part is
  submitted again, up to BUSY_TRIES times, then the message is retried later by the pipeline;
- a message the bind cannot take (not bound: bind refused, wrong password, SMSC unreachable) is answered
  `retry` with `not_taken=True` — it certainly did not reach the SMSC, so the pipeline may move it to the
  route's next gateway; a submit with no answer (connection dropped, timeout) is `retry` with
  `outcome_unknown=True`: the SMSC may have it, so it is submitted again on the same gateway and its
  history marks it as a possible duplicate;
- every acknowledged submit is journaled (`smpp_journal`, written in batches on the hub's database thread),
  so duplicates are per submit, not per window: a part acknowledged is never submitted again, and after a
  worker is killed the sweeper settles the messages whose every part was acknowledged;
- reads every deliver_sm, acknowledged by the library: receipts and MO messages are gathered and handed,
  a batch at a time, to the `gateway_delivered` hook on a database thread of the hub.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import smpp34
from django.db import connections

from casemsg.core import errors, netguard
from casemsg.gateways import smpp_codec as codec
from casemsg.gateways import smpp_journal as journal
from casemsg.gateways.base import InboundSms, OutboundSms, SendResult, StatusUpdate
from casemsg.gateways.models import Gateway
from casemsg.gateways.signals import gateway_delivered

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
BUSY_FIRST, BUSY_MAX, BUSY_TRIES = 0.05, 2.0, 10
DELIVERY_BATCH = 500
# Acknowledged submits are gathered this long before their batch is written (smpp_journal).
ACK_GATHER = 0.005
ACK_RETRIES = 30  # a batch the database refused (busy) is tried again this many times, 0.1 s apart
# Part message ids kept per bind to map a later part's receipt to the message's (first part's) id.
PART_IDS = 100_000
# A receipt no message has yet is offered again each second this many times (its send's outcome is being written).
RECEIPT_TRIES = 30
# A bind no `hold` keeps (not a worker's) is unbound after this long without a send.
IDLE_SECONDS = 300.0


class BindDown(Exception):
    """The bind is not up: nothing was submitted."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str
    bind_type: str
    tls: bool
    window: int
    timeout: float
    long_messages: str
    registered_delivery: int
    source: tuple[str, int, int]
    dest_ton: int
    dest_npi: int


class Bind:
    def __init__(self, hub: Hub, gateway_id: int, s: Settings):
        self.hub = hub
        self.gateway_id = gateway_id
        self.s = s
        self.smsc: Any = None  # smpp34.Smsc while bound
        self.client: Any = None
        self.failure = ""  # why the latest bind failed
        self.failures = 0  # consecutive failed binds
        self.attempted = asyncio.Event()  # a bind attempt has finished (bound or failed)
        self.window = asyncio.Semaphore(max(1, s.window))
        self.pause_until = 0.0  # throttled: no submit before this (loop time)
        self.busy_delay = BUSY_FIRST
        self.closed = False
        self.parts = codec.Reassembly()
        self.part_ids: OrderedDict[str, str] = OrderedDict()
        self.pending: list[StatusUpdate | InboundSms] = []
        self.receipt_tries: dict[str, int] = {}
        self.flushing = False
        self.flush_task: asyncio.Task[None] | None = None
        self.task = asyncio.get_running_loop().create_task(self.supervise())

    # --- the session ---------------------------------------------------------------------------------
    async def supervise(self) -> None:
        backoff = BACKOFF_FIRST
        while not self.closed:
            try:
                await self.connect()
            except (smpp34.SmppError, OSError, TimeoutError, netguard.BlockedAddress) as exc:
                self.failures += 1
                self.failure = netguard.excerpt(f"bind to {self.s.host}:{self.s.port} failed: {exc}", 200)
                log.warning("smpp gateway %s: %s", self.gateway_id, self.failure)
                self.attempted.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            self.failures, self.failure = 0, ""
            self.attempted.set()
            await self.read()
            self.smsc = None
            self.attempted.clear()
            if self.client is not None:
                try:
                    await self.client.stop()
                except smpp34.SmppError:
                    pass

    async def connect(self) -> None:
        s = self.s
        await asyncio.to_thread(codec.check_host, s.host, s.port)
        self.client = smpp34.Client(
            host=s.host,
            port=s.port,
            system_id=s.system_id,
            password=s.password,
            bind_type=s.bind_type,
            system_type=s.system_type,
            tls=s.tls,
            window_size=max(1, s.window),
            connect_timeout_ms=int(s.timeout * 1000),
        )
        self.smsc = await asyncio.wait_for(self.client.connect(), s.timeout + 1)

    async def session(self) -> Any:
        """The bound session; waits for a bind in progress when the last one did not fail."""
        if self.smsc is None and self.failures == 0:
            try:
                await asyncio.wait_for(self.attempted.wait(), self.s.timeout + 2)
            except TimeoutError:
                pass
        if self.smsc is None:
            raise BindDown(self.failure or f"not bound to {self.s.host}:{self.s.port}")
        return self.smsc

    # --- outbound --------------------------------------------------------------------------------------
    async def send(self, msg: OutboundSms, known: tuple[int, dict[int, str]] | None = None) -> SendResult:
        """Submit a message's parts in order; `known`: its parts acknowledged at an earlier attempt (parts,
        {part: id}), not submitted again."""
        parts = codec.encode_parts(msg.text, self.s.long_messages, msg.message_id)
        total = len(parts)
        done = known[1] if known is not None and known[0] == total else {}
        ids: list[str] = []
        source = self.s.source
        if msg.sender:
            addr = msg.sender.lstrip("+")
            source = (addr, source[1], source[2]) if addr.isdigit() else (addr, 5, 0)
        for i, part in enumerate(parts):
            n = i + 1
            if n in done:  # acknowledged at an earlier attempt: the SMSC has it
                ids.append(done[n])
                continue
            try:
                status, pid = await self.submit(msg, part, source)
            except BindDown as exc:
                if ids:  # a part went: the message cannot move to another gateway (it would send that part twice)
                    return SendResult(msg.message_id, "retry", error=errors.GATEWAY_ERROR, detail=str(exc))
                return SendResult(msg.message_id, "retry", error=errors.GATEWAY_ERROR, detail=str(exc), not_taken=True)
            except (smpp34.SmppError, TimeoutError, OSError) as exc:
                detail = f"No submit_sm_resp for part {n} of {total} ({exc}): the SMSC may have it; submitted again"
                return SendResult(
                    msg.message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail, outcome_unknown=True
                )
            if status != codec.ESME_ROK:
                r = codec.classify_status(msg.message_id, status)
                if total > 1:
                    r.detail = f"part {n} of {total}: {r.detail}"
                return r
            self.hub.ack(msg.message_id, n, total, pid)
            ids.append(pid)
        for pid in ids[1:]:
            self.part_ids[pid] = ids[0]
        while len(self.part_ids) > PART_IDS:
            self.part_ids.popitem(last=False)
        return SendResult(msg.message_id, "sent", provider_id=ids[0])

    async def submit(self, msg: OutboundSms, part: codec.Part, source: tuple[str, int, int]) -> tuple[int, str]:
        """Submit one part; a busy SMSC pauses the bind and the part is submitted again."""
        loop = asyncio.get_running_loop()
        tries = 0
        while True:
            wait = self.pause_until - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            tlvs = []
            if part.sar is not None:
                ref, total, seq = part.sar
                tlvs = [
                    smpp34.Tlv(codec.TLV_SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
                    smpp34.Tlv(codec.TLV_SAR_TOTAL_SEGMENTS, bytes([total])),
                    smpp34.Tlv(codec.TLV_SAR_SEGMENT_SEQNUM, bytes([seq])),
                ]
            async with self.window:
                # the session is taken inside the window: a submit waiting for a slot when the line went
                # waits for the rebind instead of being written to a dead session
                smsc = await self.session()
                try:
                    resp = await self.submit_on(smsc, msg, part, source, tlvs)
                except (smpp34.SmppError, TimeoutError, OSError):
                    if self.smsc is smsc:  # no answer: this session is gone; the supervisor rebinds
                        self.smsc = None
                        self.attempted.clear()
                    raise
            status = int(resp.command_status)
            if status in codec.BUSY and tries < BUSY_TRIES:
                tries += 1
                self.pause_until = max(self.pause_until, loop.time() + self.busy_delay)
                self.busy_delay = min(self.busy_delay * 2, BUSY_MAX)
                continue
            if status == codec.ESME_ROK:
                self.busy_delay = BUSY_FIRST
            return status, str(resp.message_id or "")

    async def submit_on(
        self, smsc: Any, msg: OutboundSms, part: codec.Part, source: tuple[str, int, int], tlvs: list[Any]
    ) -> Any:
        # asyncio.timeout, not wait_for: wait_for wraps every submit in a task of its own (profiled: a
        # measurable share of the bind's time per message at thousands of submits a second)
        async with asyncio.timeout(self.s.timeout):
            return await smsc.submit_sm(
                msg.to,
                part.short_message,
                source_addr=source[0],
                source_addr_ton=source[1],
                source_addr_npi=source[2],
                dest_addr_ton=self.s.dest_ton,
                dest_addr_npi=self.s.dest_npi,
                esm_class=part.esm_class,
                data_coding=part.data_coding,
                registered_delivery=self.s.registered_delivery,
                tlvs=tlvs,
            )

    # --- inbound: receipts and MO ---------------------------------------------------------------------------
    async def read(self) -> None:
        smsc = self.smsc
        while True:
            ev = await smsc.next()
            if not isinstance(ev, smpp34.DeliverSmEvent):
                return  # Disconnected
            item = codec.read_deliver_sm(
                ev.source_addr,
                ev.destination_addr,
                ev.esm_class,
                ev.data_coding,
                bytes(ev.short_message),
                {t.tag: bytes(t.value) for t in ev.tlvs},
                self.parts,
            )
            if item is None:
                continue
            if isinstance(item, StatusUpdate):
                item.provider_id = self.part_ids.get(item.provider_id, item.provider_id)
            self.pending.append(item)
            if not self.flushing:
                self.flushing = True
                self.flush_task = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        try:
            while self.pending:
                await asyncio.sleep(0.01)  # gather what arrives together
                batch, self.pending = self.pending[:DELIVERY_BATCH], self.pending[DELIVERY_BATCH:]
                statuses = [x for x in batch if isinstance(x, StatusUpdate)]
                inbound = [x for x in batch if isinstance(x, InboundSms)]
                unmatched = await asyncio.get_running_loop().run_in_executor(
                    self.hub.db, _deliver, self.gateway_id, statuses, inbound
                )
                for u in statuses:
                    if u.provider_id in unmatched:
                        self.later(u)
        except Exception:  # noqa: BLE001 — a delivery that failed is logged; the bind must keep reading
            log.exception("smpp gateway %s: storing receipts and MO failed", self.gateway_id)
        finally:
            self.flushing = False

    def later(self, u: StatusUpdate) -> None:
        """A receipt that overtook the write of its send's outcome: offered again every second, for a while."""
        tries = self.receipt_tries.pop(u.provider_id, 0) + 1
        if tries > RECEIPT_TRIES:
            log.info("smpp gateway %s: no message has provider id %s; receipt dropped", self.gateway_id, u.provider_id)
            return
        self.receipt_tries[u.provider_id] = tries

        def again() -> None:
            self.pending.append(u)
            if not self.flushing:
                self.flushing = True
                self.flush_task = asyncio.get_running_loop().create_task(self.flush())

        asyncio.get_running_loop().call_later(1.0, again)

    async def close(self) -> None:
        self.closed = True
        self.task.cancel()
        if self.flush_task is not None:
            self.flush_task.cancel()
        try:
            if self.smsc is not None:
                await asyncio.wait_for(self.smsc.unbind(), 2)
        except (smpp34.SmppError, TimeoutError, OSError):
            pass
        if self.client is not None:
            try:
                await asyncio.wait_for(self.client.stop(), 2)
            except (smpp34.SmppError, TimeoutError, OSError):
                pass


def _deliver(gateway_id: int, statuses: list[StatusUpdate], inbound: list[InboundSms]) -> set[str]:
    """On the hub's database thread: announce what the bind received (the gateway row read fresh). Returns
    the provider ids of receipts no message has yet."""
    unmatched: set[str] = set()
    try:
        gateway = Gateway.objects.filter(pk=gateway_id).first()
        if gateway is not None:
            for _receiver, answer in gateway_delivered.send(
                Gateway, gateway=gateway, statuses=statuses, inbound=inbound
            ):
                if isinstance(answer, list):
                    unmatched.update(answer)
    finally:
        connections.close_all()
    return unmatched


class Hub:
    """The process's binds and the event loop they live on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.binds: dict[int, Bind] = {}
        self.db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="smpp-deliveries")
        # the journal of acknowledged submits on a thread of its own: a send never waits behind receipts
        self.journal = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="smpp-journal")
        self.reads = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="smpp-journal-reads")
        self.held: set[int] = set()  # gateways bound by `hold` (a worker's): kept however idle
        self.acks: list[journal.Ack] = []  # acknowledged submits not yet written
        self.ack_writer: asyncio.Task[None] | None = None
        self.used: dict[int, float] = {}  # gateway id → when it last sent (loop time)
        self.thread = threading.Thread(target=self.loop.run_forever, name="smpp-binds", daemon=True)
        self.thread.start()
        self.janitor = asyncio.run_coroutine_threadsafe(self.unbind_idle(), self.loop)

    # --- the journal of acknowledged submits ---------------------------------------------------------
    def ack(self, message_id: int, part: int, parts: int, provider_id: str) -> None:
        """A submit_sm_resp ESME_ROK: journaled with those arriving within ACK_GATHER (one statement)."""
        self.acks.append((message_id, part, parts, provider_id))
        if self.ack_writer is None:
            self.ack_writer = self.loop.create_task(self.write_acks())

    async def write_acks(self) -> None:
        failures = 0
        try:
            while self.acks:
                await asyncio.sleep(ACK_GATHER if not failures else 0.1)
                batch, self.acks = self.acks, []
                try:
                    await self.loop.run_in_executor(self.journal, journal.record, batch)
                    failures = 0
                except Exception as exc:  # noqa: BLE001 — a journal write that failed leaves those as unknown, no worse
                    failures += 1
                    if failures <= ACK_RETRIES:  # the database is busy (SQLite's one writer): again with the next
                        self.acks = batch + self.acks
                        continue
                    log.warning("smpp: journaling %d acknowledged submits failed: %s", len(batch), exc)
                    failures = 0
        finally:
            self.ack_writer = None

    async def known_parts(self, msgs: list[OutboundSms]) -> dict[int, tuple[int, dict[int, str]]]:
        """The parts of these messages acknowledged at an earlier attempt (one query, on the database thread)."""
        try:
            return await self.loop.run_in_executor(self.reads, journal.acked_parts, [m.message_id for m in msgs])
        except Exception as exc:  # noqa: BLE001 — without the journal, a message is submitted whole, as before it
            log.warning("smpp: reading the journal of acknowledged submits failed: %s", exc)
            return {}

    async def unbind_idle(self) -> None:
        """A bind nobody holds (made by a web process's test message, say) is unbound after IDLE_SECONDS
        without a send, so that only workers keep binds; and the journal forgets old acknowledgements."""
        while True:
            await asyncio.sleep(IDLE_SECONDS / 4)
            try:
                await self.loop.run_in_executor(self.journal, journal.prune)
            except Exception as exc:  # noqa: BLE001 — pruning is housekeeping; the next round tries again
                log.warning("smpp: pruning the journal failed: %s", exc)
            now = self.loop.time()
            for gid, b in list(self.binds.items()):
                if gid not in self.held and now - self.used.get(gid, now) > IDLE_SECONDS:
                    del self.binds[gid]
                    await b.close()

    def bind(self, gateway_id: int, s: Settings) -> Bind:
        """On the hub's loop: the gateway's bind, a new one when its settings changed."""
        b = self.binds.get(gateway_id)
        if b is not None and b.s != s:
            self.loop.create_task(b.close())
            b = None
        if b is None:
            b = self.binds[gateway_id] = Bind(self, gateway_id, s)
        return b

    async def send(self, gateway_id: int, s: Settings, msgs: list[OutboundSms]) -> list[SendResult]:
        b = self.bind(gateway_id, s)
        self.used[gateway_id] = self.loop.time()
        known = await self.known_parts(msgs)
        return list(await asyncio.gather(*(b.send(m, known.get(m.message_id)) for m in msgs)))

    async def close(self) -> None:
        self.janitor.cancel()
        binds, self.binds = list(self.binds.values()), {}
        await asyncio.gather(*(b.close() for b in binds))
        if self.ack_writer is not None:
            self.ack_writer.cancel()
        if self.acks:  # what was acknowledged is written before the process goes
            batch, self.acks = self.acks, []
            try:
                await self.loop.run_in_executor(self.journal, journal.record, batch)
            except Exception as exc:  # noqa: BLE001 — as in write_acks
                log.warning("smpp: journaling %d acknowledged submits failed: %s", len(batch), exc)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.close(), self.loop).result(5)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        for pool in (self.db, self.journal, self.reads):
            try:  # the database threads' connections go with them (a test database can then be dropped)
                pool.submit(connections.close_all).result(5)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            pool.shutdown(wait=True)


_hub: Hub | None = None
_hub_lock = threading.Lock()


def hub() -> Hub:
    global _hub
    with _hub_lock:
        if _hub is None or not _hub.thread.is_alive():
            _hub = Hub()
        return _hub


@atexit.register
def shutdown() -> None:
    """Unbind everything and stop the hub (at exit; tests call it between tests)."""
    global _hub
    with _hub_lock:
        h, _hub = _hub, None
    if h is not None:
        h.stop()


def settings_of(gateway: Gateway) -> Settings:
    c = gateway.config or {}

    def num(key: str, default: int) -> int:
        try:
            v = c.get(key)
            return int(float(v)) if v not in (None, "") else default
        except (TypeError, ValueError):
            return default

    addr = str(c.get("source_addr") or "").lstrip("+")
    alpha = bool(addr) and not addr.isdigit()
    return Settings(
        host=str(c.get("host") or ""),
        port=num("port", 2775),
        system_id=str(c.get("system_id") or ""),
        password=str(c.get("password") or ""),
        system_type=str(c.get("system_type") or ""),
        bind_type="TX" if str(c.get("bind_mode") or "").lower() == "transmitter" else "TRX",
        tls=bool(c.get("tls")),
        window=num("window", 10),
        timeout=float(num("timeout", 15)),
        long_messages="sar" if str(c.get("long_messages") or "").lower() == "sar" else "udh",
        registered_delivery=0 if c.get("registered_delivery") is False else 1,
        source=(addr, num("source_addr_ton", 5 if alpha else 1), num("source_addr_npi", 0 if alpha else 1)),
        dest_ton=num("dest_addr_ton", 1),
        dest_npi=num("dest_addr_npi", 1),
    )


async def submit(gateway: Gateway, msgs: list[OutboundSms]) -> list[SendResult]:
    """Send through the gateway's bind in this process (made on first use); called on any event loop."""
    h = hub()
    fut = asyncio.run_coroutine_threadsafe(h.send(gateway.pk, settings_of(gateway), msgs), h.loop)
    return await asyncio.wrap_future(fut)


def hold(gateways: Iterable[Gateway], own: bool = False) -> None:
    """Bind these gateways now (a worker at start), so receipts and MO flow before anything is sent. A
    gateway with `bind_per: process` is bound only by its `casemsg smpp` process (`own`), never by a worker."""
    h = hub()
    gateways = [g for g in gateways if own or str((g.config or {}).get("bind_per") or "").lower() != "process"]

    async def bind_all() -> None:
        for g in gateways:
            h.held.add(g.pk)
            h.bind(g.pk, settings_of(g))

    asyncio.run_coroutine_threadsafe(bind_all(), h.loop).result(5)


def bound(gateway: Gateway) -> bool:
    """Whether this process holds a live bind for the gateway (the gateway page, tests)."""
    b = _hub.binds.get(gateway.pk) if _hub is not None else None
    return b is not None and b.smsc is not None
