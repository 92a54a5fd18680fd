"""The WhatsApp 24-hour window, per person and business number.

WhatsApp lets a business send free text only within 24 hours of the person's last message to that
business number; outside it only an approved template goes. casemsg tracks it rather than leaving it to
the program: every inbound WhatsApp message (its provider timestamp, else the time of arrival) opens or
extends the window of (its gateway, its sender) — `touch`, called by the inbound webhook in the same
request that stores the message. The send path reads it per batch (`windows`), the contact status shows
`whatsapp.window_open_until` (`open_until_by_number`).

It lives in `contacts` because it is a fact about a contact's number (like its opt-out), read by the
contact status below the pipeline; the decision it feeds is the pipeline's (`casemsg.messaging.whatsapp`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max, Q

from casemsg.contacts.models import WhatsAppWindow

WINDOW = timedelta(hours=24)


def touch(gateway_id: int, items: Iterable[tuple[str, datetime]]) -> None:
    """The person (number) wrote to the business number (gateway) at that time: the window opens or
    extends (never moves back: a late retry of an older webhook changes nothing). A few queries per call."""
    latest: dict[str, datetime] = {}
    for number, at in items:
        if number and (number not in latest or at > latest[number]):
            latest[number] = at
    if not latest:
        return
    with transaction.atomic():
        rows = {
            w.phone_number: w
            for w in WhatsAppWindow.objects.select_for_update().filter(gateway_id=gateway_id, phone_number__in=latest)
        }
        new = []
        changed = []
        for number, at in latest.items():
            w = rows.get(number)
            if w is None:
                new.append(WhatsAppWindow(gateway_id=gateway_id, phone_number=number, last_inbound_on=at))
            elif w.last_inbound_on is None or at > w.last_inbound_on or w.not_on_whatsapp_on is not None:
                w.last_inbound_on = max(at, w.last_inbound_on) if w.last_inbound_on else at
                w.not_on_whatsapp_on = None  # they wrote from it: it is on WhatsApp
                changed.append(w)
        WhatsAppWindow.objects.bulk_create(new, ignore_conflicts=True)
        WhatsAppWindow.objects.bulk_update(changed, ["last_inbound_on", "not_on_whatsapp_on"])


def not_on_whatsapp(gateway_id: int, numbers: Iterable[str], at: datetime) -> None:
    """WhatsApp said these numbers cannot be reached (131026 / 63003)."""
    numbers = set(numbers)
    if not numbers:
        return
    existing = set(
        WhatsAppWindow.objects.filter(gateway_id=gateway_id, phone_number__in=numbers).values_list(
            "phone_number", flat=True
        )
    )
    WhatsAppWindow.objects.filter(gateway_id=gateway_id, phone_number__in=numbers).update(not_on_whatsapp_on=at)
    WhatsAppWindow.objects.bulk_create(
        [WhatsAppWindow(gateway_id=gateway_id, phone_number=n, not_on_whatsapp_on=at) for n in numbers - existing],
        ignore_conflicts=True,
    )


def windows(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], WhatsAppWindow]:
    """The windows of these (gateway id, number) pairs that exist: one query."""
    pairs = set(pairs)
    if not pairs:
        return {}
    gateway_ids = {g for g, _n in pairs}
    numbers = {n for _g, n in pairs}
    rows = WhatsAppWindow.objects.filter(gateway_id__in=gateway_ids, phone_number__in=numbers)
    return {(w.gateway_id, w.phone_number): w for w in rows if (w.gateway_id, w.phone_number) in pairs}


def open_until(w: WhatsAppWindow | None) -> datetime | None:
    """When the window closes (None: the person never wrote)."""
    return w.last_inbound_on + WINDOW if w is not None and w.last_inbound_on is not None else None


def is_open(w: WhatsAppWindow | None, now: datetime) -> bool:
    until = open_until(w)
    return until is not None and until > now


def open_until_by_number(numbers: Iterable[str], gateway_ids: Iterable[int] | None = None) -> dict[str, datetime]:
    """Per number, when its latest window (with any of these gateways, or any) closes: one query."""
    numbers = set(numbers)
    if not numbers:
        return {}
    qs = WhatsAppWindow.objects.filter(phone_number__in=numbers, last_inbound_on__isnull=False)
    if gateway_ids is not None:
        qs = qs.filter(gateway_id__in=list(gateway_ids))
    rows = qs.values("phone_number").annotate(last=Max("last_inbound_on"))
    return {r["phone_number"]: r["last"] + WINDOW for r in rows}


def open_until_by_project(numbers: Iterable[str], project_ids: Iterable[int]) -> dict[tuple[str, int | None], datetime]:
    """Per (number, gateway's project: one of these, or None for the installation's gateways), when the
    latest window closes: one query. A project never sees another project's windows."""
    numbers = set(numbers)
    if not numbers:
        return {}
    rows = (
        WhatsAppWindow.objects.filter(phone_number__in=numbers, last_inbound_on__isnull=False)
        .filter(Q(gateway__project_id__in=list(project_ids)) | Q(gateway__project__isnull=True))
        .values("phone_number", "gateway__project_id")
        .annotate(last=Max("last_inbound_on"))
    )
    return {(r["phone_number"], r["gateway__project_id"]): r["last"] + WINDOW for r in rows}
