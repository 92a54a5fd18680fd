"""`bind_per: process`: one `casemsg smpp` process holds a gateway's only bind and submits for every worker.

Some operators allow a single bind per account. Workers then must not bind themselves (each worker process
would open one): a gateway whose config says `bind_per: process` is sent through a handoff table
(`carrier.SmppHandoff`) instead:

- a worker (`submit`, the gateway type's send) writes its window's messages there, pending, and waits for
  their outcomes, reading the rows back every few milliseconds;
- the `casemsg smpp` process (`serve`) takes pending rows (a conditional UPDATE, so two such processes
  never take one row), submits them on its bind exactly as a worker's bind would (window, throttling,
  receipts, MO, the journal of acknowledged submits: casemsg.gateways.smpp_bind), and writes each outcome
  back;
- rows no process took within WAIT_UNTAKEN are withdrawn by the worker (a conditional DELETE, so a row is
  either taken or withdrawn, never both): those messages certainly did not reach the SMSC (`not_taken`: the
  route's next gateway may take them); a row taken but never answered is an unknown outcome
  (`outcome_unknown`), retried on the same gateway and marked, as on a worker's own bind.

The database is the queue: a worker killed while waiting leaves its rows to the smpp process, whose
acknowledged submits are journaled, so the sweeper settles those messages as sent (smpp_journal).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from casemsg.core import errors
from casemsg.gateways import smpp_bind
from casemsg.gateways.base import OutboundSms, SendResult
from casemsg.gateways.carrier.models import SmppHandoff
from casemsg.gateways.models import Gateway

log = logging.getLogger(__name__)

WAIT_UNTAKEN = 3.0  # seconds a worker waits for a `casemsg smpp` process to take its messages
POLL_FIRST, POLL_MAX = 0.002, 0.02  # a worker reads its rows back this often (doubling)
TAKE = 500  # rows the smpp process takes at once
IN_FLIGHT = 2000  # rows the smpp process holds unanswered at most
IDLE_WAIT = 0.005  # the smpp process looks for pending rows this often when idle

_db = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="smpp-handoff")


def by_process(gateway: Gateway) -> bool:
    """Whether the gateway's bind is held by a `casemsg smpp` process rather than by each worker."""
    return str((gateway.config or {}).get("bind_per") or "").lower() == "process"


# --- the worker's side ----------------------------------------------------------------------------------
def _hand_over(gateway_id: int, msgs: list[OutboundSms]) -> list[int]:
    now = timezone.now()
    rows = [
        SmppHandoff(
            gateway_id=gateway_id,
            message_id=m.message_id,
            to=m.to,
            text=m.text,
            sender=m.sender,
            segments=m.segments,
            created_on=now,
        )
        for m in msgs
    ]
    with transaction.atomic():
        SmppHandoff.objects.bulk_create(rows)
        # bulk_create sets pks on PostgreSQL and SQLite ≥ 3.35 (RETURNING)
        return [r.pk for r in rows]


def _read_back(ids: list[int]) -> list[tuple[int, int, int, Any]]:
    return list(SmppHandoff.objects.filter(pk__in=ids).values_list("pk", "message_id", "state", "result"))


def _withdraw(ids: list[int]) -> set[int]:
    """Delete those rows still pending (no process took them); returns the ids withdrawn."""
    with transaction.atomic():
        pending = set(SmppHandoff.objects.filter(pk__in=ids, state=SmppHandoff.PENDING).values_list("pk", flat=True))
        SmppHandoff.objects.filter(pk__in=pending, state=SmppHandoff.PENDING).delete()
    return pending


def _forget(ids: list[int]) -> None:
    SmppHandoff.objects.filter(pk__in=ids).delete()


def _result(message_id: int, r: dict[str, Any]) -> SendResult:
    return SendResult(
        message_id,
        str(r.get("status") or "retry"),
        provider_id=str(r.get("provider_id") or ""),
        error=r.get("error"),
        detail=str(r.get("detail") or ""),
        not_taken=bool(r.get("not_taken")),
        outcome_unknown=bool(r.get("outcome_unknown")),
    )


async def submit(gateway: Gateway, msgs: list[OutboundSms]) -> list[SendResult]:
    """Hand the messages to the `casemsg smpp` process holding the gateway's bind and wait for their outcomes."""
    loop = asyncio.get_running_loop()
    ids = await loop.run_in_executor(_db, _hand_over, gateway.pk, msgs)
    row_of = dict(zip(ids, (m.message_id for m in msgs), strict=True))
    results: dict[int, SendResult] = {}
    started = loop.time()
    # a taken message waits as long as its parts may take on the bind (each part's response timeout)
    timeout = float((gateway.config or {}).get("timeout") or 15)
    give_up = started + WAIT_UNTAKEN + timeout * max((m.segments for m in msgs), default=1) + 5
    poll = POLL_FIRST
    waiting = list(ids)
    withdrawn_checked = False
    while waiting:
        await asyncio.sleep(poll)
        poll = min(poll * 2, POLL_MAX)
        taken = False
        for _pk, mid, state, result in await loop.run_in_executor(_db, _read_back, waiting):
            if state == SmppHandoff.DONE and isinstance(result, dict):
                results[mid] = _result(mid, result)
            elif state == SmppHandoff.TAKEN:
                taken = True
        waiting = [pk for pk in waiting if row_of[pk] not in results]
        if taken:
            poll = POLL_FIRST
        now = loop.time()
        if waiting and not withdrawn_checked and now - started > WAIT_UNTAKEN:
            withdrawn_checked = True
            for pk in await loop.run_in_executor(_db, _withdraw, waiting):
                mid = row_of[pk]
                detail = (
                    f"No casemsg smpp process took it within {WAIT_UNTAKEN:.0f} s "
                    f"(gateway '{gateway.name}' has bind_per: process)"
                )
                results[mid] = SendResult(mid, "retry", error=errors.GATEWAY_ERROR, detail=detail, not_taken=True)
            waiting = [pk for pk in waiting if row_of[pk] not in results]
        if waiting and now > give_up:
            for pk in waiting:
                mid = row_of[pk]
                detail = "The casemsg smpp process took it but gave no outcome: the SMSC may have it; submitted again"
                results[mid] = SendResult(mid, "retry", error=errors.GATEWAY_ERROR, detail=detail, outcome_unknown=True)
            break
    done = [pk for pk in ids if pk not in waiting]
    if done:
        await loop.run_in_executor(_db, _forget, done)
    return [results[m.message_id] for m in msgs]


# --- the `casemsg smpp` process -------------------------------------------------------------------------
def _take(gateway_ids: list[int], token: str, limit: int) -> list[SmppHandoff]:
    ids = list(
        SmppHandoff.objects.filter(gateway_id__in=gateway_ids, state=SmppHandoff.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return []
    SmppHandoff.objects.filter(pk__in=ids, state=SmppHandoff.PENDING).update(state=SmppHandoff.TAKEN, taken_by=token)
    return list(SmppHandoff.objects.filter(pk__in=ids, state=SmppHandoff.TAKEN, taken_by=token))


def _store(done: list[tuple[SmppHandoff, SendResult]]) -> None:
    if not done:
        return
    with transaction.atomic():
        for row, r in done:
            row.state = SmppHandoff.DONE
            row.result = {
                "status": r.status,
                "provider_id": r.provider_id,
                "error": r.error,
                "detail": r.detail,
                "not_taken": r.not_taken,
                "outcome_unknown": r.outcome_unknown,
            }
        SmppHandoff.objects.bulk_update([row for row, _ in done], ["state", "result"])


def serve(gateways: Iterable[Gateway], stop: threading.Event) -> None:
    """Hold the binds of these gateways and submit what workers hand over, until `stop` is set."""
    gws = {g.pk: g for g in gateways}
    if not gws:
        return
    smpp_bind.hold(gws.values(), own=True)
    h = smpp_bind.hub()
    token = f"{socket.gethostname()}:{os.getpid()}"
    in_flight: dict[concurrent.futures.Future[list[SendResult]], list[SmppHandoff]] = {}
    log.info("casemsg smpp: holding %s", ", ".join(g.name for g in gws.values()))
    try:
        while not stop.is_set():
            close_old_connections()
            held = sum(len(rows) for rows in in_flight.values())
            rows = _take(list(gws), token, min(TAKE, IN_FLIGHT - held)) if held < IN_FLIGHT else []
            by_gateway: dict[int, list[SmppHandoff]] = {}
            for row in rows:
                by_gateway.setdefault(row.gateway_id, []).append(row)
            for gid, group in by_gateway.items():
                msgs = [OutboundSms(r.message_id, r.to, r.text, r.segments, sender=r.sender) for r in group]
                fut = asyncio.run_coroutine_threadsafe(h.send(gid, smpp_bind.settings_of(gws[gid]), msgs), h.loop)
                in_flight[fut] = group
            finished = [f for f in in_flight if f.done()]
            done: list[tuple[SmppHandoff, SendResult]] = []
            for f in finished:
                group = in_flight.pop(f)
                try:
                    done.extend(zip(group, f.result(), strict=True))
                except Exception as exc:  # noqa: BLE001 — the bind failed as a whole: each outcome is unknown
                    log.exception("casemsg smpp: a batch failed")
                    detail = f"The smpp process failed while submitting ({exc}); the SMSC may have it"
                    done.extend(
                        (
                            row,
                            SendResult(
                                row.message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail, outcome_unknown=True
                            ),
                        )
                        for row in group
                    )
            _store(done)
            if not rows and not finished:
                stop.wait(IDLE_WAIT)
    finally:
        deadline = time.monotonic() + 10
        while in_flight and time.monotonic() < deadline:  # what is on the wire gets its outcome stored
            for f in [f for f in in_flight if f.done()]:
                group = in_flight.pop(f)
                try:
                    _store(list(zip(group, f.result(), strict=True)))
                except Exception:  # noqa: BLE001 — left taken: the workers count them unknown
                    log.exception("casemsg smpp: storing the last outcomes failed")
            time.sleep(0.01)
        connections.close_all()
