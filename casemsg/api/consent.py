"""Consent endpoints: the ledger, opt-in requests and mobile-worker number verification."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, SEND, In, paged, project_for
from casemsg.cases import queries as case_queries
from casemsg.consent import ledger, verification
from casemsg.consent.models import ConsentRecord
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.surveys import consent as survey_consent
from casemsg.workers import queries as worker_queries

router = Router(tags=["consent"])


class ConsentOut(Schema):
    """One ledger row (a ConsentRecord)."""

    phone_number: str
    contact: str = Field(alias="contact_label")
    project: str | None
    case_id: str | None
    mobile_worker_id: int | None = Field(alias="worker_id")
    kind: str
    source: str
    text_shown: str
    answer: str
    created_on: datetime

    @staticmethod
    def resolve_project(r: ConsentRecord) -> str | None:
        return r.project.slug if r.project is not None else None

    @staticmethod
    def resolve_case_id(r: ConsentRecord) -> str | None:
        # the case's own id, not the row's foreign key
        return r.case.case_id if r.case is not None else None


class ConsentList(Schema):
    count: int
    items: list[ConsentOut]


@router.get("/projects/{project}/consents", auth=READ, response=ConsentList, tags=["consent"])
def list_consents(
    request: HttpRequest,
    project: str,
    phone_number: str | None = None,
    kind: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> dict[str, object]:
    """The consent ledger: every request, consent, refusal, expiry, opt-out and opt-in, oldest first."""
    p = project_for(request, project)
    rows = ledger.consents(p, ledger.ConsentFilter(kind=kind, phone_number=phone_number))
    return paged(rows, limit, offset)


class RequestOut(Schema):
    """An opt-in or verification request (a ConsentRequest)."""

    id: int
    phone_number: str
    text_shown: str
    status: str
    expires_on: datetime


@router.post(
    "/projects/{project}/cases/{case_id}/opt-in-request", auth=SEND, response={202: RequestOut}, tags=["consent"]
)
def opt_in_request(request: HttpRequest, project: str, case_id: str) -> Status:
    """Send the opt-in question to this case; its Yes/1 records consent. At most one per contact per the
    project's interval (429 otherwise)."""
    p = project_for(request, project)
    case = case_queries.case(p, case_id)
    if case is None:
        raise InputError(errors.CASE_NOT_FOUND, f"No case '{case_id}' in this project.", 404)
    req = survey_consent.request_opt_in(p, case)
    return Status(202, req)


class VerifyIn(In):
    phone_number: str


@router.post(
    "/projects/{project}/mobile-workers/{worker_id}/verify", auth=SEND, response={202: RequestOut}, tags=["consent"]
)
def verify_worker_number(request: HttpRequest, project: str, worker_id: int, payload: VerifyIn) -> Status:
    """Send a verification code to one of the worker's numbers; the worker replies with the code."""
    p = project_for(request, project)
    w = worker_queries.worker(p, worker_id)
    if w is None:
        raise InputError(errors.MOBILE_WORKER_NOT_FOUND, f"No mobile worker {worker_id} in this project.", 404)
    req = verification.request_verification(p, w, payload.phone_number)
    return Status(202, req)
