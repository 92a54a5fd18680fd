"""Project endpoints: the project's API keys (list, issue, revoke)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import In, page, project_for
from casemsg.projects import services

router = Router(tags=["projects"])


class KeyOut(Schema):
    id: int
    prefix: str = Field(description="The key's first characters, to recognise it; the key itself is never shown again.")
    name: str
    created_on: datetime
    revoked: bool
    revoked_on: datetime | None


class KeyList(Schema):
    count: int
    items: list[KeyOut]


class KeyIn(In):
    name: str = Field("", max_length=100, description="What the key is for, e.g. 'CommCare forwarder'.")


class NewKeyOut(KeyOut):
    key: str = Field(description="The new key. Shown once: store it now.")


@router.get("/projects/{project}/keys", response=KeyList)
def list_keys(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, object]:
    """The project's API keys, revoked ones included (never the keys themselves)."""
    qs = services.list_keys(project_for(request, project))
    return {"count": qs.count(), "items": list(page(qs, limit, offset))}


@router.post("/projects/{project}/keys", response={201: NewKeyOut})
def issue_key(request: HttpRequest, project: str, payload: KeyIn) -> Status[object]:
    """Issue another API key for the project. The response holds the key once."""
    row, key = services.issue_key(project_for(request, project), payload.name)
    row.key = key  # type: ignore[attr-defined]  # in memory only, for this one response
    return Status(201, row)


@router.delete("/projects/{project}/keys/{key_id}", response={204: None})
def revoke_key(request: HttpRequest, project: str, key_id: int) -> Status[None]:
    """Revoke a key: requests with it are refused (401) from now on. The calling key may revoke itself."""
    services.revoke_key(project_for(request, project), key_id)
    return Status(204, None)
