from __future__ import annotations

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from casemsg.contacts.status import statuses
from casemsg.messaging import queries, services
from casemsg.web.forms import SendForm, WorkerFilterForm
from casemsg.web.views.cases import RECENT_MESSAGES, send_from_form
from casemsg.web.views.common import (
    attach_project,
    channel_views,
    paginate,
    project_or_404,
    query_without_page,
    staff_required,
    status_view,
    valid_filters,
    with_query,
)
from casemsg.workers.models import MobileWorker

WORKERS_PER_PAGE = 50


@staff_required
def worker_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = WorkerFilterForm(request.GET or None)
    data = valid_filters(form)
    qs = MobileWorker.objects.filter(project=project)
    state = data.get("state") or "active"
    if state != "all":
        qs = qs.filter(active=state == "active")
    if data.get("q"):
        q = data["q"].strip()
        qs = qs.filter(Q(username__icontains=q) | Q(name__icontains=q))
    page = paginate(request, qs.order_by("username"), WORKERS_PER_PAGE)
    rows = list(page.object_list)
    attach_project(rows, project)
    sts = statuses(rows)  # one batch for the page, as on the cases list
    return render(
        request,
        "web/workers.html",
        {
            "project": project,
            "form": form,
            "page": page,
            "query": query_without_page(request),
            "rows": [(w, channel_views(st)) for w, st in zip(rows, sts, strict=True)],
        },
    )


@staff_required
def worker_detail(request: HttpRequest, slug: str, worker_id: int) -> HttpResponse:
    project = project_or_404(slug)
    worker = get_object_or_404(MobileWorker, project=project, pk=worker_id)
    worker.project = project
    form = SendForm()
    if request.method == "POST":
        form = SendForm(request.POST)
        if form.is_valid() and send_from_form(request, form, project, services.SendRequest(mobile_worker_id=worker.pk)):
            return redirect(reverse("web:worker", args=[project.slug, worker.pk]))
    st = statuses([worker])[0]
    recent = queries.messages(project, queries.MessageFilter(worker_id=worker.pk))[:RECENT_MESSAGES]
    return render(
        request,
        "web/worker.html",
        {
            "project": project,
            "worker": worker,
            "status": status_view(st),
            "recent": recent,
            "form": form,
            "all_messages": with_query(reverse("web:messages", args=[project.slug]), worker=worker.pk),
        },
    )
