"""GET /metrics: what the processes counted (casemsg.core.metrics, summed over every process in
multiprocess mode) and what the database knows, read at scrape time by `DatabaseCollector` with a few
aggregate queries (each served by an index, except the per-status message count, one GROUP BY)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from django.db.models import Count, Max, Min
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from casemsg.events.models import Delivery
from casemsg.messaging.models import Message
from casemsg.ops.models import WorkerHeartbeat
from casemsg.sources.models import Source

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DatabaseCollector(Collector):
    """Messages by channel, status and error code; the queue; workers; event deliveries; case sources."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        messages = GaugeMetricFamily(
            "casemsg_messages",
            "Messages stored, by direction, channel, status and error code (empty: none).",
            labels=["direction", "channel", "status", "error"],
        )
        for row in Message.objects.values("direction", "channel", "status", "error").annotate(n=Count("pk")):
            messages.add_metric([row["direction"], row["channel"], row["status"], row["error"]], row["n"])
        yield messages

        due = Message.objects.filter(status=Message.QUEUED, next_attempt_on__lte=now).aggregate(
            n=Count("pk"), oldest=Min("next_attempt_on")
        )
        yield GaugeMetricFamily("casemsg_queue_due_messages", "Queued messages due now (not delayed).", value=due["n"])
        yield GaugeMetricFamily(
            "casemsg_queue_oldest_due_age_seconds",
            "How long the oldest due message has been waiting (0: none waiting).",
            value=(now - due["oldest"]).total_seconds() if due["oldest"] else 0.0,
        )
        try:
            pending_jobs = float(HUEY.pending_count())
        except Exception:  # noqa: BLE001 — the queue being down is what casemsg_queue_up says
            pending_jobs, up = float("nan"), 0.0
        else:
            up = 1.0
        yield GaugeMetricFamily("casemsg_queue_up", "1 when the job queue answers.", value=up)
        yield GaugeMetricFamily("casemsg_jobs_pending", "Jobs waiting in the job queue.", value=pending_jobs)

        seen = WorkerHeartbeat.objects.aggregate(newest=Max("seen_on"))["newest"]
        yield GaugeMetricFamily(
            "casemsg_worker_heartbeat_age_seconds",
            "Seconds since a worker last beat (NaN: none ever did).",
            value=(now - seen).total_seconds() if seen else float("nan"),
        )

        pending = Delivery.objects.filter(next_attempt_utc__isnull=False).aggregate(
            n=Count("pk"), oldest=Min("created_on")
        )
        yield GaugeMetricFamily(
            "casemsg_event_deliveries_pending", "Event deliveries not yet delivered nor given up.", value=pending["n"]
        )
        yield GaugeMetricFamily(
            "casemsg_event_delivery_oldest_pending_age_seconds",
            "Age of the oldest pending event delivery (0: none pending).",
            value=(now - pending["oldest"]).total_seconds() if pending["oldest"] else 0.0,
        )

        behind = GaugeMetricFamily(
            "casemsg_source_lag_seconds",
            "Seconds a case source is behind its system: since the start of its last good sync (NaN: never synced).",
            labels=["project", "source", "type", "status"],
        )
        for src in Source.objects.filter(active=True).values("project__slug", "name", "type", "status", "synced_until"):
            lag = (now - src["synced_until"]).total_seconds() if src["synced_until"] else float("nan")
            behind.add_metric([src["project__slug"], src["name"], src["type"], src["status"]], lag)
        yield behind


_database = CollectorRegistry(auto_describe=False)
_database.register(DatabaseCollector())


def exposition() -> bytes:
    """The text the scrape gets: the counters of every process, then the database's figures."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    return counted + generate_latest(_database)
