from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status

from casemsg.api.core import READ, WRITE, In, paged, project_for
from casemsg.contacts.status import status
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.workers import queries, services
from casemsg.workers.models import MobileWorker

router = Router(tags=["mobile workers"])


class PhoneIn(In):
    number: str
    verified: bool | None = None


class WorkerIn(In):
    field_codes = {"phone_numbers": errors.INVALID_PHONE_NUMBER}
    username: str
    name: str = ""
    active: bool = True
    phone_numbers: list[str | PhoneIn] = []
    email: str = ""
    time_zone: str = ""
    language_code: str = ""


class WorkerPatch(Schema):
    username: str | None = None
    name: str | None = None
    active: bool | None = None
    phone_numbers: list[str | PhoneIn] | None = None
    email: str | None = None
    time_zone: str | None = None
    language_code: str | None = None


class PhoneOut(Schema):
    number: str
    verified: bool


class WorkerOut(Schema):
    id: int
    username: str
    name: str
    active: bool
    phone_numbers: list[PhoneOut]
    email: str
    time_zone: str
    language_code: str
    created_on: datetime
    modified_on: datetime


def _change(data: Schema) -> services.WorkerChange:
    d = data.dict()
    return services.WorkerChange(**d)


def _get(project, worker_id: int) -> MobileWorker:
    w = queries.worker(project, worker_id)
    if w is None:
        raise InputError(errors.MOBILE_WORKER_NOT_FOUND, f"No mobile worker {worker_id} in this project.", 404)
    return w


@router.post(
    "/projects/{project}/mobile-workers",
    auth=WRITE,
    response={201: WorkerOut},
    openapi_extra={"responses": {409: {"description": "A mobile worker has this username (USERNAME_TAKEN)."}}},
)
def create_worker(request: HttpRequest, project: str, payload: WorkerIn):
    """Phone numbers are validated: a bad one is refused with 422 and `INVALID_PHONE_NUMBER`; a username
    already taken with 409 and `USERNAME_TAKEN`."""
    p = project_for(request, project)
    return Status(201, services.create_worker(p, _change(payload)))


class WorkerList(Schema):
    count: int
    items: list[WorkerOut]


@router.get("/projects/{project}/mobile-workers", auth=READ, response=WorkerList)
def list_workers(
    request: HttpRequest, project: str, active: bool | None = None, limit: int = 100, offset: int = 0
) -> dict[str, object]:
    p = project_for(request, project)
    return paged(queries.workers(p, queries.WorkerFilter(active=active)), limit, offset)


@router.get("/projects/{project}/mobile-workers/{worker_id}", auth=READ, response=WorkerOut)
def get_worker(request: HttpRequest, project: str, worker_id: int):
    return _get(project_for(request, project), worker_id)


@router.patch(
    "/projects/{project}/mobile-workers/{worker_id}",
    auth=WRITE,
    response=WorkerOut,
    openapi_extra={"responses": {409: {"description": "A mobile worker has this username (USERNAME_TAKEN)."}}},
)
def update_worker(request: HttpRequest, project: str, worker_id: int, payload: WorkerPatch):
    """`active: false` deactivates the worker (its numbers are released)."""
    p = project_for(request, project)
    return services.update_worker(p, _get(p, worker_id), _change(payload))


@router.delete("/projects/{project}/mobile-workers/{worker_id}", auth=WRITE, response={204: None})
def delete_worker(request: HttpRequest, project: str, worker_id: int):
    p = project_for(request, project)
    services.delete_worker(_get(p, worker_id))
    return Status(204, None)


@router.get("/projects/{project}/mobile-workers/{worker_id}/contact", auth=READ)
def worker_contact(request: HttpRequest, project: str, worker_id: int):
    p = project_for(request, project)
    w = _get(p, worker_id)
    w.project = p
    return status(w).as_dict()
