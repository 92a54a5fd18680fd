from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from casemsg.cases.models import Case
from casemsg.messaging.models import Message
from casemsg.web.forms import MessageFilterForm
from casemsg.web.views.common import paginate, project_or_404, query_without_page, staff_required, valid_filters
from casemsg.workers.models import MobileWorker

MESSAGES_PER_PAGE = 100


@staff_required
def message_log(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = MessageFilterForm(request.GET or None)
    data = valid_filters(form)
    qs = Message.objects.filter(project=project)
    for f in ("status", "error", "direction", "channel"):
        if data.get(f):
            qs = qs.filter(**{f: data[f]})
    case = worker = None
    if data.get("case"):
        # Looked up within the project, so a case id of another project filters to nothing.
        case = Case.objects.filter(project=project, case_id=data["case"]).first()
        qs = qs.filter(case=case) if case else qs.none()
    if data.get("worker"):
        worker = MobileWorker.objects.filter(project=project, pk=data["worker"]).first()
        qs = qs.filter(worker=worker) if worker else qs.none()
    page = paginate(request, qs.select_related("case", "worker").order_by("-created_on", "-pk"), MESSAGES_PER_PAGE)
    return render(
        request,
        "web/messages.html",
        {
            "project": project,
            "form": form,
            "page": page,
            "query": query_without_page(request),
            "case": case,
            "worker": worker,
        },
    )
