"""The worker heartbeat: each `casemsg worker` renews its row every BEAT_SECONDS; /readyz and /metrics
read the newest. Rows of workers gone for a day are removed by the survivors."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone

from casemsg.ops.models import WorkerHeartbeat

log = logging.getLogger(__name__)

BEAT_SECONDS = 10.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(name: str | None = None) -> None:
    """Renew this worker's row (created on its first beat)."""
    now = timezone.now()
    name = name or worker_name()
    if not WorkerHeartbeat.objects.filter(name=name).update(seen_on=now):
        WorkerHeartbeat.objects.update_or_create(name=name, defaults={"started_on": now, "seen_on": now})
    WorkerHeartbeat.objects.filter(seen_on__lt=now - timedelta(days=1)).delete()


def stop(name: str | None = None) -> None:
    """A worker stopping cleanly removes its row, so readiness does not count it."""
    WorkerHeartbeat.objects.filter(name=name or worker_name()).delete()


def run(stop_event: threading.Event, interval: float = BEAT_SECONDS) -> None:
    name = worker_name()
    while not stop_event.is_set():
        try:
            close_old_connections()
            beat(name)
        except Exception:  # noqa: BLE001 — a database hiccup must not end the heartbeat
            log.warning("worker heartbeat failed; retrying", exc_info=True)
        stop_event.wait(interval)
    try:
        stop(name)
    except Exception:  # noqa: BLE001 — the database may be the reason we stop
        log.warning("could not remove the worker heartbeat", exc_info=True)


def newest_age_seconds() -> float | None:
    """Seconds since any worker last beat; None when none ever did."""
    seen = WorkerHeartbeat.objects.order_by("-seen_on").values_list("seen_on", flat=True).first()
    return None if seen is None else max(0.0, (timezone.now() - seen).total_seconds())
