"""Event webhooks: registering endpoints, signing bodies, and queueing deliveries from the areas' hooks.

Producing an event never sends anything: a receiver inserts delivery rows (one INSERT per batch, in the
transaction of the change it reports), and the deliverer (casemsg.events.deliver) posts them from its own
loop in the worker. So a slow or dead endpoint never delays the send pipeline; the deliverer posts to every
endpoint at once, and a round waits at most CASEMSG_WEBHOOK_TIMEOUT_SECONDS for the slowest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.core import bulk, errors, netguard
from casemsg.core.errors import InputError
from casemsg.events.models import (
    CONSENT_CHANGED,
    EVENTS,
    MESSAGE_INBOUND,
    MESSAGE_STATUS,
    OPTOUT_CHANGED,
    SOURCE_RUN,
    TEST,
    Delivery,
    Endpoint,
)
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.sources.models import Source, SourceRun

log = logging.getLogger(__name__)

MAX_ENDPOINTS = 20  # per project
SIGNATURE_HEADER = "X-Casemsg-Signature"


# --- endpoints -----------------------------------------------------------------------------------
def check_url(url: str) -> str:
    """The URL, or 422 WEBHOOK_URL_NOT_ALLOWED: the gateway URL rules (casemsg.core.netguard)."""
    url = (url or "").strip()
    if len(url) > 2000:
        raise InputError(errors.WEBHOOK_URL_NOT_ALLOWED, "The event webhook URL is longer than 2,000 characters.")
    try:
        netguard.check_url(url, allow_private=settings.CASEMSG_GATEWAY_ALLOW_PRIVATE, label="The event webhook URL")
    except netguard.BlockedAddress as exc:
        raise InputError(errors.WEBHOOK_URL_NOT_ALLOWED, exc.reason, 422) from exc
    return url


def check_events(events: Sequence[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        named = f"'{unknown[0]}' is not an event" if unknown else "No event chosen"
        raise InputError(errors.UNKNOWN_EVENT, f"{named}; choose among {', '.join(EVENTS)}.")
    return [e for e in EVENTS if e in events]  # the catalogue's order, no repeats


def _check_description(description: str) -> str:
    if len(description) > 200:
        raise InputError(errors.VALUE_TOO_LONG, "description is at most 200 characters.")
    return description


def create_endpoint(project: Project, url: str, events: Sequence[str], description: str = "") -> Endpoint:
    """A new endpoint with a fresh secret (the caller shows it once)."""
    url = check_url(url)
    chosen = check_events(events)
    description = _check_description(description)
    with transaction.atomic():
        if Endpoint.objects.filter(project=project).count() >= MAX_ENDPOINTS:
            raise InputError(errors.VALIDATION_ERROR, f"A project has at most {MAX_ENDPOINTS} event webhooks.")
        return Endpoint.objects.create(
            project=project,
            url=url,
            events=chosen,
            description=description,
            secret="whsec_" + secrets.token_hex(24),
            created_on=timezone.now(),
        )


def update_endpoint(
    endpoint: Endpoint,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> Endpoint:
    """Change what is given; all of it or nothing."""
    if url is not None:
        endpoint.url = check_url(url)
    if events is not None:
        endpoint.events = check_events(events)
    if description is not None:
        endpoint.description = _check_description(description)
    if active is not None:
        endpoint.active = active
    endpoint.save(update_fields=["url", "events", "description", "active"])
    return endpoint


def delete_endpoint(endpoint: Endpoint) -> None:
    """Deletes the endpoint and its delivery log."""
    endpoint.delete()


def find_endpoint(project: Project, endpoint_id: int) -> Endpoint:
    endpoint = Endpoint.objects.filter(project=project, pk=endpoint_id).first()
    if endpoint is None:
        raise InputError(errors.WEBHOOK_NOT_FOUND, f"This project has no event webhook {endpoint_id}.", 404)
    return endpoint


# --- the body and its signature -------------------------------------------------------------------
def body(delivery: Delivery, project_slug: str) -> bytes:
    """The JSON body of a delivery: the same bytes at every attempt."""
    doc = {
        "id": f"evt_{delivery.pk}",
        "type": delivery.event,
        "created_on": delivery.created_on.isoformat().replace("+00:00", "Z"),
        "project": project_slug,
        "data": delivery.payload,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, payload: bytes) -> str:
    """The X-Casemsg-Signature value: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, payload: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (docs/webhooks.md has the same code for integrators)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, payload).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


# --- queueing deliveries -------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    project_id: int
    event: str
    subject: str
    data: dict[str, Any]
    message_id: int | None = None


Subscriptions = dict[tuple[int, str], list[int]]


def subscriptions(project_ids: Iterable[int]) -> Subscriptions:
    """{(project id, event): [active endpoint ids subscribed to it]}; one query."""
    subscribed: Subscriptions = {}
    for pk, project_id, chosen in Endpoint.objects.filter(active=True, project_id__in=set(project_ids)).values_list(
        "pk", "project_id", "events"
    ):
        for name in chosen or []:
            subscribed.setdefault((project_id, name), []).append(pk)
    return subscribed


def wanted(subscribed: Subscriptions, event: str) -> bool:
    return any(name == event for _p, name in subscribed)


def queue_events(events: Iterable[Event], subscribed: Subscriptions | None = None, now: datetime | None = None) -> int:
    """One delivery row per event and active endpoint of its project subscribed to it; one query for the
    endpoints (unless given) and one INSERT. Returns the number of rows queued."""
    events = list(events)
    if not events:
        return 0
    if subscribed is None:
        subscribed = subscriptions(e.project_id for e in events)
    if not subscribed:
        return 0
    now = now or timezone.now()
    rows = [
        {
            "endpoint_id": endpoint_id,
            "event": e.event,
            "subject": e.subject,
            "message_id": e.message_id,
            "payload": e.data,
            "created_on": now,
            "next_attempt_utc": now,
        }
        for e in events
        for endpoint_id in subscribed.get((e.project_id, e.event), ())
    ]
    bulk.insert_rows(Delivery, rows)
    return len(rows)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _case_ids(objs: Sequence[Message] | Sequence[ConsentRecord]) -> dict[int, str]:
    """The given case id of each row's case: from the loaded case where the caller has it, else one query
    for the batch."""
    found: dict[int, str] = {}
    missing: set[int] = set()
    for m in objs:
        if m.case_id is None:
            continue
        cached = m._state.fields_cache.get("case")
        if cached is not None:
            found[m.case_id] = cached.case_id
        else:
            missing.add(m.case_id)
    if missing:
        found.update(Case.objects.filter(pk__in=missing).values_list("pk", "case_id"))
    return found


def _utc_text(column: str) -> str:
    """SQL: a datetime column as ISO 8601 UTC text with a Z (NULL stays NULL)."""
    if connection.vendor == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', {column})"


def _status_data_sql() -> str:
    """SQL building a message.status event's data from the stored message row (m) and its case (c)."""
    pairs = [
        ("message_id", "m.id"),
        ("status", "m.status"),
        ("channel", "m.channel"),
        ("to", 'm."to"'),
        ("case_id", "c.case_id"),
        ("mobile_worker_id", "m.worker_id"),
        ("gateway", "NULLIF(m.gateway_name, '')"),
        ("provider_id", "NULLIF(m.provider_id, '')"),
        ("error", "NULLIF(m.error, '')"),
        ("error_detail", "NULLIF(m.error_detail, '')"),
        ("sent_on", _utc_text("m.sent_on")),
        ("delivered_on", _utc_text("m.delivered_on")),
    ]
    build = "jsonb_build_object" if connection.vendor == "postgresql" else "json_object"
    args = ", ".join(f"'{k}', {v}" for k, v in pairs)
    return f"{build}({args})"


def on_statuses_changed(sender: object, *, messages: list[Message], **_kw: object) -> None:
    """message.status: one delivery per message and subscribed endpoint (connected in EventsConfig.ready).

    Called inside the pipeline's write transaction for every stored batch of outcomes, so it costs one
    query for the endpoints and, when some are subscribed, one INSERT … SELECT that builds each event from
    the message rows just written: no per-message Python on the send path."""
    project_ids = {m.project_id for m in messages if m.project_id is not None}
    if not project_ids:
        return
    subscribed = subscriptions(project_ids)
    endpoint_ids = sorted({pk for (_p, name), pks in subscribed.items() if name == MESSAGE_STATUS for pk in pks})
    if not endpoint_ids:
        return
    ids = [m.pk for m in messages if m.project_id is not None]
    _guarded(_insert_status_events, ids, endpoint_ids)


def _guarded(queue: Callable[..., object], *args: object) -> None:
    """Queue events in a savepoint of the caller's transaction: should it fail, the change it reports (a
    batch of send results, a consent) is still stored and the failure logged — an event lost rather than a
    message sent twice."""
    try:
        with transaction.atomic():
            queue(*args)
    except Exception:  # noqa: BLE001 — see above
        log.exception("event webhooks: could not queue events (%s)", getattr(queue, "__name__", queue))


def _insert_status_events(ids: list[int], endpoint_ids: list[int]) -> None:
    now = timezone.now()
    marks = ", ".join(["%s"] * len(ids))
    source = (
        f"{_q(Message._meta.db_table)} m JOIN {_q(Endpoint._meta.db_table)} e ON e.project_id = m.project_id "
        f"LEFT JOIN {_q(Case._meta.db_table)} c ON c.id = m.case_id "
        f"WHERE m.id IN ({marks}) AND e.id IN ({', '.join(['%s'] * len(endpoint_ids))})"
    )
    bulk.insert_select(
        Delivery,
        {"event": MESSAGE_STATUS, "created_on": now, "next_attempt_utc": now},
        {
            "endpoint_id": "e.id",
            "message_id": "m.id",
            "subject": "'message:' || m.id",
            "payload": _status_data_sql(),
        },
        source,
        [*ids, *endpoint_ids],
    )


def on_inbound_received(sender: object, *, ids: list[int], **_kw: object) -> None:
    """message.inbound: sent by the worker after the commit that routed a batch of inbound messages (so the
    payload names the contact), in its own transaction; a failure here is logged and never fails the
    routing."""
    try:
        with transaction.atomic():
            rows = list(
                Message.objects.filter(pk__in=ids, project_id__isnull=False).values(
                    "pk", "project_id", "to", "text", "gateway_name", "created_on", "case__case_id", "worker_id"
                )
            )
            subscribed = subscriptions(r["project_id"] for r in rows)
            if not wanted(subscribed, MESSAGE_INBOUND):
                return
            queue_events(
                [
                    Event(
                        project_id=r["project_id"],
                        event=MESSAGE_INBOUND,
                        subject=f"message:{r['pk']}",
                        message_id=r["pk"],
                        data={
                            "message_id": r["pk"],
                            "from": r["to"],
                            "text": r["text"],
                            "gateway": r["gateway_name"] or None,
                            "received_on": _iso(r["created_on"]),
                            "case_id": r["case__case_id"],
                            "mobile_worker_id": r["worker_id"],
                        },
                    )
                    for r in rows
                ],
                subscribed,
            )
    except Exception:  # noqa: BLE001 — an event lost is better than a provider's webhook failing
        log.exception("event webhooks: could not queue message.inbound for %d messages", len(ids))


_CONSENT_KINDS = {"consent", "refusal", "request", "expired"}


def on_ledger_written(sender: object, *, records: list[ConsentRecord], **_kw: object) -> None:
    """consent.changed (consent, refusal, request, expired) and optout.changed (opt_out, opt_in)."""
    rows = [r for r in records if r.project_id is not None]
    if not rows:
        return
    subscribed = subscriptions(r.project_id for r in rows if r.project_id is not None)
    if not subscribed:
        return
    case_ids = _case_ids(rows)
    events = []
    for r in rows:
        assert r.project_id is not None
        data = {
            "phone_number": r.phone_number,
            "kind": r.kind,
            "source": r.source,
            "contact": r.contact_label or None,
            "case_id": case_ids.get(r.case_id) if r.case_id is not None else None,
            "mobile_worker_id": r.worker_id,
            "recorded_by": r.recorded_by or None,
            "created_on": _iso(r.created_on),
        }
        if r.kind in ("opt_out", "opt_in"):
            data["opted_out"] = r.kind == "opt_out"
            events.append(Event(r.project_id, OPTOUT_CHANGED, f"number:{r.phone_number}", data))
        elif r.kind in _CONSENT_KINDS:
            events.append(Event(r.project_id, CONSENT_CHANGED, f"number:{r.phone_number}", data))
    _guarded(queue_events, events, subscribed)


def on_source_run(sender: object, *, source: Source, run: SourceRun, **_kw: object) -> None:
    """source.run: a case source's run ended (inside the transaction that records its end)."""
    data = {
        "source_id": source.pk,
        "source": source.name,
        "type": source.type,
        "run_id": run.pk,
        "kind": run.kind,
        "trigger": run.trigger,
        "status": run.status,
        "started_on": _iso(run.started_on),
        "finished_on": _iso(run.finished_on),
        "pages": run.pages,
        "records": run.records,
        "created": run.created,
        "updated": run.updated,
        "closed": run.closed,
        "unchanged": run.unchanged,
        "skipped": run.skipped,
        "watermark_before": _iso(run.watermark_before),
        "watermark_after": _iso(run.watermark_after),
        "error": run.error or None,
        "error_detail": run.error_detail or None,
    }
    _guarded(queue_events, [Event(source.project_id, SOURCE_RUN, f"source:{source.pk}", data)])


def queue_test(endpoint: Endpoint) -> Delivery:
    """A `test` event for this endpoint only (its own subject, so it waits for nothing)."""
    now = timezone.now()
    return Delivery.objects.create(
        endpoint=endpoint,
        event=TEST,
        subject=f"test:{secrets.token_hex(8)}",
        payload={"message": "A test event from casemsg.", "endpoint_id": endpoint.pk},
        created_on=now,
        next_attempt_utc=now,
    )
