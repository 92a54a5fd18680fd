"""WhatsApp templates: synced from the provider, never edited here.

`sync(gateway)` asks the gateway's provider for its templates (Meta's message_templates, Twilio's
ContentAndApprovals) and makes the gateway's `WhatsAppTemplate` rows equal to the answer in one
transaction: new ones added, changed ones updated (status, category, components, variables), those the
provider no longer lists deleted. It runs on demand (`POST …/whatsapp-templates/sync`) and on a schedule
(the ticker calls `sync_due`). A refused or unanswered list raises `InputError(WHATSAPP_TEMPLATE_SYNC_FAILED)`
and changes nothing.

`approved(pairs)` is the send path's lookup: per (gateway id, name, language) the approved template.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from casemsg.core import errors, netguard
from casemsg.core.errors import InputError
from casemsg.gateways.models import Gateway, WhatsAppTemplate
from casemsg.gateways.registry import adapter_for
from casemsg.gateways.whatsapp import (
    SANDBOX_TYPE,
    WHATSAPP_TYPE_NAMES,
    ProviderTemplate,
    TemplateListError,
    WhatsAppGatewayType,
)

APPROVED = "APPROVED"
SYNC_EVERY = timedelta(hours=1)
TRANSPORT_ERRORS = (TimeoutError, OSError)


def whatsapp_gateways(project_id: int | None) -> list[Gateway]:
    """The WhatsApp gateways a project may send through: its own first, then the installation's."""
    q = Q(project_id=project_id) | Q(project__isnull=True) if project_id else Q(project__isnull=True)
    rows = list(Gateway.objects.filter(q, type__in=WHATSAPP_TYPE_NAMES).order_by("pk"))
    # a sandbox last: a message naming no gateway goes to a real number when the project has one
    return sorted(rows, key=lambda g: (g.type == SANDBOX_TYPE, g.project_id is None, g.pk))


def fetch(gateway: Gateway) -> list[ProviderTemplate]:
    adapter = adapter_for(gateway)
    if not isinstance(adapter, WhatsAppGatewayType):
        raise InputError(
            errors.WHATSAPP_TEMPLATE_SYNC_FAILED, f"Gateway '{gateway.name}' is not a WhatsApp gateway.", 424
        )

    async def run() -> list[ProviderTemplate]:
        async with netguard.make_session(settings.CASEMSG_GATEWAY_ALLOW_PRIVATE, label="Gateway URL") as session:
            return await adapter.list_templates(session)

    try:
        return asyncio.run(run())
    except (TemplateListError, *TRANSPORT_ERRORS) as exc:
        raise InputError(
            errors.WHATSAPP_TEMPLATE_SYNC_FAILED,
            netguard.excerpt(f"Gateway '{gateway.name}': {exc or type(exc).__name__}", 300),
            424,
        ) from exc
    except Exception as exc:  # aiohttp.ClientError and the address guard's refusals
        blocked = netguard.blocked_reason(exc)
        raise InputError(
            errors.WHATSAPP_TEMPLATE_SYNC_FAILED,
            netguard.excerpt(f"Gateway '{gateway.name}': {blocked or type(exc).__name__}: {exc}", 300),
            424,
        ) from exc


def sync(gateway: Gateway, now: datetime | None = None) -> dict[str, int]:
    """Make the gateway's templates equal to the provider's. Returns counts (added, updated, deleted)."""
    listed = fetch(gateway)
    now = now or timezone.now()
    by_key = {(t.name, t.language): t for t in listed if t.name and t.language}
    counts = {"added": 0, "updated": 0, "deleted": 0, "templates": len(by_key)}
    with transaction.atomic():
        stored = {(t.name, t.language): t for t in WhatsAppTemplate.objects.select_for_update().filter(gateway=gateway)}
        gone = [t.pk for k, t in stored.items() if k not in by_key]
        if gone:
            counts["deleted"] = WhatsAppTemplate.objects.filter(pk__in=gone).delete()[0]
        new, changed = [], []
        for key, p in by_key.items():
            row = stored.get(key)
            if row is None:
                row = WhatsAppTemplate(gateway=gateway, name=p.name, language=p.language)
                new.append(row)
            else:
                changed.append(row)
            row.category, row.status, row.provider_id = p.category, p.status, p.provider_id
            row.components, row.body, row.variables, row.synced_on = p.components, p.body, p.variables, now
        WhatsAppTemplate.objects.bulk_create(new)
        WhatsAppTemplate.objects.bulk_update(
            changed, ["category", "status", "provider_id", "components", "body", "variables", "synced_on"]
        )
        counts["added"], counts["updated"] = len(new), len(changed)
    return counts


def sync_due(now: datetime | None = None) -> int:
    """The schedule: sync each WhatsApp gateway whose templates are older than SYNC_EVERY. A provider
    that refuses is tried again next time. Returns how many were synced."""
    now = now or timezone.now()
    done = 0
    for gw in Gateway.objects.filter(type__in=WHATSAPP_TYPE_NAMES):
        last = WhatsAppTemplate.objects.filter(gateway=gw).order_by("-synced_on").values_list("synced_on", flat=True)
        latest = last.first()
        if latest is not None and now - latest < SYNC_EVERY:
            continue
        try:
            sync(gw, now)
            done += 1
        except InputError:
            continue
    return done


def templates_for(project_id: int) -> list[WhatsAppTemplate]:
    """The templates of the project's WhatsApp gateways (its own and the installation's), by name."""
    ids = [g.pk for g in whatsapp_gateways(project_id)]
    return list(
        WhatsAppTemplate.objects.filter(gateway_id__in=ids).select_related("gateway").order_by("name", "language")
    )


def approved(keys: Iterable[tuple[int, str, str]]) -> dict[tuple[int, str, str], WhatsAppTemplate]:
    """Per (gateway id, name, language), its approved template: one query for a batch."""
    keys = set(keys)
    if not keys:
        return {}
    q = Q()
    for gid, name, _lang in keys:
        q |= Q(gateway_id=gid, name=name)
    rows = WhatsAppTemplate.objects.filter(q, status=APPROVED)
    return {(t.gateway_id, t.name, t.language): t for t in rows}
