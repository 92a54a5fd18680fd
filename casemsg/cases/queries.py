"""Reading cases: the API (`GET …/cases`) and the cases page translate their input into a CaseFilter and
call cases(). The filters and the order live only here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from django.db import connection
from django.db.models import Count, Q, QuerySet, TextField
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
    search: str | None = None  # part of the case id, name or phone number, or the whole external id
    order: CaseOrder = "created"
    among: Q | None = None  # a filter on Case from another area: a group's members (groups.queries.cases_q)


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
    if f.among is not None:
        qs = qs.filter(f.among)
    search = (f.search or "").strip()
    if search:
        phone = Cast(KeyTextTransform("contact_phone_number", "properties"), output_field=TextField())
        match = Q(case_id__icontains=search) | Q(name__icontains=search) | Q(external_id=search)
        match |= Q(_phone__icontains=search)
        digits = "".join(ch for ch in search if ch.isdigit())
        if len(digits) >= 3 and digits != search:
            match |= Q(_phone__icontains=digits)  # "+1 206 617-1234" finds 12066171234
        qs = qs.annotate(_phone=phone).filter(match)
    for i, (key, value) in enumerate(f.properties.items()):
        # KeyTextTransform takes the name literally: `properties__{key}` would read "a__b" as a path and
        # "contains" or "isnull" as lookups.
        # (Cast keeps the comparison a plain text one: a bare KeyTextTransform takes JSON lookups.)
        text = Cast(KeyTextTransform(key, "properties"), output_field=TextField())
        qs = qs.annotate(**{f"_prop{i}": text}).filter(**{f"_prop{i}": value})
    if f.order == "recently_modified":
        return qs.order_by("-modified_on", "-pk")
    return qs.order_by("pk")


def case(project: Project, case_id: str) -> Case | None:
    """The project's case with this case id, or None (a case id of another project finds nothing)."""
    return Case.objects.filter(project=project, case_id=case_id).first()


def parent(case: Case) -> Case | None:
    """The case's parent in its own project (its `parent_id`), or None."""
    if not case.parent_id:
        return None
    return Case.objects.filter(project_id=case.project_id, case_id=case.parent_id).first()


def open_and_closed(project: Project) -> dict[str, int]:
    """{"n_open": …, "n_closed": …}: the project's cases counted in one query."""
    return Case.objects.filter(project=project).aggregate(
        n_open=Count("pk", filter=Q(closed=False)), n_closed=Count("pk", filter=Q(closed=True))
    )


def case_types(project: Project) -> list[str]:
    """The case types the project's cases use, sorted (the page's type filter offers these)."""
    return list(
        Case.objects.filter(project=project).values_list("case_type", flat=True).distinct().order_by("case_type")
    )


def with_phone_numbers(project: Project, most: int) -> QuerySet[Case]:
    """The project's first `most` open cases that have a contact phone number, by name (a picker's list:
    their id, name and properties only)."""
    return (
        Case.objects.filter(project=project, closed=False, properties__has_key="contact_phone_number")
        .order_by("name", "case_id")
        .only("case_id", "name", "properties")[:most]
    )


def batches(qs: QuerySet[Case], size: int) -> Iterator[list[Case]]:
    """The cases of `qs` in id order, `size` at a time, each batch one query starting after the last one's
    end (an export streams any number of cases without OFFSET)."""
    last = 0
    while True:
        batch = list(qs.filter(pk__gt=last).order_by("pk")[:size])
        if not batch:
            return
        last = batch[-1].pk
        yield batch


def property_names(qs: QuerySet[Case]) -> list[str]:
    """The property names used by the cases of `qs`, sorted, in one query (the CSV export's columns)."""
    inner, params = qs.order_by().values("pk").query.sql_with_params()
    table = Case._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT DISTINCT k FROM {table}, jsonb_object_keys({table}.properties) AS k WHERE {table}.id IN ({inner})"
        )
    else:
        sql = f"SELECT DISTINCT j.key FROM {table}, json_each({table}.properties) AS j WHERE {table}.id IN ({inner})"
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return sorted(row[0] for row in cur.fetchall())
