"""Event webhooks (read-only pages): the project's endpoints with their delivery counts, and each one's
delivery log with the last response. Endpoints are registered through the API (the secret is shown once,
there); see docs/webhooks.md."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from casemsg.events import queries
from casemsg.web.views.common import paginate, project_or_404, query_without_page, staff_required

ROWS_PER_PAGE = 50
STATES = ("pending", "delivered", "failed")


@staff_required
def webhook_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    endpoints = list(queries.endpoints(project))
    counts = queries.counts(project)
    rows = [(e, counts.get(e.pk, {"pending": 0, "delivered": 0, "failed": 0})) for e in endpoints]
    page = paginate(request, queries.project_deliveries(project), ROWS_PER_PAGE)
    return render(request, "web/events.html", {"project": project, "rows": rows, "page": page})


@staff_required
def webhook_detail(request: HttpRequest, slug: str, webhook_id: int) -> HttpResponse:
    project = project_or_404(slug)
    endpoint = queries.endpoint(project, webhook_id)
    if endpoint is None:
        raise Http404("No such event webhook.")
    state = request.GET.get("state", "")
    page = paginate(request, queries.deliveries(endpoint, state if state in STATES else None), ROWS_PER_PAGE)
    return render(
        request,
        "web/events_endpoint.html",
        {
            "project": project,
            "endpoint": endpoint,
            "page": page,
            "state": state,
            "states": STATES,
            "query": query_without_page(request),
        },
    )
