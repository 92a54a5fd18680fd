"""The mobile workers pages: the list (search, filters), a new worker, and a worker's page, where the
worker is edited (name, phone numbers — checked, a bad one is refused with its fix), deactivated or
reactivated, and messaged. Every change goes through casemsg.workers.services (one transaction)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.contacts.status import statuses
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import queries, services
from casemsg.projects.models import Project
from casemsg.web.filters import WorkerFilterSet
from casemsg.web.forms import SendForm
from casemsg.web.forms_cases import WorkerForm
from casemsg.web.tables import WorkerTable
from casemsg.web.views.cases import RECENT_MESSAGES, send_from_form, with_unsent_texts
from casemsg.web.views.common import (
    attach_project,
    channel_views,
    found_or_404,
    paginate,
    project_or_404,
    query_without_page,
    staff_required,
    status_view,
    with_query,
)
from casemsg.workers import queries as worker_queries
from casemsg.workers import services as worker_services
from casemsg.workers.models import MobileWorker

WORKERS_PER_PAGE = 50
_FIELD_OF = {
    errors.USERNAME_REQUIRED: "username",
    errors.USERNAME_TAKEN: "username",
    errors.INVALID_PHONE_NUMBER: "phone_numbers",
    errors.NO_PHONE_NUMBER: "phone_numbers",
}


@staff_required
def worker_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    filters = WorkerFilterSet(request.GET, project)
    page = paginate(request, filters.results(), WORKERS_PER_PAGE)
    rows = list(page.object_list)
    attach_project(rows, project)
    for w, st in zip(rows, statuses(rows), strict=True):  # one batch for the page, as on the cases list
        w.channels = channel_views(st)
    context = {
        "project": project,
        "form": filters.form,
        "page": page,
        "query": query_without_page(request),
        "table": WorkerTable(rows, project),
    }
    template = "web/worker_results.html" if getattr(request, "htmx", False) else "web/workers.html"
    return render(request, template, context)


def _save(form: WorkerForm, project: Project, worker: MobileWorker | None) -> MobileWorker | None:
    """Create (no worker) or update through the one write path; None with the service's refusal on the form."""
    d = form.cleaned_data
    numbers: list = form.numbers()
    if not d.get("verified"):
        # plain numbers: a number kept keeps its verification, a new one starts unverified
        numbers = [n["number"] for n in numbers]
    change = worker_services.WorkerChange(
        username=d["username"],
        name=d.get("name", ""),
        phone_numbers=numbers,
        email=d.get("email", ""),
        time_zone=d.get("time_zone", ""),
        language_code=d.get("language_code", ""),
    )
    try:
        if worker is None:
            return worker_services.create_worker(project, change)
        return worker_services.update_worker(project, worker, change)
    except InputError as e:
        form.add_error(_FIELD_OF.get(e.code), f"{e.code}: {e.message}")
        return None


@staff_required
def worker_new(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = WorkerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        worker = _save(form, project, None)
        if worker is not None:
            flash.success(request, f"Mobile worker {worker.username} created.")
            return redirect(reverse("web:worker", args=[project.slug, worker.pk]))
    return render(request, "web/worker_form.html", {"project": project, "form": form})


@staff_required
def worker_detail(request: HttpRequest, slug: str, worker_id: int) -> HttpResponse:
    """The worker's page; it also takes its forms (POST with `action`): send, edit, deactivate, reactivate."""
    project = project_or_404(slug)
    worker = found_or_404(worker_queries.worker(project, worker_id))
    worker.project = project
    here = reverse("web:worker", args=[project.slug, worker.pk])
    form = SendForm()
    numbers = worker.phone_numbers or []
    edit = WorkerForm(
        initial={
            "username": worker.username,
            "name": worker.name,
            "phone_numbers": "\n".join(p["number"] for p in numbers),
            "verified": bool(numbers) and all(p.get("verified") for p in numbers),
            "email": worker.email,
            "time_zone": worker.time_zone,
            "language_code": worker.language_code,
        }
    )
    if request.method == "POST":
        action = request.POST.get("action", "send")
        if action in ("deactivate", "reactivate"):
            worker_services.update_worker(project, worker, worker_services.WorkerChange(active=action == "reactivate"))
            flash.success(request, f"{worker.username} {action}d.")
            return redirect(here)
        if action == "edit":
            edit = WorkerForm(request.POST)
            if edit.is_valid() and _save(edit, project, worker) is not None:
                flash.success(request, "Saved; the contact status below is up to date.")
                return redirect(here)
            worker.refresh_from_db()  # the page shows what is stored, the form what was typed
            worker.project = project
        elif action != "send":
            flash.error(request, "That form is not one of this page's; nothing was changed.")
            return redirect(here)
        else:
            form = SendForm(request.POST)
            if form.is_valid() and send_from_form(
                request,
                form,
                project,
                services.SendRequest(mobile_worker_id=worker.pk),
                recipient_name=worker.name,  # as the pipeline names a worker
            ):
                return redirect(here)
    st = statuses([worker])[0]
    recent = with_unsent_texts(
        project, queries.messages(project, queries.MessageFilter(worker_id=worker.pk))[:RECENT_MESSAGES]
    )
    return render(
        request,
        "web/worker.html",
        {
            "project": project,
            "worker": worker,
            "status": status_view(st),
            "recent": recent,
            "form": form,
            "edit": edit,
            "editing": request.method == "POST" and request.POST.get("action") == "edit",
            "preview_url": with_query(reverse("web:message_preview", args=[project.slug]), worker=worker.pk),
            "all_messages": with_query(reverse("web:messages", args=[project.slug]), worker=worker.pk),
        },
    )
