"""Lists of sources and runs for the API, the pages and the CLI."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.sources.models import Source, SourceRun


def sources(project: Project) -> QuerySet[Source]:
    return Source.objects.filter(project=project).select_related("project").order_by("name", "pk")


def source_named(project: Project, ref: str) -> Source | None:
    """The project's source with this id (digits) or name, or None."""
    qs = Source.objects.filter(project=project).select_related("project")
    return qs.filter(pk=int(ref)).first() if ref.isdigit() and len(ref) < 18 else qs.filter(name=ref).first()


def runs(source: Source, kind: str = "", status: str = "") -> QuerySet[SourceRun]:
    """The source's runs, newest first (without their logs: `run` has the log)."""
    qs = SourceRun.objects.filter(source=source).defer("log", "cursor").order_by("-started_on", "-pk")
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    return qs


def latest_runs(source_ids: list[int]) -> dict[int, SourceRun]:
    """Each source's newest run (two queries, whatever the number of sources)."""
    newest = SourceRun.objects.filter(source_id=OuterRef("pk")).order_by("-started_on", "-pk").values("pk")[:1]
    ids = Source.objects.filter(pk__in=source_ids).annotate(newest=Subquery(newest)).values_list("newest", flat=True)
    found = SourceRun.objects.filter(pk__in=[i for i in ids if i is not None]).defer("log", "cursor")
    return {r.source_id: r for r in found}


def run(source: Source, run_id: int) -> SourceRun:
    found = SourceRun.objects.filter(source=source, pk=run_id).first()
    if found is None:
        raise InputError(errors.SOURCE_RUN_NOT_FOUND, f"Source {source.pk} has no run {run_id}.", 404)
    return found
