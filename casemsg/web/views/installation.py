"""The Installation pages (staff only): the installation's own gateways — those of no project, which speak
for the whole installation (docs/security.md, "Authority") — and its prefix routes.

Staff (Django's `is_staff`, or a superuser) list the gateways with their type, circuit and routes; add one
(the form is built from its type's config schema, as on a project's Gateways page: casemsg.web.forms_config),
edit it (secrets are write-only: a blank secret keeps the stored one), remove it (refused while a route lists
it or messages wait on it, unless "take it out of its routes first" is ticked), disable or enable it, send a
test message through it, and set the routes: prefix → gateways in order (failover), the same model
`casemsg gateway map … --then` writes. Every write goes through casemsg.gateways.services — the CLI's
checks (schema, URLs against internal addresses, names, limits) — which also writes the installation's
audit log, shown on its own page.

Anyone else gets 404, as for a project they are not a member of: the pages are not even discoverable."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from casemsg.core import errors, phone
from casemsg.core.errors import InputError
from casemsg.gateways import queries, services
from casemsg.gateways.base import digits
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import GATEWAY_TYPES
from casemsg.messaging import services as messaging
from casemsg.projects import queries as project_queries
from casemsg.web.forms_config import GatewayForm, show_refusal
from casemsg.web.forms_installation import InstallationRouteForm, InstallationTestForm
from casemsg.web.views.common import error_view, found_or_404, paginate
from casemsg.web.views.gateways import refuse_on_form, type_info

AUDIT_PER_PAGE = 50
View = TypeVar("View", bound=Callable[..., Any])


def is_staff(user: Any) -> bool:
    return bool(user.is_active and (user.is_staff or user.is_superuser))


def staff_only(view: View) -> View:
    """Logged in (else the login page) and staff (else 404: the pages are not even discoverable)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_staff(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)  # type: ignore[return-value]


def _gateway(gateway_id: int) -> Gateway:
    return found_or_404(queries.installation_gateway(gateway_id))


def _home() -> HttpResponse:
    return redirect(reverse("web:installation"))


@staff_only
def home(request: HttpRequest) -> HttpResponse:
    gateways = queries.installation_gateways()
    circuits = queries.circuits(gateways)
    routed = queries.routes_listing(gateways)
    numbers = queries.pool_numbers_for(gateways)
    for g in gateways:
        g.type_title = GATEWAY_TYPES[g.type].title if g.type in GATEWAY_TYPES else g.type  # type: ignore[attr-defined]
        g.circuit_state = circuits[g.pk]  # type: ignore[attr-defined]
        g.prefixes = routed[g.pk]  # type: ignore[attr-defined]
        g.pool = numbers[g.pk]  # type: ignore[attr-defined]
    ctx = {"gateways": gateways, "routes": _routes()}
    return render(request, "installation/home.html", ctx)


def _routes() -> list[Any]:
    routes = list(queries.routes(None))
    further = queries.route_then(routes)
    for r in routes:
        r.chain = [r.gateway.name, *further[r.pk]]  # type: ignore[attr-defined]
    return routes


@staff_only
def gateway_new(request: HttpRequest) -> HttpResponse:
    type_name = request.POST.get("type") or request.GET.get("type", "")
    gateway_type = GATEWAY_TYPES.get(type_name)
    if gateway_type is None:
        ctx: dict[str, Any] = {"types": [type_info(t) for t in GATEWAY_TYPES.values()], "unknown": type_name}
        return render(request, "installation/gateway_types.html", ctx)
    form = GatewayForm(request.POST or None, gateway_type=gateway_type)
    form.fields["name"].help_text = "Letters, digits, '.', '_' or '-'; unique among the installation's gateways."
    if request.method == "POST" and form.is_valid():
        try:
            gw = services.add_gateway(
                form.cleaned_data["name"],
                gateway_type.type_name,
                form.config(),
                None,
                form.cleaned_data["rate_limit"],
                form.countries_list(),
                form.cleaned_data["max_segments"],
            )
        except InputError as exc:
            refuse_on_form(form, exc)
        else:
            flash.success(request, f"Gateway {gw.name} added to the installation. Route numbers to it below.")
            return redirect(reverse("web:installation_gateway", args=[gw.pk]))
    ctx = {"gateway_type": type_info(gateway_type), "form": form, "gateway": None, "test_form": None}
    return render(request, "installation/gateway_form.html", ctx)


@staff_only
def gateway_edit(request: HttpRequest, gateway_id: int) -> HttpResponse:
    gw = _gateway(gateway_id)
    gateway_type = GATEWAY_TYPES.get(gw.type)
    if gateway_type is None:
        flash.error(request, f"Gateway {gw.name} has the unknown type '{gw.type}'; it can only be removed.")
        return _home()
    switch = request.POST.get("switch", "")
    if request.method == "POST" and switch in ("enable", "disable"):
        # disabled: its messages go to their route's next gateway (or wait); enabled: its circuit closes
        services.set_enabled(gw.name, None, switch == "enable")
        flash.success(request, f"Gateway {gw.name} {switch}d.")
        return redirect(reverse("web:installation_gateway", args=[gw.pk]) + "#status")
    form = GatewayForm(request.POST or None, gateway_type=gateway_type, gateway=gw)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_gateway(
                gw,
                form.config(),
                form.cleaned_data["rate_limit"],
                form.countries_list(),
                form.cleaned_data["max_segments"],
            )
        except InputError as exc:
            gw.refresh_from_db()
            refuse_on_form(form, exc)
        else:
            flash.success(request, f"Gateway {gw.name} saved.")
            return redirect(reverse("web:installation_gateway", args=[gw.pk]))
    return render(request, "installation/gateway_form.html", _edit_context(request, gw, form))


def _edit_context(request: HttpRequest, gw: Gateway, form: GatewayForm, **more: Any) -> dict[str, Any]:
    uses = services.gateway_uses_of(gw)
    circuit = queries.circuits([gw])[gw.pk]
    return {
        "gateway": gw,
        "circuit": circuit,
        "disabled": circuit == "disabled",
        "gateway_type": type_info(GATEWAY_TYPES[gw.type]),
        "form": form,
        "test_form": more.pop("test_form", None) or InstallationTestForm(projects=list(project_queries.projects())),
        "inbound_url": request.build_absolute_uri(services.inbound_url(gw)),
        "status_url": request.build_absolute_uri(services.status_url(gw)),
        "uses": uses.sentences(),
        **more,
    }


@staff_only
@require_POST
def gateway_remove(request: HttpRequest, gateway_id: int) -> HttpResponse:
    gw = _gateway(gateway_id)
    try:
        done = services.remove_gateway(gw.name, None, force=bool(request.POST.get("unmap")))
    except InputError as exc:
        # GATEWAY_IN_USE: the reason, on the gateway's page, with the box that unmaps first
        flash.error(request, exc.message)
        return redirect(reverse("web:installation_gateway", args=[gw.pk]) + "#remove")
    taken = f" It was taken out of {'; '.join(done)}." if done else ""
    flash.success(request, f"Gateway {gw.name} removed.{taken}")
    return _home()


@staff_only
@require_POST
def gateway_test(request: HttpRequest, gateway_id: int) -> HttpResponse:
    gw = _gateway(gateway_id)
    if gw.type not in GATEWAY_TYPES:
        raise Http404("No such gateway type.")
    projects = list(project_queries.projects())
    test_form = InstallationTestForm(request.POST, projects=projects)
    outcome = None
    if not projects:
        test_form.add_error(None, "A test message belongs to a project's log: create a project first.")
    elif test_form.is_valid():
        chk = phone.check(digits(test_form.cleaned_data["to"]))
        if chk.number is None:
            test_form.add_error("to", chk.message or "Not a valid phone number.")
        else:
            project = test_form.chosen_project()
            msg = messaging.send_test(project, gw, chk.number, test_form.cleaned_data["text"])
            outcome = {
                "message": msg,
                "project": project,
                "error": error_view(msg.error, detail=msg.error_detail) if msg.error else None,
            }
    form = GatewayForm(gateway_type=GATEWAY_TYPES[gw.type], gateway=gw)
    ctx = _edit_context(request, gw, form, test_form=test_form, outcome=outcome)
    return render(request, "installation/gateway_form.html", ctx)


@staff_only
def routes(request: HttpRequest) -> HttpResponse:
    gateways = queries.installation_gateways()
    form = InstallationRouteForm(request.POST or None, gateways=gateways)
    if request.method == "POST":
        if request.POST.get("remove") is not None:
            return _unmap(request, request.POST["remove"], request.POST.get("gateway_name", ""))
        if form.is_valid():
            try:
                r = services.map_prefix(
                    form.cleaned_data["route_prefix"], form.cleaned_data["gateway"], None, form.then()
                )
            except InputError as exc:
                show_refusal(
                    form,
                    exc,
                    {errors.INVALID_PREFIX: "route_prefix", errors.GATEWAY_NOT_FOUND: "gateway"},
                )
            else:
                chain = " → ".join(queries.route_chain(r))
                flash.success(request, f"Numbers starting {r.prefix} now go through {chain}.")
                return redirect(reverse("web:installation_routes"))
    ctx = {"form": form, "routes": _routes(), "gateways": gateways}
    return render(request, "installation/routes.html", ctx)


def _unmap(request: HttpRequest, prefix: str, name: str) -> HttpResponse:
    """Remove a route, or (`name`) take one gateway out of it."""
    try:
        if name:
            left = services.unmap_gateway(prefix, name, None)
            if left is None:
                flash.success(request, f"Route {prefix} removed: {name} was its only gateway.")
            else:
                chain = " → ".join(queries.route_chain(left))
                flash.success(request, f"Gateway {name} taken out of route {prefix}: now {chain}.")
        elif services.unmap_prefix(prefix, None):
            flash.success(request, f"Route {prefix} removed.")
        else:
            flash.warning(request, f"There was no route {prefix}.")
    except InputError as exc:
        flash.error(request, exc.message)
    return redirect(reverse("web:installation_routes"))


@staff_only
def audit(request: HttpRequest) -> HttpResponse:
    page = paginate(request, queries.installation_audit(), AUDIT_PER_PAGE)
    for e in page.object_list:
        e.before_text = _shown(e.before)
        e.after_text = _shown(e.after)
    return render(request, "installation/audit.html", {"page": page, "query": ""})


def _shown(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
