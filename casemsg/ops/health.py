"""Liveness and readiness.

- ``/healthz``: the process answers (no database, no queue): restart it if this fails.
- ``/readyz``: it can do its work — the database answers, every migration is applied, the job queue
  answers, a worker beat within CASEMSG_WORKER_STALE_SECONDS — with the age of the oldest due message and
  of the oldest pending event delivery as detail. 503 when any check fails: take it out of the load
  balancer, and look at the failing check's `detail`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Min
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from casemsg.core import netguard
from casemsg.events.models import Delivery
from casemsg.messaging.models import Message
from casemsg.ops import heartbeat

_migrated = False  # once every migration is applied it stays so for this process's code


def _short(exc: BaseException) -> str:
    return netguard.excerpt(f"{type(exc).__name__}: {exc}", 200)


def check_database() -> dict[str, Any]:
    with connections[DEFAULT_DB_ALIAS].cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return {"ok": True, "vendor": connections[DEFAULT_DB_ALIAS].vendor}


def check_migrations() -> dict[str, Any]:
    global _migrated
    if not _migrated:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            names = [f"{m.app_label}.{m.name}" for m, _backwards in plan[:5]]
            return {"ok": False, "detail": f"{len(plan)} migrations not applied ({', '.join(names)}); run migrate"}
        _migrated = True
    return {"ok": True}


def check_queue() -> dict[str, Any]:
    return {"ok": True, "backend": type(HUEY).__name__, "pending_jobs": HUEY.pending_count()}


def check_worker() -> dict[str, Any]:
    age = heartbeat.newest_age_seconds()
    limit = settings.CASEMSG_WORKER_STALE_SECONDS
    if age is None:
        return {"ok": False, "detail": "no worker has ever run against this database; start `casemsg worker`"}
    ok = age <= limit
    out: dict[str, Any] = {"ok": ok, "last_seen_seconds_ago": round(age, 1)}
    if not ok:
        out["detail"] = f"no worker seen for {age:.0f} s (limit {limit:g} s); start or restart `casemsg worker`"
    return out


def check_backlog() -> dict[str, Any]:
    """Information, never failing: how far behind sending and event deliveries are."""
    now = timezone.now()
    due = Message.objects.filter(status=Message.QUEUED, next_attempt_on__lte=now).aggregate(
        n=Count("pk"), oldest=Min("next_attempt_on")
    )
    pending = Delivery.objects.filter(next_attempt_utc__isnull=False).aggregate(n=Count("pk"), oldest=Min("created_on"))
    return {
        "ok": True,
        "due_messages": due["n"],
        "oldest_due_message_age_seconds": round((now - due["oldest"]).total_seconds(), 1) if due["oldest"] else 0,
        "pending_event_deliveries": pending["n"],
        "oldest_pending_delivery_age_seconds": (
            round((now - pending["oldest"]).total_seconds(), 1) if pending["oldest"] else 0
        ),
    }


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "migrations": check_migrations,
    "queue": check_queue,
    "worker": check_worker,
    "backlog": check_backlog,
}
# What cannot be checked without the database.
_NEEDS_DATABASE = ("migrations", "worker", "backlog")


def readiness() -> tuple[bool, dict[str, Any]]:
    """(ready, {"ready", "checks": {name: {"ok", "detail"?, …, "ms"}}})."""
    checks: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        if name in _NEEDS_DATABASE and not checks["database"]["ok"]:
            checks[name] = {"ok": False, "detail": "skipped: the database is unreachable"}
            continue
        started = time.perf_counter()
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 — a failing dependency is the answer, not an error
            result = {"ok": False, "detail": _short(exc)}
            if name == "database":
                connections[DEFAULT_DB_ALIAS].close()  # reconnect next time instead of reusing a dead one
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        checks[name] = result
    ready = all(c["ok"] for c in checks.values())
    return ready, {"ready": ready, "checks": checks}
