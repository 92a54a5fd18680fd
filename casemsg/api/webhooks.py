"""The provider webhooks of every gateway type, in one place: inbound SMS and delivery reports, each in
the provider's own format (read by the type's `parse_inbound` / `parse_status`).

Both are authenticated by the gateway's secret key in the URL, then by the provider's signature where
the type has one (`verify_request`). This router is mounted first (casemsg/api/urls.py): URL resolution
tries patterns in order, and provider webhooks are the hottest path. In a running server they do not
even get that far: the `fast_path` middleware (early in settings.MIDDLEWARE) hands a POST to a webhook
URL straight to its view, past the middleware a provider's request needs none of (sessions, CSRF — the
API is exempt —, users, messages, htmx, page access, actor, login throttling) and past Ninja's routing:
authenticate, store, answer, nothing else (docs/scale-out.md, "Inbound at scale").

Robustness (docs/gateways.md, "Webhook robustness"): a request that passes authentication is either
stored — every inbound message keeps the provider's raw payload, and values are cleaned and bounded
before the database sees them (casemsg.gateways.cleaning) — or answered 4xx with a catalogue code and the
reason. No input answers 500.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Router

from casemsg.api.core import error_body
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.gateways import cleaning
from casemsg.gateways import queries as gateway_queries
from casemsg.gateways.base import GatewayType
from casemsg.gateways.models import Gateway
from casemsg.gateways.registry import adapter_for
from casemsg.inbound import receive as inbound
from casemsg.messaging.pipeline import apply_status_updates

log = logging.getLogger(__name__)
router = Router(tags=["webhooks"])
T = TypeVar("T")

# What a gateway name (gateways.services) and an inbound key (secrets.token_urlsafe) can look like: anything
# else is refused before the database sees it (a NUL, a non-ASCII key hmac cannot compare, 10 kB of junk).
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")
# A body Django cannot read (a broken multipart, too many fields, too large) or cannot decode.
_UNREADABLE = (MultiPartParserError, SuspiciousOperation, UnicodeError, ValueError)

# Webhooks come in bursts from one gateway: its row is kept for a few seconds (per process, keyed by
# name and secret key, so a new or re-keyed gateway is never confused with an old one). A changed config
# or a deleted gateway takes effect within this many seconds.
WEBHOOK_GATEWAY_TTL = 5.0
_webhook_gateways: dict[tuple[str, str], tuple[float, Gateway]] = {}


def gateway_for_webhook(name: str, key: str) -> Gateway:
    """Webhooks are authenticated by the secret key in their URL (and a provider signature if any)."""
    if not _NAME.fullmatch(name) or not _KEY.fullmatch(key):
        raise InputError(errors.FORBIDDEN, "Unknown gateway or wrong key.", 403)
    now = time.monotonic()
    hit = _webhook_gateways.get((name, key))
    if hit is not None and now - hit[0] < WEBHOOK_GATEWAY_TTL:
        return hit[1]
    # Names are unique per project only: the secret key (unique) finds the gateway, and the name must match.
    gw = gateway_queries.by_inbound_key(key)
    if gw is None or not hmac.compare_digest(gw.name.encode(), name.encode()):
        raise InputError(errors.FORBIDDEN, "Unknown gateway or wrong key.", 403)
    if len(_webhook_gateways) > 1000:
        _webhook_gateways.clear()
    _webhook_gateways[(name, key)] = (now, gw)
    return gw


def _read(what: str, gw: Gateway, step: Callable[[], T]) -> T:
    """Run one step that reads the body: a body it cannot read is a 400 naming the problem; a failure of
    casemsg's own parsing code is logged and answered 400 too, never 500."""
    try:
        return step()
    except InputError:
        raise
    except _UNREADABLE as exc:
        raise InputError(errors.INVALID_WEBHOOK, f"The {what} could not be read: {exc}"[:300], 400) from exc
    except Exception as exc:  # noqa: BLE001 — a webhook never answers 500; the log has the details
        log.exception("gateway %s: could not parse a %s", gw.name, what)
        raise InputError(
            errors.INVALID_WEBHOOK, f"The {what} could not be read ({type(exc).__name__}); see the server log.", 400
        ) from exc


def _verified(request: HttpRequest, name: str, key: str) -> tuple[Gateway, GatewayType, bytes]:
    gw = gateway_for_webhook(name, key)
    adapter = adapter_for(gw)
    # Read the body before any form parsing, so that it stays available as the raw payload (Django
    # streams multipart bodies otherwise).
    body = _read("webhook body", gw, lambda: request.body)
    try:
        valid = adapter.verify_request(request)
    except InputError:
        raise  # the check needed the body and could not read it (an http gateway's secret parameter)
    except _UNREADABLE as exc:
        raise InputError(errors.INVALID_WEBHOOK, f"The webhook body could not be read: {exc}"[:300], 400) from exc
    except Exception:  # noqa: BLE001 — a signature that cannot even be checked is not valid
        log.warning("gateway %s: the signature check failed", gw.name, exc_info=True)
        valid = False
    if not valid:
        raise InputError(errors.FORBIDDEN, "The request signature is not valid.", 403)
    return gw, adapter, body


@router.post("/gateways/{name}/{key}/inbound", auth=None)
def inbound_webhook(request: HttpRequest, name: str, key: str) -> HttpResponse:
    """Inbound SMS in the provider's own format, at the URL holding the gateway's secret key. Twilio
    requests must also carry a valid X-Twilio-Signature. Stored at once, with the raw payload; processed
    as a job. A message whose sender is not a phone number is stored but not processed (INVALID_SENDER)."""
    gw, adapter, body = _verified(request, name, key)
    items = _read("inbound message", gw, lambda: adapter.parse_inbound(request))
    inbound.receive(gw, items, raw=cleaning.raw_payload(request, body))
    if adapter.statuses_with_inbound:
        # Meta posts statuses (sent, delivered, read, failed) to the same URL as messages
        updates = _read("status callback", gw, lambda: adapter.parse_status(request))
        apply_status_updates(gw, [cleaning.clean_status(u) for u in updates])
    return adapter.inbound_response()


@router.get("/gateways/{name}/{key}/inbound", auth=None)
def verify_webhook(request: HttpRequest, name: str, key: str) -> HttpResponse:
    """A provider's webhook verification: Meta's GET with hub.mode=subscribe, hub.verify_token (the
    gateway's verify_token) and hub.challenge, answered with the challenge; 403 otherwise."""
    gw = gateway_for_webhook(name, key)
    adapter = adapter_for(gw)
    answer = adapter.verify_subscription(request)
    if answer is None:
        raise InputError(errors.FORBIDDEN, "The webhook verification failed (mode or verify token).", 403)
    return answer


@router.post("/gateways/{name}/{key}/status", auth=None)
def status_callback(request: HttpRequest, name: str, key: str) -> HttpResponse:
    """Delivery reports, in the provider's own format."""
    gw, adapter, _body = _verified(request, name, key)
    updates = _read("status callback", gw, lambda: adapter.parse_status(request))
    apply_status_updates(gw, [cleaning.clean_status(u) for u in updates])
    return HttpResponse("", status=200)


_WEBHOOK_PATH = re.compile(r"/api/v1/gateways/([^/]+)/([^/]+)/(inbound|status)")
_WEBHOOK_VIEWS = {"inbound": inbound_webhook, "status": status_callback}


def fast_path(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: a POST to a provider webhook goes straight to its view (the same function Ninja routes
    to; any other method takes the normal way, to its 405). Errors answer in the API's JSON shape."""

    def middleware(request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if request.method != "POST" or not path.startswith("/api/v1/gateways/"):
            return get_response(request)
        match = _WEBHOOK_PATH.fullmatch(path)
        if match is None:
            return get_response(request)
        name, key, kind = match.groups()
        try:
            return _WEBHOOK_VIEWS[kind](request, name, key)
        except InputError as exc:
            return JsonResponse(error_body(exc.code, exc.message), status=exc.status)

    return middleware
