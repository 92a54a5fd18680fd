"""Broadcasts and conditional alerts: lists, a broadcast's form (create, edit) with its pre-flight
shown before saving, an alert's form (create, edit), each one's page with pause / resume / cancel and its
sends with their failures.

The forms (`casemsg.web.forms_scheduling`) build the body the API takes, through the scheduling area's one
declaration of it, and the pages hand it to the scheduling services, which validate the rest (`specs`): a
refused body shows the service's code and sentence on the form, the same words the API answers with. The
pre-flight is `casemsg.scheduling.preflight` on the same body, requested by htmx (`broadcast_preflight`)
or, without JavaScript, by the form's Preview button."""

from __future__ import annotations

from typing import Any, TypeGuard

from django import forms
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.scheduling import preflight, queries, services
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.web.forms_scheduling import AlertForm, BroadcastForm, alert_initial, broadcast_initial
from casemsg.web.views.common import error_view, found_or_404, paginate, project_or_404, staff_required

PER_PAGE = 50
SENDS_PER_PAGE = 50


def _refused(form: forms.Form, e: InputError) -> None:
    """The services' (or the declaration's) refusal, on the form: its code and sentence."""
    form.add_error(None, f"{e.code}: {e.message}")


# --------------------------------------------------------------------------------------------------
# The broadcast form
# --------------------------------------------------------------------------------------------------


def _preflight_context(form: BroadcastForm) -> dict[str, Any]:
    """The pre-flight of the form's body, or why there is none (the form's errors, the service's refusal)."""
    if not form.is_valid():
        return {"preflight": None, "form": form}
    try:
        result = preflight.preflight(form.project, form.body())
    except InputError as e:
        return {"preflight": None, "form": form, "refused": error_view(e.code, detail=e.message)}
    blocked = [(error_view(code), n) for code, n in result.blocked.items()]
    who = queries.describe_recipient_spec(form.body().get("recipients", form.fixed.get("recipients")))
    return {"preflight": result, "blocked": blocked, "form": form, "who": who}


def _form_page(request: HttpRequest, project: Project, b: Broadcast | None) -> HttpResponse:
    initial, fixed = broadcast_initial(b) if b is not None else ({}, {})
    form = BroadcastForm(request.POST or None, project=project, fixed=fixed, initial=initial)
    context: dict[str, Any] = {"project": project, "broadcast": b, "form": form, "fixed": fixed}
    if b is not None and "recipients" in fixed:  # kept as they are: shown in words, never as their JSON
        context["fixed_recipients_text"] = queries.describe_recipients(b)
    if request.method == "POST":
        if request.POST.get("action") == "preview":
            context.update(_preflight_context(form), show_preflight=True)
        elif form.is_valid():
            try:
                if b is None:
                    b = services.create_broadcast(project, form.body())
                    flash.success(request, f"Broadcast {b.pk} “{b.name}” created.")
                else:
                    b = services.update_broadcast(b, form.body())
                    flash.success(request, f"Broadcast {b.pk} saved.")
            except InputError as e:
                _refused(form, e)
            else:
                return redirect(reverse("web:broadcast", args=[project.slug, b.pk]))
    return render(request, "web/broadcast_form.html", context)


@staff_required
def broadcast_new(request: HttpRequest, slug: str) -> HttpResponse:
    return _form_page(request, project_or_404(slug), None)


@staff_required
def broadcast_edit(request: HttpRequest, slug: str, broadcast_id: int) -> HttpResponse:
    project = project_or_404(slug)
    b = found_or_404(queries.broadcast(project, broadcast_id))
    if b.status in (Broadcast.CANCELLED, Broadcast.DONE):
        flash.warning(request, f"Broadcast {b.pk} is {b.status}: it can no longer change.")
        return redirect(reverse("web:broadcast", args=[project.slug, b.pk]))
    return _form_page(request, project, b)


@staff_required
@require_POST
def broadcast_preflight(request: HttpRequest, slug: str) -> HttpResponse:
    """The pre-flight panel of the form (htmx swaps it in): nothing is saved."""
    project = project_or_404(slug)
    form = BroadcastForm(request.POST, project=project)
    return render(request, "web/broadcast_preflight.html", {"project": project, **_preflight_context(form)})


# --------------------------------------------------------------------------------------------------
# The conditional alert form
# --------------------------------------------------------------------------------------------------


def _alert_form_page(request: HttpRequest, project: Project, a: ConditionalAlert | None) -> HttpResponse:
    form = AlertForm(request.POST or None, project=project, initial=alert_initial(a) if a is not None else None)
    if request.method == "POST" and form.is_valid():
        try:
            if a is None:
                a = services.create_alert(project, form.body())
                flash.success(request, f"Alert {a.pk} “{a.name}” created; its run over the cases is under way.")
            else:
                a = services.update_alert(a, form.body())
                flash.success(request, f"Alert {a.pk} saved.")
        except InputError as e:
            _refused(form, e)
        else:
            return redirect(reverse("web:alert", args=[project.slug, a.pk]))
    return render(request, "web/alert_form.html", {"project": project, "alert": a, "form": form})


@staff_required
def alert_new(request: HttpRequest, slug: str) -> HttpResponse:
    return _alert_form_page(request, project_or_404(slug), None)


@staff_required
def alert_edit(request: HttpRequest, slug: str, alert_id: int) -> HttpResponse:
    project = project_or_404(slug)
    return _alert_form_page(request, project, found_or_404(queries.alert(project, alert_id)))


# --------------------------------------------------------------------------------------------------
# Lists and detail pages
# --------------------------------------------------------------------------------------------------


@staff_required
def broadcast_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    status = request.GET.get("status") or None
    if status not in (None, *queries.BROADCAST_STATUSES):
        status = None
    page = paginate(request, queries.broadcasts(project, status), PER_PAGE)
    return render(
        request,
        "web/broadcasts.html",
        {
            "project": project,
            "page": page,
            "rows": queries.summaries(page.object_list),
            "status": status or "",
            "statuses": queries.BROADCAST_STATUSES,
            "query": f"status={status}" if status else "",
        },
    )


SEND_STATUSES = ("queued", "sending", "sent", "delivered", "failed")


def _sends_context(request: HttpRequest, project: Project, owner: Broadcast | ConditionalAlert) -> dict[str, Any]:
    """What broadcast_sends.html shows: the failures by reason, one page of the sends (`?status=` filters)."""
    status = request.GET.get("status") or None
    if status not in SEND_STATUSES:
        status = None
    page = paginate(request, queries.sends(project, owner, status), SENDS_PER_PAGE)
    return {
        "summary": queries.summary(owner),
        "ended": queries.ended(owner, project.default_time_zone),
        "failures": [(error_view(code), n) for code, n in queries.failures(owner)],
        "page": page,
        "send_status": status or "",
        "send_statuses": SEND_STATUSES,
        "sends_url": request.path,
        "query": f"status={status}" if status else "",
    }


@staff_required
def broadcast_detail(request: HttpRequest, slug: str, broadcast_id: int) -> HttpResponse:
    project = project_or_404(slug)
    b = found_or_404(queries.broadcast(project, broadcast_id))
    if request.method == "POST":
        action = request.POST.get("action")
        change = {"pause": services.pause_broadcast, "resume": services.resume_broadcast}.get(action or "")
        if action == "cancel":
            change = services.cancel_broadcast
        if change is not None:
            try:
                change(b)
            except InputError as e:
                flash.error(request, f"{e.code}: {e.message}")
            else:
                flash.success(request, f"Broadcast {b.pk} is now {b.status}.")
        return redirect(reverse("web:broadcast", args=[project.slug, b.pk]))
    return render(
        request, "web/broadcast.html", {"project": project, "broadcast": b, **_sends_context(request, project, b)}
    )


def _is_alert(owner: Broadcast | ConditionalAlert) -> TypeGuard[ConditionalAlert]:
    return isinstance(owner, ConditionalAlert)


@staff_required
def alert_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    page = paginate(request, queries.alerts(project), PER_PAGE)
    rows = [(s, queries.progress(s.owner)) for s in queries.summaries(page.object_list) if _is_alert(s.owner)]
    return render(request, "web/alerts.html", {"project": project, "page": page, "rows": rows, "query": ""})


@staff_required
def alert_detail(request: HttpRequest, slug: str, alert_id: int) -> HttpResponse:
    project = project_or_404(slug)
    a = found_or_404(queries.alert(project, alert_id))
    if request.method == "POST":
        change = {"pause": services.pause_alert, "resume": services.resume_alert}.get(request.POST.get("action") or "")
        if change is not None:
            change(a)
            flash.success(request, f"Alert {a.pk} is now {a.status}.")
        return redirect(reverse("web:alert", args=[project.slug, a.pk]))
    return render(
        request,
        "web/alert.html",
        {"project": project, "alert": a, "run": queries.progress(a), **_sends_context(request, project, a)},
    )
