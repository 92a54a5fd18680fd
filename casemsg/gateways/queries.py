"""Reading gateways and routes: the lists and lookups the API, the pages and the CLI show. A project sees
its own gateways and routes and the installation's, never another project's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from django.db.models import Q, QuerySet

from casemsg.gateways import failover, pools
from casemsg.gateways import whatsapp_templates as whatsapp_templates_module
from casemsg.gateways.carrier.models import PoolNumber, RouteGateway
from casemsg.gateways.models import Gateway, GatewayRoute, InstallationAuditEntry, WhatsAppTemplate
from casemsg.projects.models import Project


def _usable_by(project: Project) -> Q:
    return Q(project=project) | Q(project__isnull=True)


def gateways_for(project: Project, order: Literal["name", "owner"] = "name") -> QuerySet[Gateway]:
    """The project's own gateways and the installation-wide ones, with their project; by name, or ("owner")
    by project (the installation's apart from the project's) then name."""
    qs = Gateway.objects.filter(_usable_by(project))
    if order == "owner":
        return qs.order_by("project_id", "name")
    return qs.select_related("project").order_by("name")


def usable_gateways(project: Project) -> list[Gateway]:
    """The project's own gateways and the installation-wide ones its routes may name: an installation
    gateway whose name one of the project's own has is hidden by it (a name stands for the project's own
    first, as for contact_backend_id)."""
    rows = list(gateways_for(project))
    own = {g.name for g in rows if g.project_id is not None}
    return [g for g in rows if g.project_id is not None or g.name not in own]


def own_gateway(project: Project, gateway_id: int) -> Gateway | None:
    """One of the project's own gateways (never an installation one: only staff change those, on the
    Installation pages or from the command line)."""
    return Gateway.objects.filter(project=project, pk=gateway_id).first()


def sandbox_gateway(project: Project) -> Gateway | None:
    """The project's own sandbox gateway, else the installation's oldest (as the sandbox API picks)."""
    return (
        Gateway.objects.filter(type="sandbox", project=project).order_by("pk").first()
        or Gateway.objects.filter(type="sandbox", project__isnull=True).order_by("pk").first()
    )


def by_inbound_key(key: str) -> Gateway | None:
    """The gateway whose webhooks carry this secret key (unique over the installation)."""
    return Gateway.objects.filter(inbound_key=key).first()


def routes(project: Project | None) -> QuerySet[GatewayRoute]:
    """The project's own routes (None: the installation's), with their gateway, by prefix."""
    return GatewayRoute.objects.filter(project=project).select_related("gateway").order_by("prefix")


def routes_for(project: Project) -> QuerySet[GatewayRoute]:
    """The routes that apply to the project: its own and the installation's, with their gateway."""
    return GatewayRoute.objects.filter(_usable_by(project)).select_related("gateway").order_by("project_id", "prefix")


def route(prefix: str, project: Project | None = None) -> GatewayRoute | None:
    """The route of exactly this prefix, the project's (None: the installation's)."""
    return GatewayRoute.objects.filter(project=project, prefix=prefix).first()


def prefixes(gateway: Gateway, project: Project) -> list[str]:
    """The prefixes the project routes through this gateway, sorted."""
    return list(gateway.routes.filter(project=project).order_by("prefix").values_list("prefix", flat=True))


def all_gateways() -> QuerySet[Gateway]:
    """Every gateway of the installation (every project's too), with its project, by name: the CLI's list."""
    return Gateway.objects.select_related("project").order_by("name")


def all_routes() -> QuerySet[GatewayRoute]:
    """Every route (every project's too), with its gateway and project: the CLI's list."""
    return GatewayRoute.objects.select_related("gateway", "project").order_by("project_id", "prefix")


def whatsapp_templates(project: Project) -> list[WhatsAppTemplate]:
    """The templates of the project's WhatsApp gateways (its own and the installation's), as last synced."""
    return whatsapp_templates_module.templates_for(project.pk)


def route_then(routes: Iterable[GatewayRoute]) -> dict[int, list[str]]:
    """Each route's further gateways by name, in order (failover), by route id; one query."""
    out: dict[int, list[str]] = {r.pk: [] for r in routes}
    rows = (
        RouteGateway.objects.filter(route_id__in=list(out)).select_related("gateway").order_by("route_id", "position")
    )
    for rg in rows:
        out[rg.route_id].append(rg.gateway.name)
    return out


def circuits(gateways: Iterable[Gateway]) -> dict[int, str]:
    """Each gateway's circuit in words ("closed", "disabled", "circuit open until …"), by gateway id."""
    return failover.states(list(gateways))


def pool_numbers(gateway: Gateway) -> list[tuple[PoolNumber, int]]:
    """The gateway's pool numbers, each with how many recipients keep it (gateways.pools)."""
    return pools.listing(gateway)


def pool_numbers_for(gateways: Iterable[Gateway]) -> dict[int, list[tuple[PoolNumber, int]]]:
    """Each gateway's pool numbers with their recipients, by gateway id; one query."""
    return pools.listing_for(gateways)


def route_chain(route: GatewayRoute) -> list[str]:
    """One route's gateways by name, its own first, in order."""
    return [route.gateway.name, *route_then([route])[route.pk]]


def installation_gateways() -> list[Gateway]:
    """The installation's own gateways (no project), by name: the Installation pages."""
    return list(Gateway.objects.filter(project__isnull=True).order_by("name"))


def installation_gateway(gateway_id: int) -> Gateway | None:
    """One of the installation's own gateways (never a project's)."""
    return Gateway.objects.filter(project__isnull=True, pk=gateway_id).first()


def installation_audit() -> QuerySet[InstallationAuditEntry]:
    """The installation's audit log (its gateways and routes), newest first."""
    return InstallationAuditEntry.objects.order_by("-at", "-id")


def routes_listing(gateways: Iterable[Gateway]) -> dict[int, list[str]]:
    """Each gateway's installation routes in words ("254", "1 (2nd)"), by gateway id: a fixed number of
    queries."""
    ids = [g.pk for g in gateways]
    out: dict[int, list[str]] = {pk: [] for pk in ids}
    for prefix, gateway_id in GatewayRoute.objects.filter(project__isnull=True, gateway_id__in=ids).values_list(
        "prefix", "gateway_id"
    ):
        out[gateway_id].append(prefix)
    further = RouteGateway.objects.filter(route__project__isnull=True, gateway_id__in=ids).values_list(
        "route__prefix", "gateway_id", "position"
    )
    for prefix, gateway_id, position in further:
        out[gateway_id].append(f"{prefix} (#{position + 1})")
    for names in out.values():
        names.sort()
    return out
