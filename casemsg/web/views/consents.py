"""The consent ledger page and its CSV download (the same rows and columns as
`casemsg consents export`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from casemsg.consent import ledger
from casemsg.core import spreadsheet
from casemsg.web.forms import ConsentFilterForm
from casemsg.web.views.common import paginate, project_or_404, query_without_page, staff_required, valid_filters

ROWS_PER_PAGE = 100


def _filter(form: ConsentFilterForm, newest_first: bool) -> ledger.ConsentFilter:
    data = valid_filters(form)
    return ledger.ConsentFilter(
        kind=data.get("kind") or None, phone_number=data.get("phone_number") or None, newest_first=newest_first
    )


@staff_required
def consent_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = ConsentFilterForm(request.GET or None)
    # Newest first on the page (what just happened matters most); the export keeps the ledger's order.
    page = paginate(request, ledger.consents(project, _filter(form, newest_first=True)), ROWS_PER_PAGE)
    return render(
        request,
        "web/consents.html",
        {"project": project, "form": form, "page": page, "query": query_without_page(request)},
    )


@staff_required
def consent_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    project = project_or_404(slug)
    form = ConsentFilterForm(request.GET or None)
    qs = ledger.consents(project, _filter(form, newest_first=False))
    rows = (ledger.csv_row(r) for r in qs.iterator(chunk_size=2000))
    resp = StreamingHttpResponse(spreadsheet.csv_lines(ledger.COLUMNS, rows), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="consents-{project.slug}.csv"'
    return resp
