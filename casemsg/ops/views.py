"""/healthz, /readyz and /metrics (mounted by casemsg/urls.py, outside the API and the pages)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from casemsg.core import errors
from casemsg.ops import health, metrics


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers: no dependency is asked."""
    return JsonResponse({"ok": True})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    ready, detail = health.readiness()
    return JsonResponse(detail, status=200 if ready else 503)


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; `Authorization: Bearer CASEMSG_METRICS_TOKEN`."""
    token = settings.CASEMSG_METRICS_TOKEN
    if not token:
        return _error(errors.FORBIDDEN, "Metrics are off: set CASEMSG_METRICS_TOKEN to turn them on.", 403)
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        response = _error(errors.UNAUTHENTICATED, "Send the metrics token as 'Authorization: Bearer TOKEN'.", 401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
