"""Keywords: the project's list, a form to create or change one, and delete.

The form hands `KeywordFields` to casemsg.inbound.services, whose checks (one word, not a reserved word,
each action's own rules from `keywords.ACTIONS`, the reply templates) are the API's: a refusal is shown on
the form in the same words. Editors change keywords; viewers only read them."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from casemsg.core.errors import InputError
from casemsg.inbound import services
from casemsg.inbound.keywords import ACTIONS
from casemsg.inbound.models import Keyword
from casemsg.projects.models import Project
from casemsg.web.forms_config import KEYWORD_REFUSALS, KeywordForm, show_refusal
from casemsg.web.views.common import project_or_404, staff_required

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
    rows = services.list_keywords(project)
    surveys = dict(project.surveys.values_list("pk", "name"))
    for k in rows:
        k.survey_name = surveys.get(int(k.survey)) if k.survey.isdigit() else None  # type: ignore[attr-defined]
    return render(
        request,
        "web/keyword_list.html",
        {"project": project, "keywords": rows, "actions": ACTIONS, "can_edit": role_allows(request, "editor")},
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
                show_refusal(form, exc, KEYWORD_REFUSALS)
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
    return _form_page(request, project, get_object_or_404(Keyword, project=project, pk=keyword_id))
