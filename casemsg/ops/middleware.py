"""Provider webhooks (inbound messages, status callbacks) counted and timed for /metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from casemsg.core import metrics

_WEBHOOK = re.compile(r"^/api/v1/gateways/[^/]+/[^/]+/(inbound|status)$")


def webhook_metrics(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        match = _WEBHOOK.match(request.path) if request.path.startswith("/api/v1/gateways/") else None
        if match is None:
            return get_response(request)
        started = time.perf_counter()
        response = get_response(request)
        kind = match.group(1)
        metrics.WEBHOOK_REQUESTS.labels(kind, str(response.status_code)).inc()
        metrics.WEBHOOK_LATENCY.labels(kind).observe(time.perf_counter() - started)
        return response

    return middleware
