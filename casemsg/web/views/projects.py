"""The list of the user's projects, a project's dashboard, and the error catalogue page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, Min, OuterRef, Q
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.contacts import optouts
from casemsg.contacts.models import PhoneEntry
from casemsg.core import errors
from casemsg.gateways.models import Gateway, GatewayRoute
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.projects.services import roles_of
from casemsg.web.views.common import error_view, project_or_404, staff_required
from casemsg.workers.models import MobileWorker

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
    """The dashboard's figures, each from one GROUP BY or aggregate query over the project's rows (no
    per-row work in Python, so it stays fast with hundreds of thousands of messages)."""
    now = now or timezone.now()
    zone = ZoneInfo(project.default_time_zone) if project.default_time_zone else ZoneInfo("UTC")
    days = _days(zone, now)
    since = datetime.combine(days[0], datetime.min.time(), tzinfo=zone)  # local midnight, DAYS days ago
    recent = Message.objects.filter(project=project, created_on__gte=since)

    # 1. one pass over the window, grouped by local day, direction, status and error: the messages per day
    # by status, inbound vs outbound, the totals and the failures by reason all come from it (a second
    # GROUP BY would read the same rows again).
    per_day: dict[str, dict[Any, int]] = {s: {} for s in Message.STATUSES}
    totals = {Message.IN: 0, Message.OUT: 0}
    by_status = dict.fromkeys(Message.STATUSES, 0)
    failures: dict[str, int] = {}
    for day, direction, status, error, n in (
        recent.annotate(day=TruncDate("created_on", tzinfo=zone))
        .values_list("day", "direction", "status", "error")
        .annotate(n=Count("pk"))
        .order_by()
    ):
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
    queue = Message.objects.filter(project=project, status=Message.QUEUED).aggregate(
        n=Count("pk"), oldest=Min("created_on")
    )
    oldest_age = (now - queue["oldest"]) if queue["oldest"] else None

    # 3. consent: the ledger by kind, and the project's numbers that are opted out right now
    consent = dict.fromkeys(ConsentRecord.KINDS, 0)
    consent.update(ConsentRecord.objects.filter(project=project).values_list("kind").annotate(n=Count("pk")).order_by())
    # from the opt-outs' side (the installation's and the project's own), each probed in the phone
    # registry's number index; a number opted out in both counts once
    opted_out = (
        optouts.rows_for(project.pk)
        .filter(Exists(PhoneEntry.objects.filter(project=project, phone_number=OuterRef("phone_number"))))
        .values("phone_number")
        .distinct()
        .count()
    )

    cases = Case.objects.filter(project=project).aggregate(
        n_open=Count("pk", filter=Q(closed=False)), n_closed=Count("pk", filter=Q(closed=True))
    )
    workers = MobileWorker.objects.filter(project=project).aggregate(
        n_active=Count("pk", filter=Q(active=True)), n_inactive=Count("pk", filter=Q(active=False))
    )
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
        "queue": queue["n"],
        "oldest_queued": queue["oldest"],
        "oldest_age": oldest_age,
        "consent": consent,
        "opted_out": opted_out,
        "cases": cases,
        "workers": workers,
    }


@staff_required
def project_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = getattr(request, "project", None) or project_or_404(slug)
    gateways = Gateway.objects.filter(Q(project=project) | Q(project__isnull=True)).order_by("project_id", "name")
    routes = (
        GatewayRoute.objects.filter(Q(project=project) | Q(project__isnull=True))
        .select_related("gateway")
        .order_by("project_id", "prefix")
    )
    return render(
        request,
        "web/project.html",
        {"project": project, **dashboard(project), "gateways": gateways, "routes": routes},
    )
