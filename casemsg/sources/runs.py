"""A run's record: its counts, its log, its end (and the `source.run` hook, the metrics).

A pulling run is written page by page in each page's own transaction (`add_page`), so its counts, its
log and its cursor are exactly what has been applied. A receiver's posts of one UTC day share one run
(`receiving_run`), so that CommCare's one post per case change does not make a run each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from casemsg.core import metrics
from casemsg.sources.apply import OUTCOMES, Outcome
from casemsg.sources.models import Source, SourceRun
from casemsg.sources.signals import run_finished

KEEP_RUNS = 500


def who(source: Source) -> str:
    """How the consent ledger names a source's writes (`recorded_by`; the ledger's source is `import`)."""
    return f"case source {source.name} ({source.type}, #{source.pk})"


def start(source: Source, kind: str, trigger: str) -> SourceRun:
    now = timezone.now()
    return SourceRun.objects.create(
        source=source,
        kind=kind,
        trigger=trigger,
        started_on=now,
        updated_on=now,
        watermark_before=source.watermark,
    )


def note(run: SourceRun, entries: list[dict[str, Any]]) -> None:
    """Append to the run's log (at most SourceRun.MAX_LOG entries; the rest are counted)."""
    room = max(0, SourceRun.MAX_LOG - len(run.log))
    run.log = [*run.log, *entries[:room]]
    run.log_dropped += max(0, len(entries) - room)


def add_page(
    run: SourceRun,
    outcome: Outcome,
    *,
    records: int,
    cursor: dict[str, Any] | None,
    total: int | None = None,
    clock: datetime | None = None,
    pages: int = 1,
) -> None:
    """Count a page in; saved (in the page's transaction)."""
    run.pages += pages
    run.records += records
    for name in OUTCOMES:
        setattr(run, name, getattr(run, name) + getattr(outcome, name))
    if outcome.high_water is not None and (run.high_water is None or outcome.high_water > run.high_water):
        run.high_water = outcome.high_water
    if run.total is None and total is not None:
        run.total = total
    if run.source_clock is None and clock is not None:
        run.source_clock = clock
    run.cursor = cursor
    run.updated_on = timezone.now()
    note(run, outcome.log)
    run.save()
    kind = run.source.type
    for name in OUTCOMES:
        n = getattr(outcome, name)
        if n:
            metrics.SOURCE_RECORDS.labels(kind, name).inc(n)


def finish(run: SourceRun, status: str, *, error: str = "", detail: str = "") -> None:
    """End the run (saved) and announce it, in the caller's transaction."""
    run.status = status
    run.finished_on = timezone.now()
    run.error, run.error_detail = error, detail[:500]
    run.cursor = None if status == SourceRun.SUCCEEDED else run.cursor
    run.save()
    metrics.SOURCE_RUNS.labels(run.source.type, status).inc()
    run_finished.send(SourceRun, source=run.source, run=run)
    # the log stays bounded: a source's KEEP_RUNS newest runs
    old = SourceRun.objects.filter(source_id=run.source_id).order_by("-started_on", "-pk").values("pk")[KEEP_RUNS:]
    stale = list(old[:1000])
    if stale:
        SourceRun.objects.filter(pk__in=[r["pk"] for r in stale]).delete()


def receiving_run(source: Source) -> SourceRun:
    """Today's (UTC) receiver run of the source, locked for this transaction; made when there is none."""
    now = timezone.now()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    run = (
        SourceRun.objects.select_for_update()
        .filter(source=source, kind=SourceRun.RECEIVE, started_on__gte=day)
        .order_by("-started_on")
        .first()
    )
    if run is None:
        run = SourceRun.objects.create(
            source=source,
            kind=SourceRun.RECEIVE,
            trigger="receiver",
            status=SourceRun.SUCCEEDED,
            started_on=now,
            updated_on=now,
            finished_on=now,
            watermark_before=source.watermark,
        )
    run.source = source
    return run


def add_post(run: SourceRun, outcome: Outcome, records: int) -> None:
    """Count a receiver's post in (saved), and note when the source was last heard from."""
    run.finished_on = timezone.now()
    add_page(run, outcome, records=records, cursor=None)
    Source.objects.filter(pk=run.source_id).update(
        last_run_on=run.finished_on, status=Source.OK, failures=0, last_error="", last_error_detail=""
    )
