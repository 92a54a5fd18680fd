"""The survey lists read by the API, the pages and the CLI: filters and paging, no query per row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, QuerySet

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.surveys.models import Survey, SurveySession, SurveyVersion


def sessions(
    project: Project,
    case_id: str | None = None,
    status: str | None = None,
    survey_id: int | None = None,
    phone_number: str | None = None,
) -> Any:
    """A project's survey sessions, newest first, with their survey, version, case and gateway."""
    qs = SurveySession.objects.filter(project=project)
    if case_id:
        qs = qs.filter(case__case_id=case_id)
    if phone_number:
        qs = qs.filter(phone_number=phone_number)
    if status:
        if status not in SurveySession.STATUSES:
            raise InputError(errors.VALIDATION_ERROR, f"status must be one of {', '.join(SurveySession.STATUSES)}.")
        qs = qs.filter(status=status)
    if survey_id is not None:
        qs = qs.filter(survey_version__survey_id=survey_id)
    return qs.select_related("survey_version__survey", "case", "gateway").order_by("-started_on", "-pk")


def sessions_by_id(ids: Iterable[int]) -> dict[int, SurveySession]:
    """{id: session} for these sessions, with their survey, in one query (an id that is gone is left out)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return SurveySession.objects.filter(pk__in=wanted).select_related("survey_version__survey").in_bulk()


def versions(survey: Survey) -> QuerySet[SurveyVersion]:
    """The survey's versions, newest first."""
    return survey.versions.order_by("-number")


def survey_choices(project: Project) -> list[tuple[int, str]]:
    """(id, name) of the project's own surveys that have a version to start, by name: what a form offers."""
    found = Survey.objects.filter(project=project, builtin="", current_version__isnull=False).order_by("name")
    return list(found.values_list("pk", "name"))


def session_counts(project: Project) -> dict[int, dict[str, int]]:
    """{survey id: {status: sessions}} for the project's surveys, in one query."""
    rows = (
        SurveySession.objects.filter(project=project)
        .values("survey_version__survey_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["survey_version__survey_id"], {})[row["status"]] = row["n"]
    return out
