"""Gateways and routes (owner pages): the gateways a project may use, a form per gateway type built from
that type's config schema, delete, a test message, and the project's prefix → gateway routes.

Saving goes through casemsg.gateways.services, the API's and CLI's checks: the config schema, URLs
against internal addresses (casemsg.core.netguard), names, limits. Secrets are never sent back to the
browser: a secret field is blank and keeps the stored value unless something is typed. The test message
goes through the one send pipeline (queued, checked, sent through this gateway) and the page shows how
it ended. Installation-wide gateways are listed (a project may route to them) but only staff change them,
on the Installation pages (casemsg.web.views.installation, which reuses this module's form handling) or
with `casemsg gateway`."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from casemsg.core import errors, phone
from casemsg.core.errors import InputError
from casemsg.gateways import queries, services
from casemsg.gateways.base import GatewayType, digits
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import GATEWAY_TYPES
from casemsg.messaging import services as messaging
from casemsg.projects.models import Project
from casemsg.web.forms_config import (
    GATEWAY_REFUSALS,
    GatewayForm,
    GatewayTestForm,
    RouteForm,
    refusal_field,
    show_refusal,
)
from casemsg.web.views.common import error_view, found_or_404, project_or_404, staff_required
from casemsg.web.views.keywords import require_role, role_allows


def type_info(t: type[GatewayType]) -> dict[str, str]:
    """A gateway type as templates read it (a class would be called by the template engine)."""
    return {"type_name": t.type_name, "title": t.title}


def _own(project: Project, gateway_id: int) -> Gateway:
    return found_or_404(queries.own_gateway(project, gateway_id))


@staff_required
def gateway_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    gateways = queries.usable_gateways(project)
    circuits = queries.circuits(gateways)
    numbers = queries.pool_numbers_for(gateways)
    for g in gateways:
        g.type_title = GATEWAY_TYPES[g.type].title if g.type in GATEWAY_TYPES else g.type  # type: ignore[attr-defined]
        g.circuit_state = circuits[g.pk]  # type: ignore[attr-defined]
        g.pool = numbers[g.pk]  # type: ignore[attr-defined]
    routes = list(queries.routes(project))
    further = queries.route_then(routes)
    for r in routes:
        r.further = further[r.pk]  # type: ignore[attr-defined]
    return render(
        request,
        "web/gateway_list.html",
        {
            "project": project,
            "gateways": gateways,
            "routes": routes,
            "can_edit": role_allows(request, "owner"),
        },
    )


def refuse_on_form(form: GatewayForm, exc: InputError) -> None:
    """A service's refusal on the gateway form: on the config field it names, else where its code belongs."""
    field = refusal_field(form, exc)
    if field is not None:
        form.add_error(field, exc.message)
    else:
        show_refusal(form, exc, GATEWAY_REFUSALS)


@staff_required
def gateway_new(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    type_name = request.POST.get("type") or request.GET.get("type", "")
    gateway_type = GATEWAY_TYPES.get(type_name)
    if gateway_type is None:
        # first pick the type: each type has its own form
        ctx = {"project": project, "types": [type_info(t) for t in GATEWAY_TYPES.values()], "unknown": type_name}
        return render(request, "web/gateway_types.html", ctx)
    form = GatewayForm(request.POST or None, gateway_type=gateway_type)
    if request.method == "POST":
        require_role(request, "owner")
        if form.is_valid():
            try:
                config = form.config()
                gw = services.add_gateway(
                    form.cleaned_data["name"],
                    gateway_type.type_name,
                    config,
                    project,
                    form.cleaned_data["rate_limit"],
                    form.countries_list(),
                    form.cleaned_data["max_segments"],
                )
            except InputError as exc:
                refuse_on_form(form, exc)
            else:
                flash.success(request, f"Gateway {gw.name} added. Route numbers to it below.")
                return redirect(reverse("web:gateway", args=[project.slug, gw.pk]))
    ctx = {"project": project, "gateway_type": type_info(gateway_type), "form": form, "gateway": None, "can_edit": True}
    return render(request, "web/gateway_form.html", ctx)


@staff_required
def gateway_edit(request: HttpRequest, slug: str, gateway_id: int) -> HttpResponse:
    project = project_or_404(slug)
    gw = _own(project, gateway_id)
    gateway_type = GATEWAY_TYPES.get(gw.type)
    if gateway_type is None:
        flash.error(request, f"Gateway {gw.name} has the unknown type '{gw.type}'; it can only be deleted.")
        return redirect(reverse("web:gateways", args=[project.slug]))
    form = GatewayForm(request.POST or None, gateway_type=gateway_type, gateway=gw)
    if request.method == "POST":
        require_role(request, "owner")
        if request.POST.get("delete"):
            services.delete_gateway(project, gw.name)  # its routes go with it; its messages keep the name
            flash.success(request, f"Gateway {gw.name} deleted.")
            return redirect(reverse("web:gateways", args=[project.slug]))
        if form.is_valid():
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
                return redirect(reverse("web:gateway", args=[project.slug, gw.pk]))
    return render(request, "web/gateway_form.html", _edit_context(request, project, gw, form))


def _edit_context(request: HttpRequest, project: Project, gw: Gateway, form: GatewayForm, **more: object) -> dict:
    owner = role_allows(request, "owner")
    return {
        "project": project,
        "gateway": gw,
        "gateway_type": type_info(GATEWAY_TYPES[gw.type]),
        "form": form,
        "test_form": more.pop("test_form", None) or GatewayTestForm(),
        # the webhook addresses carry the gateway's secret inbound key: owners only
        "inbound_url": request.build_absolute_uri(services.inbound_url(gw)) if owner else "",
        "status_url": request.build_absolute_uri(services.status_url(gw)) if owner else "",
        "routes": queries.prefixes(gw, project),
        "can_edit": owner,
        **more,
    }


@staff_required
@require_POST
def gateway_test(request: HttpRequest, slug: str, gateway_id: int) -> HttpResponse:
    project = project_or_404(slug)
    gw = _own(project, gateway_id)
    require_role(request, "owner")
    test_form = GatewayTestForm(request.POST)
    outcome = None
    if test_form.is_valid():
        # a number typed as a person writes it ("+254 712 …"): its digits, as the simulator takes it
        chk = phone.check(digits(test_form.cleaned_data["to"]))
        if chk.number is None:
            test_form.add_error("to", chk.message or "Not a valid phone number.")
        else:
            msg = messaging.send_test(project, gw, chk.number, test_form.cleaned_data["text"])
            outcome = {"message": msg, "error": error_view(msg.error, detail=msg.error_detail) if msg.error else None}
    form = GatewayForm(gateway_type=GATEWAY_TYPES[gw.type], gateway=gw)
    ctx = _edit_context(request, project, gw, form, test_form=test_form, outcome=outcome)
    return render(request, "web/gateway_form.html", ctx)


@staff_required
def route_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    gateways = queries.usable_gateways(project)
    form = RouteForm(request.POST or None, gateways=gateways)
    if request.method == "POST":
        require_role(request, "owner")
        if request.POST.get("remove") is not None:
            prefix = request.POST["remove"]
            if services.unmap_prefix(prefix, project):
                flash.success(request, f"Route {prefix} removed.")
            else:
                flash.warning(request, f"There was no route {prefix}.")
            return redirect(reverse("web:routes", args=[project.slug]))
        if form.is_valid():
            try:
                r = services.map_prefix(form.cleaned_data["route_prefix"], form.cleaned_data["gateway"], project)
            except InputError as exc:
                show_refusal(form, exc, {errors.INVALID_PREFIX: "route_prefix", errors.GATEWAY_NOT_FOUND: "gateway"})
            else:
                flash.success(request, f"Numbers starting {r.prefix} now go through {r.gateway.name}.")
                return redirect(reverse("web:routes", args=[project.slug]))
    ctx = {
        "project": project,
        "form": form,
        "routes": queries.routes(project),
        "installation_routes": queries.routes(None),
        "can_edit": role_allows(request, "owner"),
    }
    return render(request, "web/route_list.html", ctx)
