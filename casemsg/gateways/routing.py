"""Which gateway sends to a number: the contact's `contact_backend_id` (the project's own gateway of that
name, else the installation's; another project's gateway is never named), else the project's prefix map,
else the installation's prefix map — the longest matching prefix wins, `*` catches the rest — and the
chosen gateway must support the number's country. A route's further gateways (`chain`) are where a message
its gateway certainly did not take moves next (casemsg.gateways.failover)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from casemsg.core import errors
from casemsg.gateways.carrier.models import RouteGateway
from casemsg.gateways.models import Gateway, GatewayRoute


@dataclass
class Choice:
    gateway: Gateway | None
    error: str | None = None
    detail: str = ""


class Router:
    """Loads gateways and routes once, then answers many questions (one batch of messages)."""

    def __init__(self, project_ids: set[int]):
        # keyed by (project id or None for the installation's, name): names are unique per project only
        self.gateways: dict[tuple[int | None, str], Gateway] = {
            (g.project_id, g.name): g
            for g in Gateway.objects.filter(Q(project__isnull=True) | Q(project_id__in=project_ids))
        }
        by_id = {g.pk: g for g in self.gateways.values()}
        self.routes: dict[int | None, list[tuple[str, Gateway]]] = {}
        # each route's gateways in order, its own first (failover: casemsg.gateways.failover), keyed by
        # (project id or None, prefix)
        self.chains: dict[tuple[int | None, str], list[Gateway]] = {}
        route_keys: dict[int, tuple[int | None, str]] = {}
        for r in GatewayRoute.objects.filter(Q(project__isnull=True) | Q(project_id__in=project_ids)):
            gw = by_id.get(r.gateway_id)
            if gw is not None:
                self.routes.setdefault(r.project_id, []).append((r.prefix, gw))
                self.chains[(r.project_id, r.prefix)] = [gw]
                route_keys[r.pk] = (r.project_id, r.prefix)
        if route_keys:
            for rg in RouteGateway.objects.filter(route_id__in=list(route_keys)).order_by("route_id", "position"):
                then = by_id.get(rg.gateway_id)
                if then is not None:
                    self.chains[route_keys[rg.route_id]].append(then)
        for table in self.routes.values():
            # longest prefix first; '*' (the catch-all) last
            table.sort(key=lambda item: -1 if item[0] == "*" else len(item[0]), reverse=True)

    def _match(self, project_id: int | None, number: str) -> Gateway | None:
        for prefix, gw in self.routes.get(project_id, []):
            if prefix == "*" or number.startswith(prefix):
                return gw
        return None

    def chain(self, project_id: int, number: str, gateway: Gateway) -> list[Gateway]:
        """The gateways of the route that maps `number`, in order, when `gateway` is one of them (a message
        routed there may move along it); else `gateway` alone (a contact_backend_id, a reply's gateway)."""
        for owner in (project_id, None):
            for prefix, _gw in self.routes.get(owner, []):
                if prefix == "*" or number.startswith(prefix):
                    chain = self.chains[(owner, prefix)]
                    return chain if any(g.pk == gateway.pk for g in chain) else [gateway]
        return [gateway]

    def choose(self, project_id: int, number: str, region: str | None, override: str = "") -> Choice:
        if override:
            # the project's own gateway of that name, else the installation's; never another project's
            gw = self.gateways.get((project_id, override)) or self.gateways.get((None, override))
            if gw is None:
                detail = f"contact_backend_id '{override}' is not a configured gateway."
                return Choice(None, errors.GATEWAY_NOT_FOUND, detail)
        else:
            gw = self._match(project_id, number) or self._match(None, number)
            if gw is None:
                return Choice(None, errors.NO_SUITABLE_GATEWAY, f"No gateway route matches {number}.")
        return self.check_country(gw, number, region)

    def check_country(self, gw: Gateway, number: str, region: str | None) -> Choice:
        if gw.countries and region not in gw.countries:
            return Choice(
                None,
                errors.UNSUPPORTED_COUNTRY,
                f"Gateway '{gw.name}' sends only to {', '.join(gw.countries)}; "
                f"{number} is in {region or 'an unknown region'}.",
            )
        return Choice(gw)
