"""Reading groups: the lists, one group, its members (evaluated in SQL at the instant asked: a dynamic
group is a filter, never a stored list), the preview (count and sample) and a group in words. The API
(`…/groups`), the pages, the CLI and the scheduling area (a group as recipients) read through here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.groups import conditions
from casemsg.groups.models import Group, GroupMember
from casemsg.projects.models import Project

SAMPLE = 10


def groups(project: Project, kind: str | None = None) -> QuerySet[Group]:
    """The project's groups by name; `kind` (static, dynamic) filters."""
    qs = Group.objects.filter(project=project)
    if kind in Group.KINDS:
        qs = qs.filter(kind=kind)
    return qs.order_by("name", "pk")


def group(project: Project, pk: int) -> Group | None:
    """One of the project's groups; None when the project has no group with this id."""
    return Group.objects.filter(project=project, pk=pk).first()


def group_by_ref(project: Project, ref: str) -> Group | None:
    """A group by its id (digits) or its name (the CLI's argument)."""
    found = Group.objects.filter(project=project, name=ref).first()
    if found is None and ref.isdigit():
        found = group(project, int(ref))
    return found


def cases_q(g: Group, now: datetime | None = None) -> Q:
    """A filter on the project's `Case` rows that selects the group's members at `now`: a static group's
    listed cases (open or closed), or the open cases of a dynamic group's type meeting all its conditions."""
    if g.is_dynamic:
        parsed = conditions.conditions_from_json(g.conditions)
        return Q(case_type=g.case_type, closed=False) & conditions.conditions_q(
            parsed, g.project, now or timezone.now()
        )
    return Q(Exists(GroupMember.objects.filter(group_id=g.pk, case_id=OuterRef("pk"))))


def recipients_q(g: Group, now: datetime | None = None) -> Q:
    """The members a message goes to: the group's open cases (a closed case stays a static group's member,
    and gets nothing)."""
    return cases_q(g, now) & Q(closed=False)


def members(g: Group, now: datetime | None = None) -> QuerySet[Case]:
    """The group's cases, in the order they were created."""
    return Case.objects.filter(project_id=g.project_id).filter(cases_q(g, now)).order_by("pk")


def member_pks(g: Group, now: datetime | None = None) -> QuerySet[Case, int]:
    """The members' primary keys, as a subquery (`pk__in=`) for another list: the cases page's group filter."""
    return members(g, now).order_by().values_list("pk", flat=True)


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[Case]


def preview(g: Group, now: datetime | None = None, sample: int = SAMPLE) -> Preview:
    """How many cases the group holds now, and the first `sample` of them (two queries)."""
    qs = members(g, now)
    return Preview(qs.count(), list(qs[: max(0, min(sample, 100))]))


def member_counts(rows: list[Group], now: datetime | None = None) -> dict[int, int]:
    """Each group's member count: one query for the static ones, one over the project's cases for the
    dynamic ones (a conditional count per group), whatever the number of groups."""
    out: dict[int, int] = {}
    static = [g.pk for g in rows if not g.is_dynamic]
    if static:
        counts = GroupMember.objects.filter(group_id__in=static).values("group_id").annotate(n=Count("pk"))
        out.update({row["group_id"]: row["n"] for row in counts})
    dynamic = [g for g in rows if g.is_dynamic]
    if dynamic:
        at = now or timezone.now()
        project_ids = {g.project_id for g in dynamic}
        totals = Case.objects.filter(project_id__in=project_ids).aggregate(
            **{f"g{g.pk}": Count("pk", filter=cases_q(g, at) & Q(project_id=g.project_id)) for g in dynamic}
        )
        out.update({g.pk: int(totals[f"g{g.pk}"] or 0) for g in dynamic})
    return {g.pk: out.get(g.pk, 0) for g in rows}


def describe(g: Group) -> str:
    """The group in words: "open mother cases where district is North and can receive SMS", or "a list of
    cases" for a static group."""
    if not g.is_dynamic:
        return "cases added by hand, by CSV or through the API"
    parsed = conditions.conditions_from_json(g.conditions)
    head = f"open {g.case_type} cases"
    return f"{head} where {conditions.describe(parsed)}" if parsed else head
