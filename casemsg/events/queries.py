"""The lists the API and the pages show: a project's endpoints (and one of them) and an endpoint's delivery
log."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from casemsg.events.models import Delivery, Endpoint
from casemsg.projects.models import Project


def endpoints(project: Project) -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(project=project).order_by("pk")


def endpoint(project: Project, endpoint_id: int) -> Endpoint | None:
    """One of the project's endpoints, or None (another project's id finds nothing)."""
    return Endpoint.objects.filter(project=project, pk=endpoint_id).first()


def deliveries(endpoint: Endpoint, state: str | None = None) -> QuerySet[Delivery]:
    """Newest first; `state` one of pending, delivered, failed."""
    qs = Delivery.objects.filter(endpoint=endpoint)
    if state == "pending":
        qs = qs.filter(next_attempt_utc__isnull=False)
    elif state == "delivered":
        qs = qs.filter(delivered_on__isnull=False)
    elif state == "failed":
        qs = qs.filter(failed_on__isnull=False)
    return qs.order_by("-created_on", "-pk")


def project_deliveries(project: Project) -> QuerySet[Delivery]:
    """Every delivery of the project's endpoints, newest first (the page's log)."""
    return Delivery.objects.filter(endpoint__project=project).select_related("endpoint").order_by("-created_on", "-pk")


def counts(project: Project) -> dict[int, dict[str, int]]:
    """Per endpoint of the project: its deliveries pending, delivered and failed (one GROUP BY)."""
    rows = (
        Delivery.objects.filter(endpoint__project=project)
        .values("endpoint_id")
        .annotate(
            pending=Count("pk", filter=Q(next_attempt_utc__isnull=False)),
            delivered=Count("pk", filter=Q(delivered_on__isnull=False)),
            failed=Count("pk", filter=Q(failed_on__isnull=False)),
        )
    )
    return {r["endpoint_id"]: {k: r[k] for k in ("pending", "delivered", "failed")} for r in rows}
