"""Reading cases: the API (`GET …/cases`) and the cases page translate their input into a CaseFilter and
call cases(). The filters and the order live only here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from django.db.models import Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from casemsg.cases.models import Case
from casemsg.projects.models import Project

# "created": the order cases were created in (the API's, stable for paging);
# "recently_modified": the last changed first (the page's).
CaseOrder = Literal["created", "recently_modified"]


@dataclass(frozen=True)
class CaseFilter:
    """Which of a project's cases to show. Empty values filter nothing."""

    case_type: str | None = None
    closed: bool | None = None  # None: open and closed cases
    owner_id: str | None = None
    external_id: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)  # property name → the exact value
    search: str | None = None  # part of the case id or name, or the whole external id
    order: CaseOrder = "created"


def cases(project: Project, f: CaseFilter) -> QuerySet[Case]:
    """The project's cases matching `f`, in `f.order`."""
    qs = Case.objects.filter(project=project)
    if f.case_type:
        qs = qs.filter(case_type=f.case_type)
    if f.closed is not None:
        qs = qs.filter(closed=f.closed)
    if f.owner_id:
        qs = qs.filter(owner_id=f.owner_id)
    if f.external_id:
        qs = qs.filter(external_id=f.external_id)
    search = (f.search or "").strip()
    if search:
        qs = qs.filter(Q(case_id__icontains=search) | Q(name__icontains=search) | Q(external_id=search))
    for i, (key, value) in enumerate(f.properties.items()):
        # KeyTextTransform takes the name literally: `properties__{key}` would read "a__b" as a path and
        # "contains" or "isnull" as lookups.
        # (Cast keeps the comparison a plain text one: a bare KeyTextTransform takes JSON lookups.)
        text = Cast(KeyTextTransform(key, "properties"), output_field=TextField())
        qs = qs.annotate(**{f"_prop{i}": text}).filter(**{f"_prop{i}": value})
    if f.order == "recently_modified":
        return qs.order_by("-modified_on", "-pk")
    return qs.order_by("pk")


def case_types(project: Project) -> list[str]:
    """The case types the project's cases use, sorted (the page's type filter offers these)."""
    return list(
        Case.objects.filter(project=project).values_list("case_type", flat=True).distinct().order_by("case_type")
    )
