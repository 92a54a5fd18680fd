"""Groups of cases: the list (each with its members counted now), the form (create, edit) with its condition
builder and a preview of who a dynamic definition holds before it is saved, and a group's page — its members
now, and for a static group adding cases by id, importing a CSV and removing members; deleting the group.

The form builds the body the API takes (`casemsg.groups.services.GroupIn`) and hands it to the groups
services: a refusal (a name taken, a bad condition named by its position) is shown on the form in the API's
words. Editors change groups; viewers read them (casemsg.web.access)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.groups import queries, services
from casemsg.groups.models import Group
from casemsg.projects.models import Project
from casemsg.scheduling import queries as schedule_queries
from casemsg.scheduling import services as scheduling
from casemsg.web.forms_groups import GroupForm, ImportForm, MembersForm, MessageForm, group_initial
from casemsg.web.views.common import error_view, found_or_404, paginate, project_or_404, staff_required
from casemsg.web.views.picker import picker

PER_PAGE = 50
MEMBERS_PER_PAGE = 50
_FIELDS = {errors.GROUP_EXISTS: "name", errors.CASE_TYPE_REQUIRED: "case_type"}


def _group(project: Project, group_id: int) -> Group:
    return found_or_404(queries.group(project, group_id))


def _refused(form: GroupForm, e: InputError) -> None:
    field = _FIELDS.get(e.code)
    form.add_error(field if field in form.fields else None, f"{e.code}: {e.message}")


@staff_required
def group_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    page = paginate(request, queries.groups(project), PER_PAGE)
    rows = list(page.object_list)
    counts = queries.member_counts(rows)
    return render(
        request,
        "web/groups.html",
        {
            "project": project,
            "page": page,
            "rows": [(g, counts[g.pk], queries.describe(g)) for g in rows],
            "query": "",
        },
    )


def _preview_context(project: Project, form: GroupForm) -> dict[str, Any]:
    """The preview of the form's definition, or why there is none."""
    if not form.is_valid():
        return {"preview": None, "form": form}
    body = form.body()
    if (form.group.kind if form.group is not None else body.get("kind")) != Group.DYNAMIC:
        return {"preview": None, "form": form, "static": True}
    try:
        found, summary = services.preview_definition(project, {**body, "kind": Group.DYNAMIC})
    except InputError as e:
        return {"preview": None, "form": form, "refused": error_view(e.code, detail=e.message)}
    return {"preview": found, "summary": summary, "form": form}


def _form_page(request: HttpRequest, project: Project, g: Group | None) -> HttpResponse:
    form = GroupForm(
        request.POST or None, project=project, group=g, initial=group_initial(g) if g is not None else None
    )
    context: dict[str, Any] = {"project": project, "group": g, "form": form}
    if request.method == "POST":
        if request.POST.get("action") == "preview":
            context.update(_preview_context(project, form), show_preview=True)
        elif form.is_valid():
            try:
                if g is None:
                    g = services.create_group(project, form.body())
                    flash.success(request, f"Group “{g.name}” created.")
                else:
                    g = services.update_group(g, form.body())
                    flash.success(request, f"Group “{g.name}” saved.")
            except InputError as e:
                _refused(form, e)
            else:
                return redirect(reverse("web:group", args=[project.slug, g.pk]))
    return render(request, "web/group_form.html", context)


@staff_required
def group_new(request: HttpRequest, slug: str) -> HttpResponse:
    return _form_page(request, project_or_404(slug), None)


@staff_required
def group_edit(request: HttpRequest, slug: str, group_id: int) -> HttpResponse:
    project = project_or_404(slug)
    return _form_page(request, project, _group(project, group_id))


@staff_required
@require_POST
def group_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """The preview panel of the form (htmx swaps it in): nothing is saved."""
    project = project_or_404(slug)
    group_id = request.POST.get("group_id") or ""
    g = _group(project, int(group_id)) if group_id.isdigit() else None
    form = GroupForm(request.POST, project=project, group=g)
    return render(request, "web/group_preview.html", {"project": project, **_preview_context(project, form)})


@staff_required
def group_detail(request: HttpRequest, slug: str, group_id: int) -> HttpResponse:
    """The group's page. It also takes its forms (POST, with `action`): add, import, remove, delete."""
    project = project_or_404(slug)
    g = _group(project, group_id)
    here = reverse("web:group", args=[project.slug, g.pk])
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "delete":
                if request.POST.get("confirm") != "yes":
                    return redirect(here + "?confirm=delete")
                services.delete_group(g)
                flash.success(request, f"Group “{g.name}” deleted; its cases stay.")
                return redirect(reverse("web:groups", args=[project.slug]))
            if action == "add":
                add = MembersForm(request.POST)
                if add.is_valid():
                    _report(request, services.add_members(g, add.ids()))
                else:
                    flash.error(request, "Give the case ids to add.")
            elif action == "import":
                upload = ImportForm(request.POST, request.FILES)
                if upload.is_valid():
                    f = upload.cleaned_data["file"]
                    if f.size > services.MAX_IMPORT_BYTES:
                        raise InputError(
                            errors.FILE_TOO_LARGE,
                            f"A members file may be at most {services.MAX_IMPORT_BYTES:,} bytes.",
                            413,
                        )
                    _report(request, services.import_members(g, f.read()))
                else:
                    flash.error(request, "Choose a CSV file to import.")
            elif action == "remove":
                _report(request, services.remove_members(g, request.POST.getlist("case_id")))
            elif action == "message":
                message = MessageForm(request.POST)
                if not message.is_valid():
                    flash.error(request, "Write the message's text.")
                    return redirect(here)
                b = scheduling.message_now(
                    project, {"recipients": {"group": g.pk}, "content": {"text": message.cleaned_data["text"]}}
                )
                n = schedule_queries.summary(b).recipients
                flash.success(request, f"Message queued for the group's {n:,} open case{'s' if n != 1 else ''}.")
                return redirect(reverse("web:broadcast", args=[project.slug, b.pk]))
            else:
                flash.error(request, "That form is not one of this page's; nothing was changed.")
        except InputError as e:
            flash.error(request, f"{e.code}: {e.message}")
        return redirect(here)
    page = paginate(request, queries.members(g), MEMBERS_PER_PAGE)
    return render(
        request,
        "web/group.html",
        {
            "project": project,
            "group": g,
            "summary": queries.describe(g),
            "page": page,
            "members": page.object_list,
            "query": "",
            "add_form": MembersForm(),
            "case_picker": picker(project, "case_ids", label="Find a case", help_text="", key="pick_one"),
            "import_form": ImportForm(),
            "message_form": MessageForm(),
            "confirm_delete": request.GET.get("confirm") == "delete",
            "cases_url": reverse("web:cases", args=[project.slug]) + f"?group={g.pk}&state=all",
        },
    )


def _report(request: HttpRequest, result: services.MembersResult) -> None:
    text = f"{result.added:,} added, {result.removed:,} removed, {result.unchanged:,} unchanged"
    if result.not_found:
        ids = ", ".join(result.not_found_ids[:10])
        flash.warning(request, f"{text}; {result.not_found:,} case ids not found: {ids}")
    else:
        flash.success(request, text + ".")
