"""Keywords: the project's list (its surveys' keywords too, read-only), a form to create or change one, and
delete.

The form is built from each action's declared parameters (casemsg.inbound.actions) and hands
`KeywordFields` to casemsg.inbound.services, whose checks (one word, not a reserved word, each action's own
rules, the reply templates) are the API's: a refusal is shown on the form in the same words, on the field
it is about. Editors change keywords; viewers only read them."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.core.errors import InputError
from casemsg.inbound import services
from casemsg.inbound.actions.registry import ACTIONS
from casemsg.inbound.models import Keyword
from casemsg.projects.models import Project
from casemsg.web.forms_config import KeywordForm
from casemsg.web.views.common import found_or_404, project_or_404, staff_required

_RANKS = {"viewer": 1, "editor": 2, "owner": 3}


def role_allows(request: HttpRequest, needed: str) -> bool:
    """Whether the user's role in this page's project (set by the roles middleware as
    `request.project_role`) reaches `needed`. Unset means no role table applies: allowed."""
    role = getattr(request, "project_role", None)
    return role is None or _RANKS.get(role, 0) >= _RANKS[needed]


def require_role(request: HttpRequest, needed: str) -> None:
    """A change (POST) from a role below `needed` is refused, whatever the page showed."""
    if not role_allows(request, needed):
        raise PermissionDenied(f"This needs the {needed} role in the project.")


@staff_required
def keyword_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    rows = services.keyword_rows(project)
    return render(
        request,
        "web/keyword_list.html",
        {"project": project, "rows": rows, "actions": ACTIONS, "can_edit": role_allows(request, "editor")},
    )


def _form_page(request: HttpRequest, project: Project, k: Keyword | None) -> HttpResponse:
    if request.method == "POST":
        require_role(request, "editor")
        form = KeywordForm(request.POST, project=project, keyword=k)
        if request.POST.get("delete") and k is not None:
            services.delete_keyword(project, k.pk)
            flash.success(request, f"Keyword {k.keyword} deleted.")
            return redirect(reverse("web:keywords", args=[project.slug]))
        if form.is_valid():
            try:
                if k is None:
                    k = services.create_keyword(project, form.fields_for_service())
                    flash.success(request, f"Keyword {k.keyword} created.")
                else:
                    k = services.update_keyword(project, k.pk, form.fields_for_service())
                    flash.success(request, f"Keyword {k.keyword} saved.")
            except InputError as exc:
                form.show_refusal(exc)
            else:
                return redirect(reverse("web:keywords", args=[project.slug]))
    else:
        form = KeywordForm(project=project, keyword=k)
    context = {"project": project, "keyword": k, "form": form, "can_edit": role_allows(request, "editor")}
    return render(request, "web/keyword_form.html", context)


@staff_required
def keyword_new(request: HttpRequest, slug: str) -> HttpResponse:
    return _form_page(request, project_or_404(slug), None)


@staff_required
def keyword_edit(request: HttpRequest, slug: str, keyword_id: int) -> HttpResponse:
    project = project_or_404(slug)
    return _form_page(request, project, found_or_404(services.find_keyword(project, keyword_id)))
