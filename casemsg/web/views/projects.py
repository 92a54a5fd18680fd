"""The list of the user's projects, a project's dashboard, and the error catalogue page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from casemsg.cases import queries as case_queries
from casemsg.consent import ledger
from casemsg.contacts import queries as contact_queries
from casemsg.core import errors
from casemsg.gateways import queries as gateway_queries
from casemsg.messaging import queries as message_queries
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.projects.services import roles_of
from casemsg.web.views.common import error_view, project_or_404, staff_required
from casemsg.workers import queries as worker_queries

DAYS = 30
# Chart colours per message status, the same in every chart (the page's palette).
STATUS_COLOURS = {
    Message.QUEUED: "#98a2b3",
    Message.SENDING: "#f79009",
    Message.SENT: "#2e90fa",
    Message.DELIVERED: "#17803d",
    Message.FAILED: "#b42318",
    Message.RECEIVED: "#7a5af8",
}


@staff_required
def home(request: HttpRequest) -> HttpResponse:
    """Only the projects the user is a member of (all of them for a superuser), with the user's role."""
    return render(request, "web/home.html", {"projects": roles_of(request.user)})


def errors_page(request: HttpRequest) -> HttpResponse:
    """Public on purpose: it is the same catalogue as the unauthenticated GET /api/v1/errors, and
    docs and CLI output link to its anchors."""
    sections = [(title, errors.of_kind(kind)) for kind, title in errors.KIND_TITLES.items()]
    return render(request, "web/errors.html", {"sections": sections})


def _days(zone: ZoneInfo, now: datetime) -> list[Any]:
    """The last DAYS calendar days on the project's clock, oldest first, today last."""
    today = now.astimezone(zone).date()
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def dashboard(project: Project, now: datetime | None = None) -> dict[str, Any]:
    """The dashboard's figures, each from one GROUP BY or aggregate query of the areas' queries over the
    project's rows (no per-row work in Python, so it stays fast with hundreds of thousands of messages)."""
    now = now or timezone.now()
    zone = ZoneInfo(project.default_time_zone) if project.default_time_zone else ZoneInfo("UTC")
    days = _days(zone, now)
    since = datetime.combine(days[0], datetime.min.time(), tzinfo=zone)  # local midnight, DAYS days ago

    # 1. one pass over the window, grouped by local day, direction, status and error: the messages per day
    # by status, inbound vs outbound, the totals and the failures by reason all come from it (a second
    # GROUP BY would read the same rows again).
    per_day: dict[str, dict[Any, int]] = {s: {} for s in Message.STATUSES}
    totals = {Message.IN: 0, Message.OUT: 0}
    by_status = dict.fromkeys(Message.STATUSES, 0)
    failures: dict[str, int] = {}
    for day, direction, status, error, n in message_queries.daily_counts(project, since, zone):
        counts = per_day.setdefault(status, {})
        counts[day] = counts.get(day, 0) + n
        totals[direction] = totals.get(direction, 0) + n
        by_status[status] = by_status.get(status, 0) + n
        if status == Message.FAILED:
            failures[error or "UNKNOWN"] = failures.get(error or "UNKNOWN", 0) + n
    series = [
        {"label": status, "color": STATUS_COLOURS.get(status, "#667085"), "data": [counts.get(d, 0) for d in days]}
        for status, counts in per_day.items()
        if counts
    ]
    top_failures = sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))

    # 2. the queue right now (every queued message of the project, not only recent ones)
    queue = message_queries.queue(project)
    oldest_age = (now - queue.oldest) if queue.oldest else None

    # 3. consent: the ledger by kind, and the project's numbers that are opted out right now
    consent = ledger.kind_counts(project)
    opted_out = contact_queries.opted_out_count(project)

    cases = case_queries.open_and_closed(project)
    workers = worker_queries.active_and_inactive(project)
    chart = {
        "days": [d.isoformat() for d in days],
        "series": series,
        "failures": {"labels": [code for code, _ in top_failures[:10]], "data": [n for _, n in top_failures[:10]]},
        "directions": {
            "labels": ["inbound", "outbound"],
            "data": [totals.get(Message.IN, 0), totals.get(Message.OUT, 0)],
        },
    }
    return {
        "days": DAYS,
        "zone": str(zone),
        "since": since,
        "chart": chart,
        "by_status": [(s, by_status.get(s, 0)) for s in Message.STATUSES],
        "inbound": totals.get(Message.IN, 0),
        "outbound": totals.get(Message.OUT, 0),
        "failures": [(error_view(code), n) for code, n in top_failures],
        "queue": queue.count,
        "oldest_queued": queue.oldest,
        "oldest_age": oldest_age,
        "consent": consent,
        "opted_out": opted_out,
        "cases": cases,
        "workers": workers,
    }


@staff_required
def project_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = getattr(request, "project", None) or project_or_404(slug)
    gateways = gateway_queries.gateways_for(project, order="owner")
    routes = gateway_queries.routes_for(project)
    return render(
        request,
        "web/project.html",
        {"project": project, **dashboard(project), "gateways": gateways, "routes": routes},
    )
