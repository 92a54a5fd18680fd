"""The reports: the messaging history by source (broadcast, alert, survey, keyword, API, a person by name, the
messages received) by status and error per day, charted; each broadcast's and alert's delivery report (per day
it sent on: sent, delivered, failed by code); the consent and opt-out report; a survey's answers (one row per
session, one column per question). Every table downloads as CSV (the answers as .xlsx too), streamed, every
cell spreadsheet-safe (casemsg.core.spreadsheet).

The counts come from `casemsg.messaging.reports` (a daily roll-up plus a live count of the days not rolled up:
the same numbers as the message log), `casemsg.consent.reports` and `casemsg.surveys.exports`. Days are the
project's (its time zone, named on each page). The charts are drawn by web/reports.js from the figures the page
carries as JSON (json_script): no inline script."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from django import forms
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse

from casemsg.consent import reports as consent_reports
from casemsg.core import spreadsheet
from casemsg.core.errors import InputError
from casemsg.messaging import reports
from casemsg.messaging.models import Message
from casemsg.scheduling import queries as scheduling_queries
from casemsg.surveys import exports
from casemsg.surveys import services as survey_services
from casemsg.web.views.common import project_or_404, staff_required

# Colours of the statuses (as the dashboard's), and of the consent kinds.
STATUS_COLORS = {
    Message.DELIVERED: "#12b76a",
    Message.SENT: "#2e90fa",
    Message.SENDING: "#7a5af8",
    Message.QUEUED: "#98a2b3",
    Message.FAILED: "#b42318",
    Message.RECEIVED: "#f79009",
}
KIND_COLORS = {
    "consent": "#12b76a",
    "refusal": "#f79009",
    "opt_out": "#b42318",
    "opt_in": "#2e90fa",
    "request": "#98a2b3",
    "expired": "#d0d5dd",
}
CHANNELS = [("", "every channel"), ("sms", "SMS"), ("email", "email")]


class RangeForm(forms.Form):
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}), help_text="the project's days"
    )
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    channel = forms.ChoiceField(required=False, label="Channel", choices=CHANNELS)


def _range(project: Any, form: RangeForm, default_days: int = 30) -> tuple[date, date, str]:
    d = form.cleaned_data if form.is_bound and form.is_valid() else {}
    since, until = reports.checked_range(project, d.get("since"), d.get("until"), default_days)
    return since, until, d.get("channel") or ""


def _query(since: date, until: date, channel: str = "") -> str:
    q = f"since={since.isoformat()}&until={until.isoformat()}"
    return q + (f"&channel={channel}" if channel else "")


def _chunks(lines: Iterable[str], size: int = 500) -> Iterator[str]:
    """CSV lines in chunks of `size`: a streamed response costs per chunk (its encoding), not per line."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def _download(lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    resp = StreamingHttpResponse(_chunks(lines), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


def _status_series(days: list[date], tallies: dict[date, reports.Tally]) -> list[dict[str, Any]]:
    out = []
    for status in reports.STATUSES:
        data = [tallies[d].of(status) if d in tallies else 0 for d in days]
        if any(data):
            out.append({"label": status, "data": data, "color": STATUS_COLORS[status]})
    return out


# --- the history by source --------------------------------------------------------------------------
@staff_required
def history(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = RangeForm(request.GET or None)
    since, until, channel = _range(project, form)
    h = reports.history(project, since, until, channel or None)
    links = {
        (r.source, r.ref): reverse(
            "web:report_broadcast" if r.source == reports.BROADCAST else "web:report_alert",
            args=[project.slug, int(r.ref)],
        )
        for r in h.named
        if r.source in (reports.BROADCAST, reports.ALERT) and r.ref.isdigit()
    }
    for r in h.named:
        r.link = links.get((r.source, r.ref), "")  # type: ignore[attr-defined]
    sources = [r for r in h.sources if r.tally.total]
    chart = {
        "charts": [
            {
                "id": "chart-history-days",
                "labels": [d.isoformat()[5:] for d in h.days],
                "series": _status_series(h.days, h.by_day),
                "stacked": True,
            },
            {
                "id": "chart-history-sources",
                "labels": [r.name for r in sources],
                "series": [
                    {"label": s, "data": [r.tally.of(s) for r in sources], "color": STATUS_COLORS[s]}
                    for s in reports.STATUSES
                    if any(r.tally.of(s) for r in sources)
                ],
                "stacked": True,
                "horizontal": True,
            },
        ]
    }
    errors_by_source = sorted(
        ((code, n, [(r.name, r.tally.by_error.get(code, 0)) for r in sources]) for code, n in h.total.errors()),
        key=lambda e: -e[1],
    )
    query = _query(since, until, channel)
    return render(
        request,
        "web/report_history.html",
        {
            "project": project,
            "form": form,
            "h": h,
            "sources": sources,
            "errors_by_source": errors_by_source,
            "chart": chart,
            "query": query,
            "csv_url": reverse("web:report_history_csv", args=[project.slug]) + "?" + query,
            "log_url": reverse("web:messages", args=[project.slug])
            + f"?since={since.isoformat()}&until={until.isoformat()}",
            "surveys": list(survey_services.list_surveys(project)),
        },
    )


@staff_required
def history_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    project = project_or_404(slug)
    since, until, channel = _range(project, RangeForm(request.GET or None))
    rows = reports.history_csv_rows(project, since, until, channel or None)
    lines = spreadsheet.csv_lines(reports.HISTORY_COLUMNS, rows)
    return _download(lines, f"history-{project.slug}-{since}-{until}.csv")


# --- a broadcast's or an alert's delivery report ---------------------------------------------------------
def _owner(project: Any, kind: str, owner_id: int) -> Any:
    owner = (
        scheduling_queries.broadcast(project, owner_id)
        if kind == reports.BROADCAST
        else scheduling_queries.alert(project, owner_id)
    )
    if owner is None:
        raise Http404(f"No {kind} {owner_id} in this project.")
    return owner


def _delivery(request: HttpRequest, slug: str, kind: str, owner_id: int) -> tuple[Any, Any, reports.Delivery, str]:
    project = project_or_404(slug)
    owner = _owner(project, kind, owner_id)
    form = RangeForm(request.GET or None)
    d = form.cleaned_data if form.is_bound and form.is_valid() else {}
    first = reports.first_day(project, kind, owner.pk) or reports.today(project)
    since, until = reports.checked_range(project, d.get("since") or first, d.get("until"))
    report = reports.delivery(project, kind, owner.pk, since, until)
    return project, owner, report, _query(since, until)


def delivery(request: HttpRequest, slug: str, kind: str, owner_id: int) -> HttpResponse:
    project, owner, report, query = _delivery(request, slug, kind, owner_id)
    days = [day for day, _t in report.days]
    tallies = dict(report.days)
    chart = {
        "charts": [
            {
                "id": "chart-delivery",
                "labels": [d.isoformat()[5:] for d in days],
                "series": _status_series(days, tallies),
                "stacked": True,
            }
        ]
    }
    name = "web:report_broadcast_csv" if kind == reports.BROADCAST else "web:report_alert_csv"
    return render(
        request,
        "web/report_delivery.html",
        {
            "project": project,
            "owner": owner,
            "kind": kind,
            "report": report,
            "chart": chart,
            "form": RangeForm(request.GET or None),
            "csv_url": reverse(name, args=[project.slug, owner.pk]) + "?" + query,
            "owner_url": reverse(
                "web:broadcast" if kind == reports.BROADCAST else "web:alert", args=[project.slug, owner.pk]
            ),
        },
    )


def delivery_csv(request: HttpRequest, slug: str, kind: str, owner_id: int) -> StreamingHttpResponse:
    project, owner, report, _q = _delivery(request, slug, kind, owner_id)
    header, rows = reports.delivery_csv(report)
    return _download(spreadsheet.csv_lines(header, rows), f"{kind}-{owner.pk}-delivery.csv")


@staff_required
def broadcast_report(request: HttpRequest, slug: str, broadcast_id: int) -> HttpResponse:
    return delivery(request, slug, reports.BROADCAST, broadcast_id)


@staff_required
def broadcast_report_csv(request: HttpRequest, slug: str, broadcast_id: int) -> StreamingHttpResponse:
    return delivery_csv(request, slug, reports.BROADCAST, broadcast_id)


@staff_required
def alert_report(request: HttpRequest, slug: str, alert_id: int) -> HttpResponse:
    return delivery(request, slug, reports.ALERT, alert_id)


@staff_required
def alert_report_csv(request: HttpRequest, slug: str, alert_id: int) -> StreamingHttpResponse:
    return delivery_csv(request, slug, reports.ALERT, alert_id)


# --- consent and opt-outs ------------------------------------------------------------------------------
@staff_required
def consent(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = RangeForm(request.GET or None)
    since, until, _channel = _range(project, form)
    r = consent_reports.report(project, since, until)
    chart = {
        "charts": [
            {
                "id": "chart-consent",
                "labels": [d.isoformat()[5:] for d in r.days],
                "series": [
                    {
                        "label": consent_reports.KIND_LABELS[k],
                        "data": [r.by_day[d].get(k, 0) for d in r.days],
                        "color": KIND_COLORS[k],
                    }
                    for k in consent_reports.KINDS
                    if r.totals.get(k)
                ],
                "stacked": False,
            }
        ]
    }
    query = _query(since, until)
    return render(
        request,
        "web/report_consent.html",
        {
            "project": project,
            "form": form,
            "r": r,
            "kinds": [(k, consent_reports.KIND_LABELS[k]) for k in consent_reports.KINDS],
            "sources": [(s, [counts.get(k, 0) for k in consent_reports.KINDS]) for s, counts in r.by_source.items()],
            "totals": [r.totals.get(k, 0) for k in consent_reports.KINDS],
            "chart": chart,
            "csv_url": reverse("web:report_consent_csv", args=[project.slug]) + "?" + query,
        },
    )


@staff_required
def consent_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    project = project_or_404(slug)
    since, until, _channel = _range(project, RangeForm(request.GET or None))
    r = consent_reports.report(project, since, until)
    return _download(
        spreadsheet.csv_lines(consent_reports.COLUMNS, consent_reports.csv_rows(r)),
        f"consent-{project.slug}-{since}-{until}.csv",
    )


# --- a survey's answers --------------------------------------------------------------------------------
def _survey(project: Any, survey_id: int) -> Any:
    try:
        survey = survey_services.get_survey(project, survey_id)
    except InputError as e:
        raise Http404(e.message) from e
    if survey.builtin:
        raise Http404("The consent question is not a survey of its own.")
    return survey


@staff_required
def survey_answers_csv(request: HttpRequest, slug: str, survey_id: int) -> StreamingHttpResponse:
    project = project_or_404(slug)
    survey = _survey(project, survey_id)
    return _download(exports.csv_lines(project, survey), f"survey-{survey.pk}-answers.csv")


@staff_required
def survey_answers_xlsx(request: HttpRequest, slug: str, survey_id: int) -> FileResponse:
    project = project_or_404(slug)
    survey = _survey(project, survey_id)
    return FileResponse(
        exports.xlsx_file(project, survey),
        as_attachment=True,
        filename=f"survey-{survey.pk}-answers.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
