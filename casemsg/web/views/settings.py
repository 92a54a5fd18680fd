"""Project settings (an owner page): the form of GET/PATCH …/settings.

The form turns what was typed into the settings API's body and projects.services.update_settings checks it
(all or nothing, the same sentences as the API's 422): one set of rules for the page, the API and the CLI."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.core.errors import InputError
from casemsg.projects import services
from casemsg.web.forms_config import SETTINGS_REFUSALS, SettingsForm, show_refusal
from casemsg.web.views.common import project_or_404, staff_required
from casemsg.web.views.keywords import require_role, role_allows


@staff_required
def settings_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    if request.method == "POST":
        require_role(request, "owner")
        form = SettingsForm(request.POST)
        if form.is_valid():
            try:
                services.update_settings(project, form.changes())
            except InputError as exc:
                show_refusal(form, exc, SETTINGS_REFUSALS)
            else:
                flash.success(request, "Settings saved.")
                return redirect(reverse("web:settings", args=[project.slug]))
    else:
        form = SettingsForm(initial=SettingsForm.initial_from(services.get_settings(project)))
    ctx = {"project": project, "form": form, "can_edit": role_allows(request, "owner")}
    return render(request, "web/settings_form.html", ctx)
