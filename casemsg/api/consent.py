"""Consent endpoints: the ledger, opt-in requests and mobile-worker number verification."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status

from casemsg.api.core import page, project_for
from casemsg.cases.models import Case
from casemsg.consent import ledger, verification
from casemsg.consent import services as consent
from casemsg.consent.models import ConsentRequest
from casemsg.core.errors import InputError
from casemsg.gateways.base import digits
from casemsg.workers.models import MobileWorker

router = Router(tags=["consent"])


class ConsentOut(Schema):
    phone_number: str
    contact: str
    project: str | None
    case_id: str | None
    mobile_worker_id: int | None
    kind: str
    source: str
    text_shown: str
    answer: str
    created_on: datetime


@router.get("/projects/{project}/consents", response=list[ConsentOut], tags=["consent"])
def list_consents(
    request: HttpRequest,
    project: str,
    phone_number: str | None = None,
    kind: str | None = None,
    limit: int = 500,
    offset: int = 0,
):
    """The consent ledger: every request, consent, refusal, expiry, opt-out and opt-in, oldest first."""
    p = project_for(request, project)
    qs = ledger.rows(p)
    if phone_number:
        qs = qs.filter(phone_number=digits(phone_number))
    if kind:
        qs = qs.filter(kind=kind)
    return [ledger.as_json(r) for r in page(qs, limit, offset, max_limit=5000)]


class RequestOut(Schema):
    id: int
    phone_number: str
    text_shown: str
    status: str
    expires_on: datetime


@router.post("/projects/{project}/cases/{case_id}/opt-in-request", response={202: RequestOut}, tags=["consent"])
def opt_in_request(request: HttpRequest, project: str, case_id: str):
    """Send the opt-in question to this case; its Yes/1 records consent. At most one per contact per the
    project's interval (429 otherwise)."""
    p = project_for(request, project)
    case = Case.objects.filter(project=p, case_id=case_id).first()
    if case is None:
        raise InputError("CASE_NOT_FOUND", f"No case '{case_id}' in this project.", 404)
    req = consent.request_opt_in(p, case, source="api")
    return Status(202, _req_json(req))


def _req_json(r: ConsentRequest) -> dict:
    return {
        "id": r.pk,
        "phone_number": r.phone_number,
        "text_shown": r.text_shown,
        "status": r.status,
        "expires_on": r.expires_on,
    }


class VerifyIn(Schema):
    phone_number: str


@router.post("/projects/{project}/mobile-workers/{worker_id}/verify", response={202: RequestOut}, tags=["consent"])
def verify_worker_number(request: HttpRequest, project: str, worker_id: int, payload: VerifyIn):
    """Send a verification code to one of the worker's numbers; the worker replies with the code."""
    p = project_for(request, project)
    w = MobileWorker.objects.filter(project=p, pk=worker_id).first()
    if w is None:
        raise InputError("MOBILE_WORKER_NOT_FOUND", f"No mobile worker {worker_id} in this project.", 404)
    req = verification.request_verification(p, w, payload.phone_number)
    return Status(202, _req_json(req))
