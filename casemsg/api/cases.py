from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, WRITE, In, page, project_for
from casemsg.cases import queries, services
from casemsg.cases.models import Case
from casemsg.contacts.status import status
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.groups import queries as group_queries

router = Router(tags=["cases"])


class CaseIn(In):
    field_codes = {"properties": errors.INVALID_PROPERTY}
    case_id: str | None = None
    case_type: str
    name: str = ""
    external_id: str | None = None
    owner_id: str | None = None
    parent_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class CasePatch(Schema):
    case_type: str | None = None
    name: str | None = None
    external_id: str | None = None
    owner_id: str | None = None
    parent_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    closed: bool | None = None


class BulkItem(CasePatch):
    """A create (new or no case_id; case_type required) or an update (existing case_id)."""

    case_id: str | None = None


class BulkIn(In):
    field_codes = {"properties": errors.INVALID_PROPERTY}
    cases: list[BulkItem]


class CaseOut(Schema):
    case_id: str
    case_type: str
    name: str
    external_id: str
    owner_id: str
    parent_id: str
    properties: dict[str, str]
    closed: bool
    opened_on: datetime
    modified_on: datetime
    closed_on: datetime | None


class CaseList(Schema):
    count: int
    items: list[CaseOut]


def _get(project, case_id: str) -> Case:
    case = queries.case(project, case_id)
    if case is None:
        raise InputError(errors.CASE_NOT_FOUND, f"No case '{case_id}' in this project.", 404)
    return case


def _change(data: Schema) -> services.CaseChange:
    d = data.dict()
    return services.CaseChange(**{k: d[k] for k in services.CaseChange.__dataclass_fields__ if k in d})


@router.post("/projects/{project}/cases", auth=WRITE, response={201: CaseOut})
def create_case(request: HttpRequest, project: str, payload: CaseIn):
    p = project_for(request, project)
    return Status(201, services.create_case(p, _change(payload)))


@router.get("/projects/{project}/cases", auth=READ, response=CaseList)
def list_cases(
    request: HttpRequest,
    project: str,
    case_type: str | None = None,
    closed: bool | None = None,
    owner_id: str | None = None,
    external_id: str | None = None,
    group: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Filter by `case_type`, `closed`, `owner_id`, `external_id`, `group` (a group's id: its cases now), and
    any property with `prop.<name>=<value>` (for example `?prop.district=north`)."""
    p = project_for(request, project)
    props = {k[5:]: request.GET[k] for k in request.GET if k.startswith("prop.") and len(k) > 5}
    among = None
    if group is not None:
        g = group_queries.group(p, group)
        if g is None:
            raise InputError(errors.GROUP_NOT_FOUND, f"No group {group} in this project.", 404)
        among = group_queries.cases_q(g)
    f = queries.CaseFilter(
        case_type=case_type, closed=closed, owner_id=owner_id, external_id=external_id, properties=props, among=among
    )
    qs = queries.cases(p, f)
    return {"count": qs.count(), "items": list(page(qs, limit, offset))}


@router.post("/projects/{project}/cases/bulk", auth=WRITE, response=list[CaseOut])
def bulk_cases(request: HttpRequest, project: str, payload: BulkIn):
    """Create or update up to 1,000 cases in one transaction (a case_id that exists is updated)."""
    p = project_for(request, project)
    return services.bulk_upsert(p, [_change(c) for c in payload.cases])


@router.get("/projects/{project}/cases/{case_id}", auth=READ, response=CaseOut)
def get_case(request: HttpRequest, project: str, case_id: str):
    return _get(project_for(request, project), case_id)


@router.patch("/projects/{project}/cases/{case_id}", auth=WRITE, response=CaseOut)
def update_case(request: HttpRequest, project: str, case_id: str, payload: CasePatch):
    """Properties merge into the case's; a property set to `null` is removed. `closed` closes or
    reopens the case."""
    p = project_for(request, project)
    return services.update_case(p, _get(p, case_id), _change(payload))


@router.delete("/projects/{project}/cases/{case_id}", auth=WRITE, response={204: None})
def delete_case(request: HttpRequest, project: str, case_id: str):
    p = project_for(request, project)
    services.delete_case(p, _get(p, case_id))
    return Status(204, None)


@router.get("/projects/{project}/cases/{case_id}/contact", auth=READ)
def case_contact(request: HttpRequest, project: str, case_id: str):
    """Whether and how this case can be messaged: per channel, with every problem found."""
    p = project_for(request, project)
    case = _get(p, case_id)
    case.project = p
    return status(case).as_dict()
