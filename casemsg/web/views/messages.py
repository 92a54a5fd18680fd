from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from casemsg.cases.models import Case
from casemsg.messaging import queries
from casemsg.web.forms import MessageFilterForm
from casemsg.web.views.common import paginate, project_or_404, query_without_page, staff_required, valid_filters
from casemsg.workers.models import MobileWorker

MESSAGES_PER_PAGE = 100


@staff_required
def message_log(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = MessageFilterForm(request.GET or None)
    data = valid_filters(form)
    f = queries.MessageFilter(
        status=data.get("status") or None,
        direction=data.get("direction") or None,
        channel=data.get("channel") or None,
        error=data.get("error") or None,
        case_id=data.get("case") or None,
        worker_id=data.get("worker"),
    )
    page = paginate(request, queries.messages(project, f), MESSAGES_PER_PAGE)
    # The heading names the case or worker the log is for (when it is one of this project's).
    case = Case.objects.filter(project=project, case_id=f.case_id).first() if f.case_id else None
    worker = MobileWorker.objects.filter(project=project, pk=f.worker_id).first() if f.worker_id else None
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
