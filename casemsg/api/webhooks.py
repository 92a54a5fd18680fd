"""The provider webhooks of every gateway type, in one place: inbound SMS and delivery reports, each in
the provider's own format (read by the type's `parse_inbound` / `parse_status`).

Both are authenticated by the gateway's secret key in the URL, then by the provider's signature where
the type has one (`verify_request`). This router is mounted first (casemsg/api/urls.py): URL resolution
tries patterns in order, and provider webhooks are the hottest path.
"""

from __future__ import annotations

import hmac
import time

from django.http import HttpRequest, HttpResponse
from ninja import Router

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways.base import GatewayType
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import adapter_for
from casemsg.inbound import router as inbound
from casemsg.messaging.pipeline import apply_status_updates

router = Router(tags=["webhooks"])

# Webhooks come in bursts from one gateway: its row is kept for a few seconds (per process, keyed by
# name and secret key, so a new or re-keyed gateway is never confused with an old one). A changed config
# or a deleted gateway takes effect within this many seconds.
WEBHOOK_GATEWAY_TTL = 5.0
_webhook_gateways: dict[tuple[str, str], tuple[float, Gateway]] = {}


def gateway_for_webhook(name: str, key: str) -> Gateway:
    """Webhooks are authenticated by the secret key in their URL (and a provider signature if any)."""
    now = time.monotonic()
    hit = _webhook_gateways.get((name, key))
    if hit is not None and now - hit[0] < WEBHOOK_GATEWAY_TTL:
        return hit[1]
    gw = Gateway.objects.filter(name=name).first()
    if gw is None or not hmac.compare_digest(gw.inbound_key, key):
        raise InputError(errors.FORBIDDEN, "Unknown gateway or wrong key.", 403)
    if len(_webhook_gateways) > 1000:
        _webhook_gateways.clear()
    _webhook_gateways[(name, key)] = (now, gw)
    return gw


def _verified(request: HttpRequest, name: str, key: str) -> tuple[Gateway, GatewayType]:
    gw = gateway_for_webhook(name, key)
    adapter = adapter_for(gw)
    if not adapter.verify_request(request):
        raise InputError(errors.FORBIDDEN, "The request signature is not valid.", 403)
    return gw, adapter


@router.post("/gateways/{name}/{key}/inbound", auth=None)
def inbound_webhook(request: HttpRequest, name: str, key: str) -> HttpResponse:
    """Inbound SMS in the provider's own format, at the URL holding the gateway's secret key. Twilio
    requests must also carry a valid X-Twilio-Signature. Stored at once; processed as a job."""
    gw, adapter = _verified(request, name, key)
    inbound.receive(gw, adapter.parse_inbound(request))
    return adapter.inbound_response()


@router.post("/gateways/{name}/{key}/status", auth=None)
def status_callback(request: HttpRequest, name: str, key: str) -> HttpResponse:
    """Delivery reports, in the provider's own format."""
    gw, adapter = _verified(request, name, key)
    apply_status_updates(gw, adapter.parse_status(request))
    return HttpResponse("", status=200)
