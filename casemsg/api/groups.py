"""Groups of cases: create, list, read, change, delete; a static group's members (list, add, remove, import a
CSV); a group's preview (how many cases it holds now, and a sample) and the preview of a definition not yet
saved. The bodies are the groups area's declarations (`casemsg.groups.services.GroupIn`, `GroupPatch`,
`MembersIn`) with the API's refusal of unstorable values; the services check the rest (a name taken, a bad
condition named by its position, members added to a dynamic group)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, File, Router, Schema, Status, UploadedFile

from casemsg.api.cases import CaseOut
from casemsg.api.core import READ, WRITE, In, paged, project_for
from casemsg.core import errors, uploads
from casemsg.core.errors import InputError
from casemsg.groups import queries, services
from casemsg.groups.models import Group
from casemsg.projects.models import Project

router = Router(tags=["groups"])


def _409(why: str) -> dict[str, Any]:
    return {"responses": {409: {"description": why}}}


_NAME_TAKEN = _409("The project already has a group of this name (GROUP_EXISTS).")
_DYNAMIC = _409("The group is dynamic: its members are the cases meeting its conditions (GROUP_IS_DYNAMIC).")


class GroupIn(In, services.GroupIn):
    __doc__ = services.GroupIn.__doc__


class GroupPatch(In, services.GroupPatch):
    __doc__ = services.GroupPatch.__doc__


class MembersIn(In, services.MembersIn):
    __doc__ = services.MembersIn.__doc__


class GroupOut(Schema):
    """A group, with its members counted now."""

    id: int
    name: str
    description: str
    kind: str = Field(description="static | dynamic")
    case_type: str = Field(description="dynamic groups: the case type")
    conditions: list[dict[str, Any]] = Field(description="dynamic groups: as stored (normalised)")
    summary: str = Field(description="the group in words")
    member_count: int = Field(description="its cases now (a dynamic group's open cases meeting its conditions)")
    created_on: datetime
    modified_on: datetime


class GroupList(Schema):
    count: int
    items: list[GroupOut]


class CaseList(Schema):
    count: int
    items: list[CaseOut]


class PreviewOut(Schema):
    count: int = Field(description="the cases the group holds now")
    sample: list[CaseOut] = Field(description="the first of them, in the order they were created")
    summary: str = Field(description="the group in words")


class MembersOut(Schema):
    added: int
    removed: int
    unchanged: int = Field(description="already members (add) or not members (remove)")
    not_found: int = Field(description="case ids no case of the project has")
    not_found_ids: list[str] = Field(description="the first 100 of them")


def _out(g: Group, count: int) -> dict[str, Any]:
    return {
        "id": g.pk,
        "name": g.name,
        "description": g.description,
        "kind": g.kind,
        "case_type": g.case_type,
        "conditions": list(g.conditions or []),
        "summary": queries.describe(g),
        "member_count": count,
        "created_on": g.created_on,
        "modified_on": g.modified_on,
    }


def _get(p: Project, group_id: int) -> Group:
    g = queries.group(p, group_id)
    if g is None:
        raise InputError(errors.GROUP_NOT_FOUND, f"No group {group_id} in this project.", 404)
    return g


def _body(payload: Schema) -> dict[str, Any]:
    return payload.model_dump(exclude_unset=True)


@router.get("/projects/{project}/groups", auth=READ, response=GroupList)
def list_groups(
    request: HttpRequest, project: str, kind: str | None = None, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """The project's groups by name, each with its members counted now; `kind` (static, dynamic) filters."""
    listed = paged(queries.groups(project_for(request, project), kind), limit, offset)
    rows = list(listed["items"])
    counts = queries.member_counts(rows)
    return {"count": listed["count"], "items": [_out(g, counts[g.pk]) for g in rows]}


@router.post("/projects/{project}/groups", auth=WRITE, response={201: GroupOut}, openapi_extra=_NAME_TAKEN)
def create_group(request: HttpRequest, project: str, payload: GroupIn) -> Status[dict[str, Any]]:
    """A static group (`case_ids`: its first members) or a dynamic one (`case_type` and `conditions`)."""
    g = services.create_group(project_for(request, project), _body(payload))
    return Status(201, _out(g, queries.member_counts([g])[g.pk]))


@router.post("/projects/{project}/groups/preview", auth=READ, response=PreviewOut)
def preview_definition(request: HttpRequest, project: str, payload: GroupIn, sample: int = 10) -> dict[str, Any]:
    """What a dynamic group with this body would hold now (nothing is saved): the count and a sample."""
    found, summary = services.preview_definition(project_for(request, project), _body(payload), sample)
    return {"count": found.count, "sample": found.sample, "summary": summary}


@router.get("/projects/{project}/groups/{group_id}", auth=READ, response=GroupOut)
def get_group(request: HttpRequest, project: str, group_id: int) -> dict[str, Any]:
    g = _get(project_for(request, project), group_id)
    return _out(g, queries.member_counts([g])[g.pk])


@router.patch("/projects/{project}/groups/{group_id}", auth=WRITE, response=GroupOut, openapi_extra=_NAME_TAKEN)
def update_group(request: HttpRequest, project: str, group_id: int, payload: GroupPatch) -> dict[str, Any]:
    """Change a group's name, description and (dynamic groups) case type and conditions: broadcasts that
    read it see the change at their next send."""
    g = services.update_group(_get(project_for(request, project), group_id), _body(payload))
    return _out(g, queries.member_counts([g])[g.pk])


@router.delete(
    "/projects/{project}/groups/{group_id}",
    auth=WRITE,
    response={204: None},
    openapi_extra=_409("An active or paused broadcast, or an alert, has the group as recipients (GROUP_IN_USE)."),
)
def delete_group(request: HttpRequest, project: str, group_id: int) -> Status[None]:
    """Delete a group (its cases stay). Refused (409 GROUP_IN_USE) while an active or paused broadcast or an
    alert has it as recipients."""
    services.delete_group(_get(project_for(request, project), group_id))
    return Status(204, None)


@router.get("/projects/{project}/groups/{group_id}/preview", auth=READ, response=PreviewOut)
def preview_group(request: HttpRequest, project: str, group_id: int, sample: int = 10) -> dict[str, Any]:
    """How many cases the group holds now, and the first `sample` (up to 100) of them."""
    g = _get(project_for(request, project), group_id)
    found = queries.preview(g, sample=sample)
    return {"count": found.count, "sample": found.sample, "summary": queries.describe(g)}


@router.get("/projects/{project}/groups/{group_id}/members", auth=READ, response=CaseList)
def list_members(
    request: HttpRequest, project: str, group_id: int, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """The group's cases now, in the order they were created (a dynamic group: evaluated as you ask)."""
    return paged(queries.members(_get(project_for(request, project), group_id)), limit, offset)


@router.post("/projects/{project}/groups/{group_id}/members", auth=WRITE, response=MembersOut, openapi_extra=_DYNAMIC)
def add_members(request: HttpRequest, project: str, group_id: int, payload: MembersIn) -> dict[str, Any]:
    """Add cases (by case id, up to 1,000) to a static group; unknown case ids are counted, not refused."""
    g = _get(project_for(request, project), group_id)
    return services.add_members(g, payload.case_ids).as_dict()


@router.post(
    "/projects/{project}/groups/{group_id}/members/remove", auth=WRITE, response=MembersOut, openapi_extra=_DYNAMIC
)
def remove_members(request: HttpRequest, project: str, group_id: int, payload: MembersIn) -> dict[str, Any]:
    """Remove cases (by case id, up to 1,000) from a static group."""
    g = _get(project_for(request, project), group_id)
    return services.remove_members(g, payload.case_ids).as_dict()


@router.post(
    "/projects/{project}/groups/{group_id}/members/import", auth=WRITE, response=MembersOut, openapi_extra=_DYNAMIC
)
def import_members(request: HttpRequest, project: str, group_id: int, file: File[UploadedFile]) -> dict[str, Any]:
    """Add the cases a CSV lists to a static group (multipart field `file`: a `case_id` column, or the first
    column; up to 100,000 rows)."""
    g = _get(project_for(request, project), group_id)
    uploads.check_size(file.size, services.MAX_IMPORT_BYTES, "The members file")
    return services.import_members(g, file.read()).as_dict()
