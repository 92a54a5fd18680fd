"""Event webhooks: a project's endpoints (CRUD), a test event, and each endpoint's delivery log.

The signing secret is answered once, by the POST that creates the endpoint (docs/webhooks.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, WRITE, In, paged, project_for
from casemsg.events import deliver, queries, services
from casemsg.events.models import EVENTS, Delivery, Endpoint

router = Router(tags=["event webhooks"])

_EVENTS_HELP = f"Events to receive: {', '.join(EVENTS)}."


class EndpointIn(In):
    url: str = Field(max_length=2000, description="Where casemsg POSTs the events (http:// or https://).")
    events: list[str] = Field(description=_EVENTS_HELP, max_length=len(EVENTS) * 2)
    description: str = Field("", max_length=200)


class EndpointPatch(In):
    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = Field(None, description=_EVENTS_HELP, max_length=len(EVENTS) * 2)
    description: str | None = Field(None, max_length=200)
    active: bool | None = None


class EndpointOut(Schema):
    id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_on: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret; shown only in this answer. Keep it.")


class EndpointList(Schema):
    count: int
    items: list[EndpointOut]


class DeliveryOut(Schema):
    id: str
    event: str
    state: str = Field(description="pending, delivered or failed (given up).")
    message_id: int | None
    data: dict[str, Any]
    attempts: int
    created_on: datetime
    next_attempt_on: datetime | None
    last_attempt_on: datetime | None
    last_status: int | None = Field(description="The HTTP status the endpoint last answered.")
    last_response: str = Field(description="A short plain-text excerpt of that answer.")
    last_error: str = Field(description="Why there was no answer (timeout, refused connection …).")
    delivered_on: datetime | None


class DeliveryList(Schema):
    count: int
    items: list[DeliveryOut]


def _endpoint(e: Endpoint) -> dict[str, Any]:
    return {
        "id": e.pk,
        "url": e.url,
        "events": e.events,
        "description": e.description,
        "active": e.active,
        "created_on": e.created_on,
    }


def _delivery(d: Delivery) -> dict[str, Any]:
    return {
        "id": f"evt_{d.pk}",
        "event": d.event,
        "state": d.state,
        "message_id": d.message_id,
        "data": d.payload,
        "attempts": d.attempts,
        "created_on": d.created_on,
        "next_attempt_on": d.next_attempt_utc if d.claim == "" else None,
        "last_attempt_on": d.last_attempt_on,
        "last_status": d.last_status,
        "last_response": d.last_response,
        "last_error": d.last_error,
        "delivered_on": d.delivered_on,
    }


@router.post("/projects/{project}/webhooks", auth=WRITE, response={201: EndpointCreated})
def create_webhook(request: HttpRequest, project: str, payload: EndpointIn):
    """Register an endpoint; the URL is checked like a gateway URL (422 WEBHOOK_URL_NOT_ALLOWED)."""
    p = project_for(request, project)
    e = services.create_endpoint(p, payload.url, payload.events, payload.description)
    return Status(201, {**_endpoint(e), "secret": e.secret})


@router.get("/projects/{project}/webhooks", auth=READ, response=EndpointList)
def list_webhooks(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, object]:
    p = project_for(request, project)
    listed = paged(queries.endpoints(p), limit, offset)
    return {"count": listed["count"], "items": [_endpoint(e) for e in listed["items"]]}


@router.get("/projects/{project}/webhooks/{webhook_id}", auth=READ, response=EndpointOut)
def get_webhook(request: HttpRequest, project: str, webhook_id: int) -> dict[str, Any]:
    return _endpoint(services.find_endpoint(project_for(request, project), webhook_id))


@router.patch("/projects/{project}/webhooks/{webhook_id}", auth=WRITE, response=EndpointOut)
def update_webhook(request: HttpRequest, project: str, webhook_id: int, payload: EndpointPatch) -> dict[str, Any]:
    """Change the URL, the events, the description or switch it off (`active`); all or nothing."""
    with transaction.atomic():
        e = services.find_endpoint(project_for(request, project), webhook_id)
        services.update_endpoint(
            e, url=payload.url, events=payload.events, description=payload.description, active=payload.active
        )
    return _endpoint(e)


@router.delete("/projects/{project}/webhooks/{webhook_id}", auth=WRITE, response={204: None})
def delete_webhook(request: HttpRequest, project: str, webhook_id: int):
    """Delete the endpoint and its delivery log."""
    services.delete_endpoint(services.find_endpoint(project_for(request, project), webhook_id))
    return Status(204, None)


@router.post("/projects/{project}/webhooks/{webhook_id}/test", auth=WRITE, response=DeliveryOut)
def test_webhook(request: HttpRequest, project: str, webhook_id: int) -> dict[str, Any]:
    """Send a `test` event now and answer how it went; a failed one is retried like any delivery."""
    e = services.find_endpoint(project_for(request, project), webhook_id)
    return _delivery(deliver.deliver_now(services.queue_test(e)))


@router.get("/projects/{project}/webhooks/{webhook_id}/deliveries", auth=READ, response=DeliveryList)
def list_deliveries(
    request: HttpRequest,
    project: str,
    webhook_id: int,
    state: Literal["pending", "delivered", "failed"] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, object]:
    """The endpoint's delivery log, newest first, with the last response of each."""
    e = services.find_endpoint(project_for(request, project), webhook_id)
    listed = paged(queries.deliveries(e, state), limit, offset)
    return {"count": listed["count"], "items": [_delivery(d) for d in listed["items"]]}
