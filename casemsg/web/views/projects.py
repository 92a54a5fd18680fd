from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.core import errors
from casemsg.gateways.models import Gateway, GatewayRoute
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.web.views.common import error_view, project_or_404, staff_required
from casemsg.workers.models import MobileWorker


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {"projects": Project.objects.order_by("slug")})


def errors_page(request: HttpRequest) -> HttpResponse:
    """Public on purpose: it is the same catalogue as the unauthenticated GET /api/v1/errors, and
    docs and CLI output link to its anchors."""
    sections = [(title, errors.of_kind(kind)) for kind, title in errors.KIND_TITLES.items()]
    return render(request, "web/errors.html", {"sections": sections})


@staff_required
def project_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    cases = Case.objects.filter(project=project).aggregate(
        n_open=Count("pk", filter=Q(closed=False)), n_closed=Count("pk", filter=Q(closed=True))
    )
    workers = MobileWorker.objects.filter(project=project).aggregate(
        n_active=Count("pk", filter=Q(active=True)), n_inactive=Count("pk", filter=Q(active=False))
    )
    by_status = dict(Message.objects.filter(project=project).values_list("status").annotate(n=Count("pk")).order_by())
    top_errors = [
        (error_view(code), n)
        for code, n in Message.objects.filter(project=project, status=Message.FAILED)
        .exclude(error="")
        .values_list("error")
        .annotate(n=Count("pk"))
        .order_by("-n")[:8]
    ]
    gateways = Gateway.objects.filter(Q(project=project) | Q(project__isnull=True)).order_by("project_id", "name")
    routes = (
        GatewayRoute.objects.filter(Q(project=project) | Q(project__isnull=True))
        .select_related("gateway")
        .order_by("project_id", "prefix")
    )
    return render(
        request,
        "web/project.html",
        {
            "project": project,
            "cases": cases,
            "workers": workers,
            "by_status": [(s, by_status.get(s, 0)) for s in Message.STATUSES],
            "top_errors": top_errors,
            "consents": ConsentRecord.objects.filter(project=project).count(),
            "gateways": gateways,
            "routes": routes,
        },
    )
