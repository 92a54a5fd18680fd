from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from casemsg.cases import queries as case_queries
from casemsg.cases.models import Case
from casemsg.contacts.status import statuses
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import queries as message_queries
from casemsg.messaging import services
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.scheduling import instances as schedules
from casemsg.surveys import consent as survey_consent
from casemsg.web.forms import CaseFilterForm, SendForm
from casemsg.web.views.common import (
    attach_project,
    channel_views,
    error_view,
    paginate,
    project_or_404,
    query_without_page,
    staff_required,
    status_view,
    valid_filters,
    with_query,
)

CASES_PER_PAGE = 50
RECENT_MESSAGES = 50
UPCOMING_SENDS = 10


@staff_required
def case_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = CaseFilterForm(request.GET or None, case_types=case_queries.case_types(project))
    data = valid_filters(form)
    state = data.get("state") or "open"
    f = case_queries.CaseFilter(
        case_type=data.get("type") or None,
        closed=None if state == "all" else state == "closed",
        search=data.get("q") or None,
        order="recently_modified",
    )
    page = paginate(request, case_queries.cases(project, f), CASES_PER_PAGE)
    rows = list(page.object_list)
    attach_project(rows, project)
    # One batch for the whole page: statuses() loads registry entries, opt-outs and gateways in a few
    # queries instead of a few per case.
    sts = statuses(rows)
    return render(
        request,
        "web/cases.html",
        {
            "project": project,
            "form": form,
            "page": page,
            "query": query_without_page(request),
            "rows": [(c, channel_views(st)) for c, st in zip(rows, sts, strict=True)],
        },
    )


def _case(project: Project, case_id: str) -> Case:
    return get_object_or_404(Case, project=project, case_id=case_id)


@staff_required
def case_detail(request: HttpRequest, slug: str, case_id: str) -> HttpResponse:
    project = project_or_404(slug)
    case = _case(project, case_id)
    case.project = project
    form = SendForm()
    if request.method == "POST":
        action = request.POST.get("action", "send")
        if action == "opt_in":
            try:
                req = survey_consent.request_opt_in(project, case)
            except InputError as e:
                flash.error(request, f"Opt-in request not sent: {e.code} — {e.message}")
            else:
                flash.success(request, f"Opt-in request sent to {req.phone_number}.")
            return redirect(reverse("web:case", args=[project.slug, case.case_id]))
        form = SendForm(request.POST)
        if form.is_valid() and send_from_form(request, form, project, services.SendRequest(case_id=case.case_id)):
            return redirect(reverse("web:case", args=[project.slug, case.case_id]))
    st = statuses([case])[0]
    parent = Case.objects.filter(project=project, case_id=case.parent_id).first() if case.parent_id else None
    recent = message_queries.messages(project, message_queries.MessageFilter(case_id=case.case_id))[:RECENT_MESSAGES]
    return render(
        request,
        "web/case.html",
        {
            "project": project,
            "case": case,
            "parent": parent,
            "status": status_view(st),
            "properties": sorted((case.properties or {}).items()),
            "recent": recent,
            # the next messages its alerts and broadcasts will send it, rendered as they would be now
            "upcoming": schedules.schedule_for_case(case, UPCOMING_SENDS),
            "form": form,
            "all_messages": with_query(reverse("web:messages", args=[project.slug]), case=case.case_id),
            "simulator": with_query(reverse("web:simulator", args=[project.slug]), case=case.case_id),
        },
    )


def send_from_form(request: HttpRequest, form: SendForm, project: Project, req: services.SendRequest) -> bool:
    """Send through messaging.services (the API's path). Returns False, with the problem added to the
    form, when the request itself is refused; a message that fails its contact checks is still created
    (it is in the log with its error), so that is a success with a warning."""
    req.channel = form.cleaned_data["channel"]
    req.text = form.cleaned_data["text"]
    req.subject = form.cleaned_data["subject"] if req.channel == "email" else ""
    try:
        msg = services.send(project, req, source="api")
    except InputError as e:
        field = "text" if e.code in (errors.MESSAGE_BLANK, errors.CANNOT_RENDER_MESSAGE) else None
        form.add_error(field, f"{e.code}: {e.message}")
        return False
    msg.refresh_from_db(fields=["status", "error", "error_detail"])
    if msg.status == Message.FAILED:
        ev = error_view(msg.error, detail=msg.error_detail)
        flash.warning(request, f"Message {msg.pk} not sent: {ev.code} — {ev.title}. {ev.detail or ev.fix}")
    else:
        flash.success(request, f"Message {msg.pk} {msg.status}.")
    return True
