"""Configuring gateways and routes (the CLI, the API and the pages all call these).

Every change of the installation's own gateways and routes (those with no project) is written to the
installation's audit log (`InstallationAuditEntry`) in the change's transaction, as the current actor
(casemsg.core.actor): staff change them from the Installation pages and the command line."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from casemsg.core import actor, errors, netguard
from casemsg.core.errors import InputError
from casemsg.gateways import failover, pools, smpp_bind, smpp_handoff, whatsapp_templates
from casemsg.gateways.base import GatewayType, masked
from casemsg.gateways.carrier.models import PoolNumber, RouteGateway
from casemsg.gateways.models import Gateway, GatewayRoute, InstallationAuditEntry
from casemsg.gateways.registry import gateway_types
from casemsg.gateways.signals import gateway_uses
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
            gw = Gateway.objects.create(
                name=name,
                type=type_name,
                config=config or {},
                project=project,
                rate_limit=rate_limit,
                countries=regions,
                max_segments=max_segments,
            )
            if project is None:
                _audit(f"gateway {gw.name}", "added", None, gateway_json(gw))
            return gw
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
    before, old_config = gateway_json(gateway), dict(gateway.config or {})
    with transaction.atomic():
        set_config(gateway, config)
        gateway.rate_limit, gateway.countries, gateway.max_segments = rate_limit, regions, max_segments
        gateway.save(update_fields=["rate_limit", "countries", "max_segments"])
        after = gateway_json(gateway, old_config)
        if gateway.project_id is None and after != before:
            _audit(f"gateway {gateway.name}", "changed", before, after)
    return gateway


# --- the installation's audit log ----------------------------------------------------------------------
SECRET_CHANGED = "<secret: changed>"


def gateway_json(gw: Gateway, old_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A gateway as the audit log keeps it: its secrets never (masked as the pages show them; `<secret>` says
    one is set). With `old_config` (the config before a change), a secret that changed is
    `<secret: changed>`, so that a change of a secret alone is still a change in the log."""
    types = gateway_types()
    schema = types[gw.type].config_fields() if gw.type in types else {}
    config: dict[str, Any] = {}
    for key, value in (gw.config or {}).items():
        f = schema.get(key)
        shown = masked(f, value) if f is not None else value
        old = (old_config or {}).get(key) if old_config is not None else value
        if f is not None and f.secret and value:
            shown = SECRET_CHANGED if old != value else "<secret>"
        elif f is not None and f.secret_values and isinstance(value, dict):
            before = old if isinstance(old, dict) else {}
            shown = {k: SECRET_CHANGED if k in before and before[k] != value[k] else v for k, v in shown.items()}
        config[key] = shown
    return {
        "type": gw.type,
        "config": config,
        "rate_limit": gw.rate_limit,
        "countries": list(gw.countries or []),
        "max_segments": gw.max_segments,
    }


def _audit(subject: str, action: str, before: Any, after: Any) -> None:
    """One entry of the installation's audit log, as the current actor, in the caller's transaction."""
    who = actor.current()
    InstallationAuditEntry.objects.create(
        at=timezone.now(),
        source=who.source,
        who=who.who[:200],
        subject=subject,
        action=action,
        before=before,
        after=after,
    )


def _chain_names(route: GatewayRoute) -> list[str]:
    return [route.gateway.name, *(rg.gateway.name for rg in route.then.select_related("gateway").order_by("position"))]


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
        old = GatewayRoute.objects.filter(project=project, prefix=prefix).select_related("gateway").first()
        before = {"gateways": _chain_names(old)} if old is not None else None
        GatewayRoute.objects.filter(project=project, prefix=prefix).delete()
        route = GatewayRoute.objects.create(prefix=prefix, gateway=chain[0], project=project)
        RouteGateway.objects.bulk_create(
            [RouteGateway(route=route, gateway=gw, position=i) for i, gw in enumerate(chain[1:], 1)]
        )
        if project is None:
            after = {"gateways": [gw.name for gw in chain]}
            _audit(f"route {prefix}", "added" if before is None else "changed", before, after)
        return route


def unmap_prefix(prefix: str, project: Project | None = None) -> int:
    """Remove the route of `prefix` (the project's, or the installation's); returns how many went (0 or 1)."""
    prefix = (prefix or "").strip().lstrip("+")
    with transaction.atomic():
        old = GatewayRoute.objects.filter(project=project, prefix=prefix).select_related("gateway").first()
        if old is None:
            return 0
        before = {"gateways": _chain_names(old)}
        old.delete()
        if project is None:
            _audit(f"route {prefix}", "removed", before, None)
    return 1


def unmap_gateway(prefix: str, name: str, project: Project | None = None) -> GatewayRoute | None:
    """Take one gateway out of the route of `prefix` (the project's, or the installation's): the route goes
    on through its other gateways in order (its next one becomes its first), or, with none left, is removed
    (None). 404 ROUTE_NOT_FOUND when there is no such route or it does not list the gateway."""
    prefix = (prefix or "").strip().lstrip("+")
    with transaction.atomic():
        route = (
            GatewayRoute.objects.select_for_update()
            .filter(project=project, prefix=prefix)
            .select_related("gateway")
            .first()
        )
        if route is None:
            raise InputError(errors.ROUTE_NOT_FOUND, f"There is no route {prefix or '(empty)'}.", 404)
        chain = [route.gateway, *(rg.gateway for rg in route.then.select_related("gateway").order_by("position"))]
        if not any(g.name == name for g in chain):
            listed = ", ".join(g.name for g in chain)
            raise InputError(errors.ROUTE_NOT_FOUND, f"Route {prefix} does not list gateway '{name}' ({listed}).", 404)
        left = _rewrite_routes([route], {route.pk: chain}, {g.pk for g in chain if g.name == name})
        return left[0] if left else None


def _rewrite_routes(
    routes: Sequence[GatewayRoute], chains: Mapping[int, list[Gateway]], gone: set[int]
) -> list[GatewayRoute]:
    """Take the gateways `gone` (ids) out of these routes' chains, in the caller's transaction: a route
    keeps its other gateways in order, or is removed when none is left. Returns the routes that remain."""
    kept: list[GatewayRoute] = []
    for route in routes:
        chain = chains[route.pk]
        rest = [g for g in chain if g.pk not in gone]
        if rest == chain:
            kept.append(route)
            continue
        before = {"gateways": [g.name for g in chain]}
        if not rest:
            route.delete()
            after = None
        else:
            RouteGateway.objects.filter(route=route).delete()
            route.gateway = rest[0]
            route.save(update_fields=["gateway"])
            RouteGateway.objects.bulk_create(
                [RouteGateway(route=route, gateway=g, position=i) for i, g in enumerate(rest[1:], 1)]
            )
            kept.append(route)
            after = {"gateways": [g.name for g in rest]}
        if route.project_id is None:
            _audit(f"route {route.prefix}", "removed" if after is None else "changed", before, after)
    return kept


# --- removing a gateway --------------------------------------------------------------------------------
@dataclass
class Uses:
    """What still uses a gateway: the routes that list it (by id, with their chains) and what the areas
    above answer (`gateway_uses`: "3 messages waiting to be sent")."""

    routes: list[GatewayRoute] = field(default_factory=list)
    chains: dict[int, list[Gateway]] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)

    def sentences(self) -> list[str]:
        out = []
        for r in self.routes:
            where = "the installation's" if r.project is None else f"project {r.project.slug}'s"
            names = " → ".join(g.name for g in self.chains[r.pk])
            out.append(f"{where} route {r.prefix} ({names})")
        return out + self.others

    def __bool__(self) -> bool:
        return bool(self.routes or self.others)


def gateway_uses_of(gw: Gateway) -> Uses:
    """The routes (every project's, for an installation gateway) that list the gateway, first or further,
    and the other uses the areas above report through the `gateway_uses` hook. A fixed number of queries."""
    ids = set(GatewayRoute.objects.filter(gateway=gw).values_list("pk", flat=True))
    ids |= set(RouteGateway.objects.filter(gateway=gw).values_list("route_id", flat=True))
    routes = list(
        GatewayRoute.objects.filter(pk__in=ids).select_related("gateway", "project").order_by("project_id", "prefix")
    )
    chains: dict[int, list[Gateway]] = {r.pk: [r.gateway] for r in routes}
    for rg in RouteGateway.objects.filter(route_id__in=ids).select_related("gateway").order_by("route_id", "position"):
        chains[rg.route_id].append(rg.gateway)
    others = [s for _receiver, answer in gateway_uses.send(sender=Gateway, gateway=gw) for s in answer or []]
    return Uses(routes, chains, others)


def remove_gateway(name: str, project: Project | None = None, force: bool = False) -> list[str]:
    """Remove a gateway (the project's own; the installation's for `project` None). While a route lists it or
    messages wait on it, refused with 409 GATEWAY_IN_USE naming them, unless `force`: then it is first taken
    out of its routes (each goes on through its next gateway, or is removed with none left) and its waiting
    messages are routed again. Returns what `force` changed, in words (empty when nothing used it)."""
    with transaction.atomic():
        gw = Gateway.objects.select_for_update().filter(project=project, name=name).first()
        if gw is None:
            raise InputError(errors.GATEWAY_NOT_FOUND, f"No gateway named '{name}'.", 404)
        uses = gateway_uses_of(gw)
        if uses and not force:
            raise InputError(
                errors.GATEWAY_IN_USE,
                f"Gateway '{name}' is still used by {'; '.join(uses.sentences())}. Unmap it first, or remove it "
                "with --force (its routes go on through their next gateway; its waiting messages are routed again).",
                409,
            )
        done = uses.sentences()
        _rewrite_routes(uses.routes, uses.chains, {gw.pk})
        before = gateway_json(gw)
        gw.delete()  # its messages keep its name (gateway_name); waiting ones are routed again
        if project is None:
            _audit(f"gateway {name}", "removed", before, None)
    return done


def status_url(gateway: Gateway) -> str:
    return f"/api/v1/gateways/{gateway.name}/{gateway.inbound_key}/status"


def set_enabled(name: str, project: Project | None, enabled: bool) -> Gateway:
    """Disable a gateway (its messages go to their route's next gateway; with none, they wait) or enable it
    again (its circuit closes). The project's own gateway, or the installation's for `project` None."""
    gw = Gateway.objects.filter(project=project, name=name).first()
    if gw is None:
        raise InputError(errors.GATEWAY_NOT_FOUND, f"No gateway named '{name}'.", 404)
    with transaction.atomic():
        failover.set_disabled(gw, not enabled)
        if project is None:
            _audit(f"gateway {name}", "enabled" if enabled else "disabled", None, None)
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


def serve_smpp(names: Sequence[str], stop: threading.Event) -> list[str]:
    """`casemsg smpp`: hold the bind of each `bind_per: process` smpp gateway (of these names; all of them
    when none is named) and submit what the workers hand over, until `stop` (gateways.smpp_handoff).
    Returns the names held; an unknown or non-process name is GATEWAY_NOT_FOUND."""
    gateways = list(Gateway.objects.filter(type="smpp"))
    chosen = [g for g in gateways if smpp_handoff.by_process(g) and (not names or g.name in names)]
    missing = sorted(set(names) - {g.name for g in chosen})
    if missing:
        raise InputError(
            errors.GATEWAY_NOT_FOUND,
            f"No smpp gateway with bind_per: process named {', '.join(missing)}.",
            404,
        )
    if chosen:
        smpp_handoff.serve(chosen, stop)
    return [g.name for g in chosen]


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
