"""Every area's router, mounted under /api/v1 (OpenAPI docs at /api/docs)."""

from casemsg.api.cases import router as cases_router
from casemsg.api.consent import router as consent_router
from casemsg.api.conversations import router as conversations_router
from casemsg.api.core import api
from casemsg.api.events import router as events_router
from casemsg.api.gateways import router as gateways_router
from casemsg.api.groups import router as groups_router
from casemsg.api.inbound import router as inbound_router
from casemsg.api.messaging import router as messaging_router
from casemsg.api.projects import router as projects_router
from casemsg.api.reports import router as reports_router
from casemsg.api.scheduling import router as scheduling_router
from casemsg.api.sources import router as sources_router
from casemsg.api.surveys import router as surveys_router
from casemsg.api.texts import router as texts_router
from casemsg.api.webhooks import router as webhooks_router
from casemsg.api.whatsapp import router as whatsapp_router
from casemsg.api.workers import router as workers_router

# Webhooks first: URL resolution tries patterns in order, and provider webhooks are the hottest path.
api.add_router("/v1", webhooks_router)
api.add_router("/v1", inbound_router)
api.add_router("/v1", gateways_router)
api.add_router("/v1", cases_router)
api.add_router("/v1", groups_router)
api.add_router("/v1", workers_router)
api.add_router("/v1", messaging_router)
api.add_router("/v1", consent_router)
api.add_router("/v1", surveys_router)
api.add_router("/v1", scheduling_router)
api.add_router("/v1", projects_router)
api.add_router("/v1", texts_router)
api.add_router("/v1", events_router)
api.add_router("/v1", sources_router)
api.add_router("/v1", whatsapp_router)
api.add_router("/v1", conversations_router)
api.add_router("/v1", reports_router)
