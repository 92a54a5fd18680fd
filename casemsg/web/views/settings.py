"""Project settings (an owner page): the form of GET/PATCH …/settings, and the settings' audit log (owners
only; its CSV download).

The form turns what was typed into the settings API's body and projects.services.update_settings checks it
(all or nothing, the same sentences as the API's 422): one set of rules for the page, the API and the CLI.
Only an owner may save, so only an owner may weaken a legal rule here; every change is in the audit log,
named `user <username>`."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.core.errors import InputError
from casemsg.projects import queries, services
from casemsg.web.forms_config import SETTINGS_REFUSALS, SettingsForm, show_refusal
from casemsg.web.views.common import paginate, project_or_404, staff_required
from casemsg.web.views.keywords import require_role, role_allows


@staff_required
def settings_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    if request.method == "POST":
        require_role(request, "owner")
        form = SettingsForm(request.POST)
        if form.is_valid():
            try:
                # (the access table lets only owners post here)
                services.update_settings(project, form.changes(), may_weaken=role_allows(request, "owner"))
            except InputError as exc:
                show_refusal(form, exc, SETTINGS_REFUSALS)
            else:
                flash.success(request, "Settings saved.")
                return redirect(reverse("web:settings", args=[project.slug]))
    else:
        form = SettingsForm(initial=SettingsForm.initial_from(services.get_settings(project)))
    ctx = {"project": project, "form": form, "can_edit": role_allows(request, "owner")}
    return render(request, "web/settings_form.html", ctx)


AUDIT_PER_PAGE = 50


@staff_required
def settings_audit(request: HttpRequest, slug: str) -> HttpResponse:
    """Who changed which setting or API key, when, from what to what: newest first (owners only)."""
    project = project_or_404(slug)
    page = paginate(request, queries.audit_log(project), AUDIT_PER_PAGE)
    for e in page.object_list:
        e.before_text, e.after_text = queries.shown(e.before), queries.shown(e.after)
    return render(request, "web/settings_audit.html", {"project": project, "page": page, "query": ""})


@staff_required
def settings_audit_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    project = project_or_404(slug)
    entries = queries.audit_log(project).iterator(chunk_size=2000)
    resp = StreamingHttpResponse(queries.csv_lines(entries), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="audit-{project.slug}.csv"'
    return resp
