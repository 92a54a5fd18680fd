from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, WRITE, In, has_scope, paged, project_for
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways import queries, services
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import GATEWAY_TYPES
from casemsg.projects.models import WRITE as WRITE_SCOPE
from casemsg.projects.models import Project

router = Router(tags=["gateways"])


class GatewayIn(In):
    name: str
    type: str = Field(description=f"The gateway type: {', '.join(GATEWAY_TYPES)}.")
    config: dict[str, Any] = Field(default_factory=dict, description="The type's own settings (its config_schema).")
    rate_limit: int = 0
    countries: list[str] = Field(default_factory=list)
    max_segments: int = 10


class GatewayOut(Schema):
    name: str
    type: str
    project: str | None
    rate_limit: int
    countries: list[str]
    max_segments: int
    inbound_url: str | None = None
    status_url: str | None = None
    circuit: str = Field("closed", description="closed, disabled, or open after consecutive failures (failover).")


class RouteIn(In):
    prefix: str
    gateway: str
    then: list[str] = Field(
        default_factory=list,
        description="Further gateways in order: a message its gateway certainly did not take moves to the next.",
    )


class RouteOut(Schema):
    prefix: str
    gateway: str
    project: str | None
    then: list[str] = Field(default_factory=list)


def _gw_json(g: Gateway, show_urls: bool, circuit: str = "closed") -> dict[str, Any]:
    return {
        "name": g.name,
        "type": g.type,
        "project": g.project.slug if g.project is not None else None,
        "rate_limit": g.rate_limit,
        "countries": g.countries,
        "max_segments": g.max_segments,
        # the URLs hold the secret inbound key: only the owning project sees them
        "inbound_url": services.inbound_url(g) if show_urls else None,
        "status_url": services.status_url(g) if show_urls else None,
        "circuit": circuit,
    }


@router.post("/projects/{project}/gateways", auth=WRITE, response={201: GatewayOut})
def add_gateway(request: HttpRequest, project: str, payload: GatewayIn):
    """Add a gateway of this project; `config` is checked against the type's schema."""
    p = project_for(request, project)
    gw = services.add_gateway(
        payload.name, payload.type, payload.config, p, payload.rate_limit, payload.countries, payload.max_segments
    )
    gw.project = p
    return Status(201, _gw_json(gw, True))


class GatewayList(Schema):
    count: int
    items: list[GatewayOut]


class RouteList(Schema):
    count: int
    items: list[RouteOut]


@router.get("/projects/{project}/gateways", auth=READ, response=GatewayList)
def list_gateways(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, object]:
    """The project's own gateways and the installation-wide ones it may use (never another project's). A
    gateway's config is never shown: its secrets are write-only."""
    p = project_for(request, project)
    listed = paged(queries.gateways_for(p), limit, offset)
    # The webhook URLs carry the gateway's secret key: keys that may change gateways (write) see them, as owners
    # do on the pages; a read-only key, like a viewer, does not.
    urls = has_scope(request, WRITE_SCOPE)
    circuits = queries.circuits(listed["items"])
    items = [_gw_json(g, urls and g.project_id == p.pk, circuits[g.pk]) for g in listed["items"]]
    return {"count": listed["count"], "items": items}


@router.delete("/projects/{project}/gateways/{name}", auth=WRITE, response={204: None})
def delete_gateway(request: HttpRequest, project: str, name: str):
    p = project_for(request, project)
    if not services.delete_gateway(p, name):
        raise InputError(errors.GATEWAY_NOT_FOUND, f"This project has no gateway named '{name}'.", 404)
    return Status(204, None)


@router.post("/projects/{project}/routes", auth=WRITE, response={201: RouteOut})
def add_route(request: HttpRequest, project: str, payload: RouteIn):
    """Route a number prefix (or `*`) to a gateway for this project; project routes win over the
    installation's."""
    p = project_for(request, project)
    r = services.map_prefix(payload.prefix, payload.gateway, p, then=payload.then)
    then = queries.route_then([r])[r.pk]
    return Status(201, {"prefix": r.prefix, "gateway": r.gateway.name, "project": p.slug, "then": then})


@router.get("/projects/{project}/routes", auth=READ, response=RouteList)
def list_routes(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, object]:
    p = project_for(request, project)
    listed = paged(queries.routes(p), limit, offset)
    then = queries.route_then(listed["items"])
    items = [
        {"prefix": r.prefix, "gateway": r.gateway.name, "project": p.slug, "then": then[r.pk]} for r in listed["items"]
    ]
    return {"count": listed["count"], "items": items}


class PoolNumberIn(In):
    number: str = Field(description="A phone number (digits, country code first) or a sender ID.")
    rate_limit: int = Field(0, ge=0, le=100_000, description="Segments per second from this number (0: no limit).")


class PoolNumberOut(Schema):
    number: str
    rate_limit: int
    recipients: int = Field(description="How many recipients keep this number as their sender.")


class PoolNumberList(Schema):
    count: int
    items: list[PoolNumberOut]


def _own(project: Project, name: str) -> Gateway:
    gw = services.find_gateway(name, project)
    if gw is None:
        raise InputError(errors.GATEWAY_NOT_FOUND, f"No gateway named '{name}'.", 404)
    return gw


@router.post("/projects/{project}/gateways/{name}/numbers", auth=WRITE, response={201: PoolNumberOut})
def add_pool_number(request: HttpRequest, project: str, name: str, payload: PoolNumberIn):
    """Add a number to the pool of one of this project's gateways: each recipient keeps the number it was
    first sent from (stored), and a person who writes to a pool number is answered from it."""
    p = project_for(request, project)
    n = services.add_pool_number(name, p, payload.number, payload.rate_limit)
    return Status(201, {"number": n.number, "rate_limit": n.rate_limit, "recipients": 0})


@router.get("/projects/{project}/gateways/{name}/numbers", auth=READ, response=PoolNumberList)
def list_pool_numbers(request: HttpRequest, project: str, name: str) -> dict[str, object]:
    """A gateway's pool numbers (this project's own gateway or the installation's), with their recipients."""
    p = project_for(request, project)
    rows = queries.pool_numbers(_own(p, name))
    items = [{"number": n.number, "rate_limit": n.rate_limit, "recipients": kept} for n, kept in rows]
    return {"count": len(items), "items": items}


@router.delete("/projects/{project}/gateways/{name}/numbers/{number}", auth=WRITE, response={204: None})
def remove_pool_number(request: HttpRequest, project: str, name: str, number: str):
    p = project_for(request, project)
    if not services.remove_pool_number(name, p, number):
        raise InputError(errors.GATEWAY_NOT_FOUND, f"Gateway '{name}' has no pool number {number}.", 404)
    return Status(204, None)
