"""Receiving inbound SMS: the provider webhook's fast part. A message is stored (cleaned, bounded, its raw
payload kept) and a worker is woken; nothing is routed here (`casemsg.inbound.router` does that later)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from casemsg.consent import services as consent_services
from casemsg.contacts import whatsapp as wa_windows
from casemsg.gateways import cleaning, pools
from casemsg.gateways.base import InboundSms, StatusUpdate
from casemsg.gateways.models import Gateway
from casemsg.inbound.signals import inbound_stored
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.projects.models import Project


def receive(
    gateway: Gateway,
    items: list[InboundSms],
    project: Project | None = None,
    raw: dict[str, Any] | None = None,
    simulated: bool = False,
) -> list[int]:
    """Store inbound messages (duplicates of a provider id are ignored) and queue their processing.

    Values are cleaned and bounded first (gateways.cleaning: no NUL, provider ids ≤ 128, a plausible
    time); a message whose sender is not a phone number is stored, with `raw` (what the provider sent),
    but never processed (INVALID_SENDER). Returns the ids of the new rows. Runs inside the webhook
    request: no routing here. `simulated` (the phone simulator, for `project`): the message speaks for
    that project only (`authority`)."""
    if simulated and project is None:
        raise ValueError("a simulated message belongs to the project that simulated it")
    now = timezone.now()
    ids: list[int] = []
    queued: list[int] = []
    wrote_to: list[tuple[str, str]] = []  # (sender, the number they wrote to): a pool answers from it
    opened: list[tuple[str, datetime]] = []
    said: list[tuple[str, str]] = []
    for item in items:
        clean = cleaning.clean_inbound(item, now)
        pk = _insert_inbound(
            {
                "project_id": project.pk if project is not None else gateway.project_id,
                "direction": Message.IN,
                "channel": "whatsapp" if item.extra.get("channel") == "whatsapp" else "sms",
                "to": clean.sender,
                "text": clean.text,
                "gateway_id": gateway.pk,
                "gateway_name": gateway.name,
                "provider_id": clean.provider_id,
                "status": Message.RECEIVED,
                "error": clean.error,
                "error_detail": clean.problem,
                "created_on": clean.received_on,
                "sent_on": now,
                "next_attempt_on": None if clean.error else now,
                "segments": 0,
                "raw": raw,
                "simulated": simulated,
            }
        )
        if pk is None:
            continue  # a provider retrying its webhook: already stored
        ids.append(pk)
        if not clean.error:
            queued.append(pk)
            if item.to_number and not simulated:
                wrote_to.append((clean.sender, item.to_number))
            if item.extra.get("channel") == "whatsapp" and not simulated:
                opened.append((clean.sender, clean.received_on))
                said.append((clean.sender, clean.text))
    if opened:
        wa_windows.touch(gateway.pk, opened)  # their 24-hour WhatsApp windows open (contacts.whatsapp)
        owner = project.pk if project is not None else gateway.project_id
        if owner is not None:  # (an installation gateway's: the router records it once it knows the project)
            consent_services.record_whatsapp_opt_ins((owner, n, text) for n, text in said)  # WhatsApp's opt-in
    if wrote_to and pools.has_pool(gateway.pk):
        pools.remember_inbound(gateway, wrote_to)
    if queued:
        transaction.on_commit(lambda: inbound_stored.send(Message, ids=queued))
    return ids


def on_gateway_delivered(
    sender: object, gateway: Gateway, statuses: list[StatusUpdate], inbound: list[InboundSms], **kwargs: Any
) -> list[str]:
    """A gateway's own connection (an SMPP bind) brought delivery reports and inbound messages: applied and
    stored exactly as its status and inbound webhooks would (gateways.signals.gateway_delivered). Returns
    the provider ids of reports no message has (yet: a receipt can overtake the write of its send's
    outcome), for the gateway to offer again."""
    unmatched: list[str] = []
    if statuses:
        ids = {u.provider_id for u in statuses if u.provider_id}
        known = set(
            Message.objects.filter(gateway=gateway, provider_id__in=list(ids)).values_list("provider_id", flat=True)
        )
        unmatched = sorted(ids - known)
        pipeline.apply_status_updates(gateway, [u for u in statuses if u.provider_id in known])
    if inbound:
        with transaction.atomic():
            receive(gateway, inbound)
    return unmatched


class _InboundInsert:
    """One prepared INSERT of an inbound row: Django's `Model.save()` builds and prepares the SQL of all
    35 columns for every webhook, which cost more CPU than the rest of the request; here the columns
    and the values every inbound row shares are prepared once per process."""

    def __init__(self) -> None:
        q = connection.ops.quote_name
        self.fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(q(str(f.column)) for f in self.fields)
        self.sql = (
            f"INSERT INTO {q(Message._meta.db_table)} ({columns}) "
            f"VALUES ({', '.join(['%s'] * len(self.fields))}) RETURNING {q(str(Message._meta.pk.column))}"
        )
        self.defaults = {f.attname: f.get_db_prep_save(f.get_default(), connection) for f in self.fields}

    def values(self, row: dict[str, Any]) -> list[Any]:
        out = []
        for f in self.fields:
            if f.attname in row:
                out.append(f.get_db_prep_save(row[f.attname], connection))
            else:
                out.append(self.defaults[f.attname])
        return out


_inbound_insert: dict[str, _InboundInsert] = {}


def _insert_inbound(row: dict[str, Any]) -> int | None:
    """INSERT one inbound row; its id, or None when the provider's message id is stored already."""
    ins = _inbound_insert.get(connection.vendor)
    if ins is None:
        ins = _inbound_insert[connection.vendor] = _InboundInsert()
    params = ins.values(row)
    try:
        if connection.in_atomic_block:
            # inside a caller's transaction (the sandbox API): a savepoint, so a duplicate spoils nothing
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(ins.sql, params)
                return int(cur.fetchone()[0])
        # the webhook: one statement in autocommit, so SQLite's write lock is held for one INSERT only
        with connection.cursor() as cur:
            cur.execute(ins.sql, params)
            return int(cur.fetchone()[0])
    except IntegrityError:
        return None
