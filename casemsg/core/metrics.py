"""The Prometheus metrics every layer may record (prometheus-client), declared once here at the bottom.

Counters and histograms live in the process that records them. Under gunicorn and `casemsg worker` there
are several processes, so prometheus-client runs in *multiprocess mode*: each process writes its values to
files in the directory named by ``PROMETHEUS_MULTIPROC_DIR`` (``casemsg serve`` creates and empties one at
start), and ``GET /metrics`` adds them up (``casemsg.ops.metrics``). The variable must be set before
prometheus-client is imported, which is why the commands set it in the environment of the processes they
start rather than here. Without it (tests, ``manage.py runserver``) the process's own registry is used.

What the database knows (messages by status, queue depth, deliveries waiting) is not counted here: a
collector reads it with a few GROUP BY queries at scrape time (``casemsg.ops.metrics``), so it is the same
whichever process answers the scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: provider APIs answer in tens to hundreds of milliseconds; the timeouts are 15–30 s.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

GATEWAY_REQUESTS = Counter(
    "casemsg_gateway_requests",
    "HTTP calls to SMS providers, by gateway, gateway type and outcome "
    "(2xx, 4xx, 5xx, timeout, connection_error, blocked).",
    ["gateway", "type", "outcome"],
)
GATEWAY_LATENCY = Histogram(
    "casemsg_gateway_request_seconds",
    "Duration of HTTP calls to SMS providers (until the whole answer was read, or the call failed).",
    ["gateway", "type"],
    buckets=_LATENCY_BUCKETS,
)
WEBHOOK_REQUESTS = Counter(
    "casemsg_webhook_requests",
    "Provider webhooks received (inbound messages and status callbacks), by kind and HTTP status answered.",
    ["kind", "status"],
)
WEBHOOK_LATENCY = Histogram(
    "casemsg_webhook_request_seconds",
    "Time casemsg took to answer a provider webhook.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENT_DELIVERIES = Counter(
    "casemsg_event_deliveries",
    "Event webhook POSTs to projects' own systems, by event and outcome "
    "(2xx, 3xx, 4xx, 5xx, timeout, connection_error, blocked).",
    ["event", "outcome"],
)
EVENT_LATENCY = Histogram(
    "casemsg_event_delivery_seconds",
    "Duration of event webhook POSTs to projects' own systems.",
    buckets=_LATENCY_BUCKETS,
)

SOURCE_RUNS = Counter(
    "casemsg_source_runs",
    "Case source runs that ended, by source type and status (succeeded, failed).",
    ["type", "status"],
)
SOURCE_RECORDS = Counter(
    "casemsg_source_records",
    "Records read from case sources (syncs, receivers, files), by source type and outcome "
    "(created, updated, closed, unchanged, skipped).",
    ["type", "outcome"],
)


def http_outcome(status: int) -> str:
    """The outcome label of an HTTP answer: its status class."""
    return f"{status // 100}xx" if 100 <= status < 600 else "other"
