from __future__ import annotations

import hmac
import time
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from casemsg.api.core import project_for
from casemsg.core.errors import InputError
from casemsg.gateways import services
from casemsg.gateways.models import Gateway, GatewayRoute
from casemsg.gateways.registry import adapter_for
from casemsg.messaging.pipeline import apply_status_updates

router = Router(tags=["gateways"])


class GatewayIn(Schema):
    name: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
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


class RouteIn(Schema):
    prefix: str
    gateway: str


class RouteOut(Schema):
    prefix: str
    gateway: str
    project: str | None


def _gw_json(g: Gateway, show_urls: bool) -> dict:
    return {
        "name": g.name,
        "type": g.type,
        "project": g.project.slug if g.project_id else None,
        "rate_limit": g.rate_limit,
        "countries": g.countries,
        "max_segments": g.max_segments,
        # the URLs hold the secret inbound key: only the owning project sees them
        "inbound_url": services.inbound_url(g) if show_urls else None,
        "status_url": services.status_url(g) if show_urls else None,
    }


@router.post("/projects/{project}/gateways", response={201: GatewayOut})
def add_gateway(request: HttpRequest, project: str, payload: GatewayIn):
    """Add a gateway of this project (types: sandbox, http, twilio, telerivet, africastalking)."""
    p = project_for(request, project)
    gw = services.add_gateway(
        payload.name, payload.type, payload.config, p, payload.rate_limit, payload.countries, payload.max_segments
    )
    gw.project = p
    return Status(201, _gw_json(gw, True))


@router.get("/projects/{project}/gateways", response=list[GatewayOut])
def list_gateways(request: HttpRequest, project: str):
    """The project's own gateways and the installation-wide ones it may use."""
    p = project_for(request, project)
    from django.db.models import Q

    qs = Gateway.objects.filter(Q(project=p) | Q(project__isnull=True)).select_related("project").order_by("name")
    return [_gw_json(g, g.project_id == p.pk) for g in qs]


@router.delete("/projects/{project}/gateways/{name}", response={204: None})
def delete_gateway(request: HttpRequest, project: str, name: str):
    p = project_for(request, project)
    deleted, _ = Gateway.objects.filter(project=p, name=name).delete()
    if not deleted:
        raise InputError("GATEWAY_NOT_FOUND", f"This project has no gateway named '{name}'.", 404)
    return Status(204, None)


@router.post("/projects/{project}/routes", response={201: RouteOut})
def add_route(request: HttpRequest, project: str, payload: RouteIn):
    """Route a number prefix (or `*`) to a gateway for this project; project routes win over the
    installation's."""
    p = project_for(request, project)
    r = services.map_prefix(payload.prefix, payload.gateway, p)
    return Status(201, {"prefix": r.prefix, "gateway": r.gateway.name, "project": p.slug})


@router.get("/projects/{project}/routes", response=list[RouteOut])
def list_routes(request: HttpRequest, project: str):
    p = project_for(request, project)
    return [
        {"prefix": r.prefix, "gateway": r.gateway.name, "project": p.slug}
        for r in GatewayRoute.objects.filter(project=p).select_related("gateway").order_by("prefix")
    ]


# Webhooks come in bursts from one gateway: its row is kept for a few seconds (per process, keyed by
# name and secret key, so a new or re-keyed gateway is never confused with an old one). A changed config
# or a deleted gateway takes effect within this many seconds.
WEBHOOK_GATEWAY_TTL = 5.0
_webhook_gateways: dict[tuple[str, str], tuple[float, Gateway]] = {}


def gateway_for_webhook(name: str, key: str) -> Gateway:
    """Webhooks are authenticated by the secret key in their URL (and a provider signature if any)."""
    now = time.monotonic()
    hit = _webhook_gateways.get((name, key))
    if hit is not None and now - hit[0] < WEBHOOK_GATEWAY_TTL:
        return hit[1]
    gw = Gateway.objects.filter(name=name).first()
    if gw is None or not hmac.compare_digest(gw.inbound_key, key):
        raise InputError("FORBIDDEN", "Unknown gateway or wrong key.", 403)
    if len(_webhook_gateways) > 1000:
        _webhook_gateways.clear()
    _webhook_gateways[(name, key)] = (now, gw)
    return gw


@router.post("/gateways/{name}/{key}/status", auth=None, tags=["webhooks"])
def status_callback(request: HttpRequest, name: str, key: str):
    """Delivery reports, in the provider's own format."""
    gw = gateway_for_webhook(name, key)
    adapter = adapter_for(gw)
    if not adapter.verify_request(request):
        raise InputError("FORBIDDEN", "The request signature is not valid.", 403)
    apply_status_updates(gw, adapter.parse_status(request))
    return HttpResponse("", status=200)
