"""Configuring gateways and routes (CLI and API both call these)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction

from casemsg.core import errors, netguard
from casemsg.core.errors import InputError
from casemsg.gateways import failover, pools, smpp_bind, whatsapp_templates
from casemsg.gateways.base import GatewayType
from casemsg.gateways.carrier.models import PoolNumber, RouteGateway
from casemsg.gateways.models import Gateway, GatewayRoute
from casemsg.gateways.registry import gateway_types
from casemsg.projects.models import Project

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def add_gateway(
    name: str,
    type_name: str,
    config: dict | None = None,
    project: Project | None = None,
    rate_limit: int = 0,
    countries: list[str] | None = None,
    max_segments: int = 10,
) -> Gateway:
    if not _NAME.match(name or ""):
        raise InputError(errors.INVALID_GATEWAY_NAME, "A gateway name is 1–64 letters, digits, '.', '_' or '-'.")
    types = gateway_types()
    if type_name not in types:
        raise InputError(
            errors.UNKNOWN_GATEWAY_TYPE, f"Unknown gateway type '{type_name}'; use one of {', '.join(types)}."
        )
    if not isinstance(config or {}, dict):
        raise InputError(errors.INVALID_GATEWAY_CONFIG, "config must be a JSON object.")
    types[type_name].validate_config(config or {})
    check_urls(types[type_name], config or {})
    regions = _checked_limits(rate_limit, countries, max_segments)
    # Only the same project's names (or, for an installation gateway, the installation's) can be in the
    # way: the answer never tells one project the names of another's gateways.
    taken = (
        f"This project already has a gateway named '{name}'."
        if project is not None
        else (f"The installation already has a gateway named '{name}'.")
    )
    if Gateway.objects.filter(project=project, name=name).exists():
        raise InputError(errors.GATEWAY_EXISTS, taken, 409)
    try:
        with transaction.atomic():
            return Gateway.objects.create(
                name=name,
                type=type_name,
                config=config or {},
                project=project,
                rate_limit=rate_limit,
                countries=regions,
                max_segments=max_segments,
            )
    except IntegrityError as exc:  # the same name added at the same moment
        raise InputError(errors.GATEWAY_EXISTS, taken, 409) from exc


MAX_RATE_LIMIT = 100_000  # segments per second
MAX_SEGMENTS = 255


def _checked_limits(rate_limit: int, countries: list[str] | None, max_segments: int) -> list[str]:
    """The countries as stored (upper-case ISO codes), once the limits are checked."""
    # (upper bounds: what the columns hold, and far beyond any provider's real limits)
    if not 0 <= rate_limit <= MAX_RATE_LIMIT or not 1 <= max_segments <= MAX_SEGMENTS:
        raise InputError(
            errors.VALIDATION_ERROR,
            f"rate_limit must be 0 to {MAX_RATE_LIMIT} and max_segments 1 to {MAX_SEGMENTS}.",
        )
    regions = [c.strip().upper() for c in countries or [] if c.strip()]
    unknown = [c for c in regions if c not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise InputError(
            errors.VALIDATION_ERROR, f"Unknown country codes: {', '.join(unknown)} (use ISO codes like KE)."
        )
    return regions


def update_gateway(
    gateway: Gateway, config: dict[str, Any], rate_limit: int, countries: list[str] | None, max_segments: int
) -> Gateway:
    """Change a gateway's config and limits, checked like a new gateway's; its name and type stay."""
    regions = _checked_limits(rate_limit, countries, max_segments)
    with transaction.atomic():
        set_config(gateway, config)
        gateway.rate_limit, gateway.countries, gateway.max_segments = rate_limit, regions, max_segments
        gateway.save(update_fields=["rate_limit", "countries", "max_segments"])
    return gateway


def check_urls(gateway_type: type[GatewayType], config: Mapping[str, Any]) -> None:
    """Refuse a config whose URLs (the keys its type marks `url`) reach an internal address, unless the
    installation allows them (CASEMSG_GATEWAY_ALLOW_PRIVATE): 422 GATEWAY_URL_NOT_ALLOWED naming the host,
    the address and why. Names are resolved; the transport checks again at send time (DNS may change)."""
    for key in gateway_type.url_keys():
        value = config.get(key)
        if not value:
            continue
        try:
            netguard.check_url(
                str(value), allow_private=settings.CASEMSG_GATEWAY_ALLOW_PRIVATE, label=f"The gateway's {key}"
            )
        except netguard.BlockedAddress as exc:
            raise InputError(errors.GATEWAY_URL_NOT_ALLOWED, exc.reason, 422) from exc


def set_config(gateway: Gateway, config: dict[str, Any]) -> Gateway:
    """Replace a gateway's config, checked like a new gateway's (schema, then URLs)."""
    if not isinstance(config, dict):
        raise InputError(errors.INVALID_GATEWAY_CONFIG, "config must be a JSON object.")
    types = gateway_types()
    if gateway.type not in types:
        raise InputError(errors.UNKNOWN_GATEWAY_TYPE, f"Unknown gateway type '{gateway.type}'.")
    types[gateway.type].validate_config(config)
    check_urls(types[gateway.type], config)
    gateway.config = config
    gateway.save(update_fields=["config"])
    return gateway


def delete_gateway(project: Project, name: str) -> bool:
    """Delete the project's own gateway of this name (its routes go with it; its messages keep the name);
    False when the project has none."""
    deleted, _ = Gateway.objects.filter(project=project, name=name).delete()
    return bool(deleted)


def find_gateway(name: str, project: Project | None) -> Gateway | None:
    """The gateway a name stands for in a project: the project's own of that name, else the installation's
    (for project None: the installation's only). Never another project's."""
    if project is not None:
        own = Gateway.objects.filter(name=name, project=project).first()
        if own is not None:
            return own
    return Gateway.objects.filter(name=name, project__isnull=True).first()


def map_prefix(
    prefix: str, gateway: str | Gateway, project: Project | None = None, then: Sequence[str | Gateway] = ()
) -> GatewayRoute:
    """Route numbers starting with `prefix` (digits, or `*` for all) to a gateway — given by name (the
    project's own first, else the installation's: `find_gateway`) or as a row the project may use —, and
    `then` to further gateways in order (failover: a message its gateway certainly did not take moves to
    the next; casemsg.gateways.failover); replaces a route."""
    prefix = (prefix or "").strip().lstrip("+")
    if prefix != "*" and not prefix.isdigit():
        raise InputError(errors.INVALID_PREFIX, "A prefix is digits (country code first, e.g. 254) or '*'.")
    chain: list[Gateway] = []
    for g in (gateway, *then):
        gw = find_gateway(g, project) if isinstance(g, str) else g
        if gw is None or gw.project_id not in (None, project.pk if project is not None else None):
            name = g if isinstance(g, str) else g.name
            raise InputError(errors.GATEWAY_NOT_FOUND, f"No gateway named '{name}'.", 404)
        if any(c.pk == gw.pk for c in chain):
            raise InputError(errors.INVALID_GATEWAY_CONFIG, f"A route lists gateway '{gw.name}' once.")
        chain.append(gw)
    with transaction.atomic():
        GatewayRoute.objects.filter(project=project, prefix=prefix).delete()
        route = GatewayRoute.objects.create(prefix=prefix, gateway=chain[0], project=project)
        RouteGateway.objects.bulk_create(
            [RouteGateway(route=route, gateway=gw, position=i) for i, gw in enumerate(chain[1:], 1)]
        )
        return route


def unmap_prefix(prefix: str, project: Project | None = None) -> int:
    """Remove the route of `prefix` (the project's, or the installation's); returns how many went (0 or 1)."""
    deleted, _ = GatewayRoute.objects.filter(project=project, prefix=(prefix or "").strip().lstrip("+")).delete()
    return deleted


def status_url(gateway: Gateway) -> str:
    return f"/api/v1/gateways/{gateway.name}/{gateway.inbound_key}/status"


def set_enabled(name: str, project: Project | None, enabled: bool) -> Gateway:
    """Disable a gateway (its messages go to their route's next gateway; with none, they wait) or enable it
    again (its circuit closes). The project's own gateway, or the installation's for `project` None."""
    gw = Gateway.objects.filter(project=project, name=name).first()
    if gw is None:
        raise InputError(errors.GATEWAY_NOT_FOUND, f"No gateway named '{name}'.", 404)
    failover.set_disabled(gw, not enabled)
    return gw


def _own_gateway(name: str, project: Project | None) -> Gateway:
    gw = Gateway.objects.filter(project=project, name=name).first()
    if gw is None:
        raise InputError(errors.GATEWAY_NOT_FOUND, f"No gateway named '{name}'.", 404)
    return gw


def add_pool_number(name: str, project: Project | None, number: str, rate_limit: int = 0) -> PoolNumber:
    """Add a sender number (or sender ID) to a gateway's pool (the project's own gateway; the installation's
    for `project` None), with its own rate limit in segments per second (0: none). Recipients keep their
    number: the new one takes new recipients first (gateways.pools)."""
    return pools.add_number(_own_gateway(name, project), number, rate_limit)


def remove_pool_number(name: str, project: Project | None, number: str) -> bool:
    """Remove a number from a gateway's pool; its recipients get another number at their next message."""
    return pools.remove_number(_own_gateway(name, project), number)


def hold_binds() -> int:
    """Bind every `smpp` gateway in this process now (a worker at start), so that receipts and MO flow
    before anything is sent (gateways.smpp_bind). Returns how many."""
    gateways = list(Gateway.objects.filter(type="smpp"))
    if gateways:
        smpp_bind.hold(gateways)
    return len(gateways)


def inbound_url(gateway: Gateway) -> str:
    return f"/api/v1/gateways/{gateway.name}/{gateway.inbound_key}/inbound"


def sync_whatsapp_templates(project: Project) -> dict[str, dict[str, int]]:
    """Sync the templates of the project's own WhatsApp gateways from their providers (gateways.whatsapp_templates)."""
    return {
        gw.name: whatsapp_templates.sync(gw)
        for gw in whatsapp_templates.whatsapp_gateways(project.pk)
        if gw.project_id == project.pk
    }


def sync_whatsapp_templates_due() -> int:
    """The schedule: every WhatsApp gateway's templates older than an hour synced again (the worker's ticker)."""
    return whatsapp_templates.sync_due()
