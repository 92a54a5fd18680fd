"""API keys (an owner page): the project's keys by prefix, name and scopes, a new key (with the scopes
chosen) shown once, revoke. Issuing and revoking are recorded in the settings' audit log.

Keys are stored hashed (casemsg.projects.services, as `casemsg project key|keys|revoke-key` and the API's
…/keys use): the plain key exists only in the answer to the POST that created it, which no cache keeps."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects import services
from casemsg.web.forms_config import ApiKeyForm, show_refusal
from casemsg.web.views.common import project_or_404, staff_required
from casemsg.web.views.keywords import require_role, role_allows


@staff_required
def api_keys(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST":
        require_role(request, "owner")
        revoke = request.POST.get("revoke")
        if revoke is not None:
            try:
                row = services.revoke_key(project, int(revoke) if revoke.isdigit() else 0)
            except InputError as exc:
                flash.error(request, exc.message)
            else:
                flash.success(request, f"Key {row.prefix}… revoked: it stops working at once.")
            return redirect(reverse("web:api_keys", args=[project.slug]))
        if form.is_valid():
            try:
                row, plain = services.issue_key(project, form.cleaned_data["name"], form.cleaned_data["scopes"])
            except InputError as exc:
                show_refusal(form, exc, {"A key's name": "name", errors.INVALID_SCOPE: "scopes"})
            else:
                new_key = {"row": row, "key": plain}
                form = ApiKeyForm()
    ctx = {
        "project": project,
        "form": form,
        "keys": services.list_keys(project),
        "new_key": new_key,
        "can_edit": role_allows(request, "owner"),
    }
    response = render(request, "web/keys_list.html", ctx)
    add_never_cache_headers(response)  # the page may hold a plain key
    return response
