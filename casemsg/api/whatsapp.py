"""WhatsApp templates, as the project's WhatsApp gateways' providers hold them (docs/whatsapp.md): listed,
and synced on demand. They are never created or edited here: that happens at the provider (Meta's
WhatsApp Manager, Twilio's Content Template Builder), where Meta approves them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from casemsg.api.core import READ, WRITE, project_for
from casemsg.gateways import queries as gateway_queries
from casemsg.gateways import services as gateway_services
from casemsg.gateways.models import WhatsAppTemplate

router = Router(tags=["whatsapp"])


class TemplateOut(Schema):
    gateway: str = Field(description="The WhatsApp gateway (business number) holding the template.")
    name: str
    language: str
    category: str
    status: str = Field(description="The provider's: APPROVED, PENDING, REJECTED, PAUSED, …; only APPROVED ones go.")
    body: str
    variables: list[str]
    components: list[Any]
    synced_on: datetime

    @staticmethod
    def resolve_gateway(t: WhatsAppTemplate) -> str:
        return t.gateway.name


class TemplateList(Schema):
    items: list[TemplateOut]


class SyncOut(Schema):
    gateways: dict[str, dict[str, int]]


@router.get("/projects/{project}/whatsapp-templates", auth=READ, response=TemplateList)
def list_templates(request: HttpRequest, project: str) -> dict[str, Any]:
    """The templates of the project's WhatsApp gateways (its own and the installation's), as last synced."""
    p = project_for(request, project)
    return {"items": gateway_queries.whatsapp_templates(p)}


@router.post("/projects/{project}/whatsapp-templates/sync", auth=WRITE, response=SyncOut)
def sync_templates(request: HttpRequest, project: str) -> dict[str, Any]:
    """Sync the templates of the project's own WhatsApp gateways from their providers now (the schedule
    does it every hour). A provider that refuses: 424 WHATSAPP_TEMPLATE_SYNC_FAILED, nothing changed."""
    p = project_for(request, project)
    return {"gateways": gateway_services.sync_whatsapp_templates(p)}
