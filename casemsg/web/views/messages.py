"""The message log (date range in the project's time zone, search, filters, CSV export, a failed
message's would-be text, resend) and the send form's live preview (the text rendered for the contact,
its unknown fields, the character and SMS segment count)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from casemsg.cases import queries as case_queries
from casemsg.cases.models import Case
from casemsg.contacts import status as contact_status
from casemsg.core import spreadsheet, timezones
from casemsg.core.errors import InputError
from casemsg.gateways import queries as gateway_queries
from casemsg.messaging import render as templates
from casemsg.messaging import segments, services
from casemsg.messaging.models import Message
from casemsg.messaging.reports import message_source
from casemsg.projects.models import Project
from casemsg.web.filters import MessageFilterSet
from casemsg.web.forms_cases import MessagePreviewForm
from casemsg.web.tables import MessageTable
from casemsg.web.views.cases import with_unsent_texts
from casemsg.web.views.common import error_view, paginate, project_or_404, query_without_page, staff_required
from casemsg.workers import queries as worker_queries

MESSAGES_PER_PAGE = 50  # drawing the rows is most of the page's time (bench/web_lists.py), not the SQL
EXPORT_COLUMNS = [
    "id",
    "created_on",
    "created_local",
    "direction",
    "channel",
    "status",
    "error",
    "error_detail",
    "case_id",
    "mobile_worker",
    "to",
    "gateway",
    "segments",
    "subject",
    "text",
    "sent_on",
    "source",  # where it came from: broadcast, alert, survey, keyword, api, person, system; inbound
    "source_name",  # the broadcast's, the alert's or the person's name
]


def _zone(project) -> str:
    zone = project.default_time_zone
    return zone if timezones.is_valid(zone) else "UTC"


@staff_required
def message_log(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    filters = MessageFilterSet(request.GET, project)
    page = paginate(request, filters.results(), MESSAGES_PER_PAGE)
    # The text a failed message would have had, rendered for the whole page at once.
    rows = with_unsent_texts(project, page.object_list)
    d = filters.valid()
    # The heading names the case or worker the log is for (when it is one of this project's).
    case = case_queries.case(project, d["case"]) if d.get("case") else None
    worker = worker_queries.worker(project, d["worker"]) if d.get("worker") else None
    query = query_without_page(request)
    context = {
        "project": project,
        "zone": _zone(project),
        "form": filters.form,
        "page": page,
        "query": query,
        "table": MessageTable(rows, project, request, can_resend=getattr(request, "project_role", None) != "viewer"),
        "case": case,
        "worker": worker,
        "csv_url": reverse("web:messages_csv", args=[project.slug]) + (f"?{query}" if query else ""),
    }
    template = "web/message_results.html" if getattr(request, "htmx", False) else "web/messages.html"
    return render(request, template, context)


@staff_required
def message_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    """The filtered log as CSV, streamed (rows read in chunks; the case and worker come joined)."""
    project = project_or_404(slug)
    qs = MessageFilterSet(request.GET, project).results()
    zone = ZoneInfo(_zone(project))

    def rows() -> Iterator[list[object]]:
        for m in qs.iterator(chunk_size=2000):
            local = m.created_on.astimezone(zone).isoformat()
            yield [
                m.pk,
                m.created_on.isoformat(),
                local,
                m.direction,
                m.channel,
                m.status,
                m.error,
                m.error_detail,
                m.case.case_id if m.case else "",
                m.worker.username if m.worker else "",
                m.to,
                m.gateway_name,
                m.segments,
                m.subject,
                m.text,
                m.sent_on.isoformat() if m.sent_on else "",
                *message_source(m),
            ]

    # every cell made safe for a spreadsheet (a message's text is whatever someone typed or texted)
    resp = StreamingHttpResponse(spreadsheet.csv_lines(EXPORT_COLUMNS, rows()), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="messages-{project.slug}.csv"'
    return resp


@staff_required
@require_POST
def message_resend(request: HttpRequest, slug: str, message_id: int) -> HttpResponse:
    """Queue a failed message again through the one pipeline; back to the page the button was on."""
    project = project_or_404(slug)
    try:
        msg = services.resend(project, message_id)
    except InputError as e:
        flash.error(request, f"Not resent: {e.code} — {e.message}")
    else:
        msg.refresh_from_db(fields=["status", "error", "error_detail"])
        if msg.status == Message.FAILED:
            ev = error_view(msg.error, detail=msg.error_detail)
            flash.warning(request, f"Resent as message {msg.pk}, which failed too: {ev.code} — {ev.detail or ev.fix}")
        else:
            flash.success(request, f"Resent as message {msg.pk} ({msg.status}).")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) or not back.startswith("/"):
        back = reverse("web:messages", args=[project.slug])
    return redirect(back)


@staff_required
def message_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """The send form's live preview (htmx, as the person types): the text rendered for the contact, the
    fields it does not have, the length and SMS segments of what would go out."""
    project = project_or_404(slug)
    form = MessagePreviewForm(request.GET)
    form.is_valid()
    d = form.cleaned_data
    text, subject = d.get("text") or "", d.get("subject") or ""
    channel = d.get("channel") or "sms"
    case = worker = None
    if request.GET.get("case"):
        case = case_queries.case(project, request.GET["case"])
    elif request.GET.get("worker", "").isdigit():
        worker = worker_queries.worker(project, int(request.GET["worker"]))
    ctx = templates.Context(case=case, recipient_name=(case.name if case else worker.name if worker else ""))
    if case is not None:
        ctx.parent = case_queries.parent(case)
    problem = templates.check_template(text) or (templates.check_template(subject) if subject else None)
    rendered, unknown = text, []
    if problem is None and (case is not None or worker is not None):
        rendered = templates.render(text, ctx)
        unknown = templates.unknown_fields(text, ctx) + templates.unknown_fields(subject, ctx)
    single, part = segments.limits(rendered)
    whatsapp = _whatsapp_rule(project, case, d.get("whatsapp_template") or "") if channel == "whatsapp" else None
    return render(
        request,
        "web/message_preview.html",
        {
            "project": project,
            "channel": channel,
            "problem": problem,
            "rendered": rendered,
            "subject": templates.render(subject, ctx) if subject and problem is None else subject,
            "unknown": unknown,
            "contact": case or worker,
            "contact_name": case.name if case else (worker.name or worker.username) if worker else "",
            "length": segments.length(rendered),
            "encoding": segments.encoding(rendered),
            "segments": segments.count(rendered),
            "single": single,
            "part": part,
            "whatsapp": whatsapp,
        },
    )


def _whatsapp_rule(project: Project, case: Case | None, template: str) -> dict[str, Any]:
    """What the send path would do for this contact on WhatsApp now: inside the window free text, outside
    it the named template if it is approved (docs/whatsapp.md)."""
    out: dict[str, Any] = {"template": template.strip(), "open_until": None, "problem": None, "approved": False}
    if case is not None:
        st = contact_status.status(case)
        out["open_until"] = (
            st.window_open_until if st.window_open_until and st.window_open_until > timezone.now() else None
        )
        out["problem"] = st.whatsapp.error.code if st.whatsapp.error else None
    if out["template"]:
        out["approved"] = any(
            t.name == out["template"] and t.status == "APPROVED" for t in gateway_queries.whatsapp_templates(project)
        )
    return out
