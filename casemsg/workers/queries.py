"""Reading mobile workers: the API (`GET …/mobile-workers`), the workers page and every interface that
looks a worker up by id call these. The filters and the order live only here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.db.models import Count, Q, QuerySet

from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

# "created": the order workers were created in (the API's, stable for paging); "username": the page's.
WorkerOrder = Literal["created", "username"]


@dataclass(frozen=True)
class WorkerFilter:
    """Which of a project's mobile workers to show. Empty values filter nothing."""

    active: bool | None = None  # None: active and inactive workers
    search: str | None = None  # part of the username or name, or three digits or more of a number
    order: WorkerOrder = "created"


def workers(project: Project, f: WorkerFilter) -> QuerySet[MobileWorker]:
    """The project's mobile workers matching `f`, in `f.order`."""
    qs = MobileWorker.objects.filter(project=project)
    if f.active is not None:
        qs = qs.filter(active=f.active)
    search = (f.search or "").strip()
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        match = Q(username__icontains=search) | Q(name__icontains=search)
        if len(digits) >= 3:
            # the numbers are stored as a JSON list of {"number": digits}: its text contains them
            match |= Q(phone_numbers__icontains=digits)
        qs = qs.filter(match)
    return qs.order_by("username" if f.order == "username" else "pk")


def active_and_inactive(project: Project) -> dict[str, int]:
    """{"n_active": …, "n_inactive": …}: the project's mobile workers counted in one query."""
    return MobileWorker.objects.filter(project=project).aggregate(
        n_active=Count("pk", filter=Q(active=True)), n_inactive=Count("pk", filter=Q(active=False))
    )


def worker(project: Project, worker_id: int) -> MobileWorker | None:
    """The project's mobile worker with this id, or None (another project's id finds nothing)."""
    return MobileWorker.objects.filter(project=project, pk=worker_id).first()
