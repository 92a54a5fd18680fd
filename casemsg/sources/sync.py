"""One sync of a source: incremental (what changed since the watermark, less an overlap) or full.

**One at a time per source, across workers and machines**: a sync holds the source's row lease (`lease_token`,
`lease_until`), taken with `casemsg.core.claims` (a conditional UPDATE; SKIP LOCKED on PostgreSQL) and renewed
at every page and while a page is read (a Retry-After wait included). Each page is applied in one transaction
that starts by renewing the lease *on the condition that this sync still holds it*: a sync whose lease passed
to another worker (it stalled longer than the lease) writes nothing more. A worker that dies leaves the lease
to run out; the next sync then goes on with the same run from its cursor.

**Exactly once**: a page's case writes, the run's counts and log, and the cursor of the next page commit
together. A sync killed at any point has either applied a page with its cursor or neither; the next sync
goes on from the cursor (or, when the source no longer takes it, from the watermark), and what it reads
again changes nothing (`casemsg.sources.apply` writes only what changes), so the result equals one clean
sync. The watermark moves only at the end of a run that read everything: to the newest modification time
read, but never past the source's clock when the run began (a change made while the run read is read
again by the next run), and never backwards. Incremental runs read from the watermark less `overlap`
seconds (default 120: CommCare indexes and replicates with a delay).

**Failures**: 429 and 5xx are retried within the run (`casemsg.sources.client`, honouring Retry-After);
a run that still fails is recorded with its code, the source is marked `failing` and tried again after a
back-off (the interval, doubled for each failure in a row, at most a day; at least what Retry-After
asked), never in a hot loop. Its cursor is kept: the next run goes on where it stopped.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from casemsg.core import actor, claims, errors
from casemsg.sources import apply, runs
from casemsg.sources.base import Page, SourceType
from casemsg.sources.client import Client, SourceError
from casemsg.sources.models import Source, SourceRun
from casemsg.sources.registry import SOURCE_TYPES

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0
OVERLAP_SECONDS = 120
CLOCK_MARGIN = timedelta(seconds=2)  # the Date header counts whole seconds
MAX_BACKOFF = timedelta(days=1)

Progress = Callable[[SourceRun], None]


class LeaseLost(Exception):
    """Another worker holds the source now: this sync stops without writing anything more."""


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def acquire(source_id: int, lease: float = LEASE_SECONDS) -> str | None:
    """Take the source's lease for a sync; its token, or None when another sync holds it."""
    now = timezone.now()
    token = secrets.token_hex(8)
    free = Source.objects.filter(_free(now), pk=source_id)
    taken = claims.claim(free, order_by=["pk"], limit=1, lease_token=token, lease_until=now + timedelta(seconds=lease))
    return token if taken else None


def claim_due(limit: int, lease: float = LEASE_SECONDS) -> list[tuple[int, str]]:
    """Take the leases of up to `limit` active sources that are due; their (id, token)."""
    now = timezone.now()
    token = secrets.token_hex(8)
    due = Source.objects.filter(_free(now), active=True, next_sync_on__lte=now)
    taken = claims.claim(
        due, order_by=["next_sync_on", "pk"], limit=limit, lease_token=token, lease_until=now + timedelta(seconds=lease)
    )
    if not taken:
        return []
    return [(pk, token) for pk in Source.objects.filter(lease_token=token).values_list("pk", flat=True)]


def _renew(source_id: int, token: str, lease: float) -> None:
    held = Source.objects.filter(pk=source_id, lease_token=token)
    if not claims.renew(held, lease_until=timezone.now() + timedelta(seconds=lease)):
        raise LeaseLost(f"source {source_id}: another sync holds it now")


def release(source_id: int, token: str) -> None:
    claims.release(Source.objects.filter(pk=source_id, lease_token=token), lease_token="", lease_until=None)


def request(source: Source, full: bool = False) -> None:
    """Ask for a sync as soon as possible (the ticker's next claim, or `run` now)."""
    now = timezone.now()
    changes: dict[str, object] = {"next_sync_on": now}
    if full:
        changes["full_requested"] = True
    Source.objects.filter(pk=source.pk).update(**changes)
    source.next_sync_on = now
    source.full_requested = source.full_requested or full


def _backoff(source: Source, failures: int, retry_after: float | None) -> timedelta:
    base = timedelta(minutes=source.interval_minutes or 15)
    wait = min(base * (2 ** max(0, failures - 1)), MAX_BACKOFF)
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait


def _watermark_after(run: SourceRun) -> datetime | None:
    before = run.watermark_before
    high = run.high_water
    if high is None:
        return before
    if run.source_clock is not None:
        high = min(high, run.source_clock - CLOCK_MARGIN)
    return max(before, high) if before is not None else high


def run(
    source_id: int,
    token: str,
    *,
    trigger: str = "schedule",
    lease: float = LEASE_SECONDS,
    progress: Progress | None = None,
    client: Client | None = None,
) -> SourceRun | None:
    """Sync the source whose lease `token` holds (then release it). Returns the run (None for a source
    that is not read: a receiver, an unknown type)."""
    try:
        return _run(source_id, token, trigger, lease, progress, client)
    except LeaseLost:
        log.warning("source %s: the lease passed to another worker; this sync stopped", source_id)
        return None
    finally:
        release(source_id, token)


def _run(
    source_id: int, token: str, trigger: str, lease: float, progress: Progress | None, client: Client | None
) -> SourceRun | None:
    source = Source.objects.select_related("project").get(pk=source_id)
    kind = SOURCE_TYPES.get(source.type)
    if kind is None or not kind.pulls:
        Source.objects.filter(pk=source_id).update(next_sync_on=None)
        return None
    attempt_started = timezone.now()
    with transaction.atomic():
        _renew(source_id, token, lease)
        current = (
            SourceRun.objects.select_for_update()
            .filter(source=source, status=SourceRun.RUNNING, kind__in=[SourceRun.INCREMENTAL, SourceRun.FULL])
            .order_by("-started_on")
            .first()
        )
        if current is not None:  # the worker of this run stopped (its lease ran out): go on from its cursor
            current.resumed += 1
            runs.note(current, [{"record": "", "code": "", "reason": f"Went on from page {current.pages + 1}."}])
            current.save(update_fields=["resumed", "log", "log_dropped"])
            the_run = current
        else:
            full = source.full_requested or source.watermark is None
            the_run = runs.start(source, SourceRun.FULL if full else SourceRun.INCREMENTAL, trigger)
            if source.full_requested:
                Source.objects.filter(pk=source_id).update(full_requested=False)
            else:
                _go_on_after_failure(source, the_run)
    the_run.source = source
    own_client = client is None
    http = client or Client()
    try:
        reader = kind(source, http)
        _pages(source, the_run, reader, token, lease, progress)
    except SourceError as exc:
        _failed(source, the_run, token, lease, exc.code, exc.message, exc.retry_after)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 — recorded on the run and the source; the worker goes on
        detail = scrubbed(source, f"{type(exc).__name__}: {exc}")[:400]
        # no traceback: its frames could hold the source's credentials (docs/sources.md, "Trust")
        log.error("source %s: sync failed: %s", source_id, detail)
        _failed(source, the_run, token, lease, errors.SOURCE_BAD_ANSWER, detail, None)
    else:
        _succeeded(source, the_run, token, lease, attempt_started)
    finally:
        if own_client:
            http.close()
    the_run.refresh_from_db()
    return the_run


def _go_on_after_failure(source: Source, the_run: SourceRun) -> None:
    """A new run after a failed one that had applied pages goes on from its cursor, with what it read."""
    prev = (
        SourceRun.objects.filter(source=source, kind__in=[SourceRun.INCREMENTAL, SourceRun.FULL])
        .exclude(pk=the_run.pk)
        .order_by("-started_on", "-pk")
        .first()
    )
    if prev is None or prev.status != SourceRun.FAILED or prev.cursor is None:
        return
    the_run.kind, the_run.cursor = prev.kind, prev.cursor
    the_run.watermark_before, the_run.high_water, the_run.source_clock = (
        prev.watermark_before,
        prev.high_water,
        prev.source_clock,
    )
    the_run.total = prev.total
    entry = {"record": "", "code": "", "reason": f"Goes on from where run {prev.pk} stopped (page {prev.pages + 1})."}
    runs.note(the_run, [entry])
    the_run.save()


def _since(source: Source, the_run: SourceRun) -> datetime | None:
    if the_run.kind == SourceRun.FULL or the_run.watermark_before is None:
        return None
    configured = (source.config or {}).get("overlap_seconds")
    overlap = OVERLAP_SECONDS if configured in (None, "") else int(float(configured))
    return the_run.watermark_before - timedelta(seconds=overlap)


def _fetched(future: Future[Page], source_id: int, token: str, lease: float) -> Page:
    """The page being read in the reader's thread; meanwhile the lease is renewed (a 429 may make it wait
    up to a minute), here, in the sync's own thread and database connection."""
    while True:
        try:
            return future.result(timeout=max(1.0, lease / 4))
        except FutureTimeout:
            _renew(source_id, token, lease)


def _pages(
    source: Source, the_run: SourceRun, reader: SourceType, token: str, lease: float, progress: Progress | None
) -> None:
    """Read page after page and apply each in its own transaction. The next page is read (in a thread of
    its own: HTTP and JSON) while this one is applied, so the source and the database work at once."""
    cursor = the_run.cursor
    fresh = cursor is None
    if cursor is None:
        cursor = reader.first(_since(source, the_run))
    plan = apply.plan_for(source)
    with (
        actor.acting_as("import", runs.who(source)),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"source-{source.pk}-read") as reading,
    ):
        ahead = reading.submit(reader.page, cursor)
        while cursor is not None:
            try:
                page = _fetched(ahead, source.pk, token, lease)
            except SourceError as exc:
                if fresh or exc.code != errors.SOURCE_REQUEST_REFUSED:
                    raise
                # the source no longer takes the stopped run's cursor: start again from the watermark
                runs.note(the_run, [{"record": "", "code": exc.code, "reason": f"Cursor refused; read again: {exc}"}])
                cursor, fresh = reader.first(_since(source, the_run)), True
                ahead = reading.submit(reader.page, cursor)
                continue
            fresh = True
            if page.next is not None:
                ahead = reading.submit(reader.page, page.next)
            with transaction.atomic():
                _renew(source.pk, token, lease)  # first: locks the source row for this page; fails if taken
                outcome = apply.apply_records(source, page.records, page=the_run.pages + 1, plan=plan)
                runs.add_page(
                    the_run, outcome, records=len(page.records), cursor=page.next, total=page.total, clock=page.clock
                )
            if progress is not None:
                progress(the_run)
            cursor = page.next


def _succeeded(source: Source, the_run: SourceRun, token: str, lease: float, attempt_started: datetime) -> None:
    now = timezone.now()
    with transaction.atomic():
        _renew(source.pk, token, lease)
        the_run.watermark_after = _watermark_after(the_run)
        runs.finish(the_run, SourceRun.SUCCEEDED)
        changes: dict[str, object] = {
            "watermark": the_run.watermark_after,
            # (on casemsg's clock) every change the source made before this run began is applied
            "synced_until": min(the_run.started_on, the_run.source_clock or the_run.started_on),
            "status": Source.OK,
            "failures": 0,
            "last_error": "",
            "last_error_detail": "",
            "last_run_on": now,
        }
        Source.objects.filter(pk=source.pk).update(**changes)
        # the next one after the interval, unless someone asked for one while this one ran
        nxt = now + timedelta(minutes=source.interval_minutes) if source.interval_minutes else None
        Source.objects.filter(Q(next_sync_on__isnull=True) | Q(next_sync_on__lte=attempt_started), pk=source.pk).update(
            next_sync_on=nxt
        )


def scrubbed(source: Source, text: str) -> str:
    """`text` with each of the source's secrets (and its receiver key) replaced by <hidden>: what a run's
    log, the source's error and the logs may show of an answer or an exception."""
    kind = SOURCE_TYPES.get(source.type)
    secrets_ = [str(source.config.get(k) or "") for k in (kind.secret_keys() if kind else [])]
    for value in sorted({v for v in [*secrets_, source.receive_key] if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "<hidden>")
    return text


def _failed(
    source: Source, the_run: SourceRun, token: str, lease: float, code: str, detail: str, retry_after: float | None
) -> None:
    detail = scrubbed(source, detail)
    now = timezone.now()
    failures = source.failures + 1
    with transaction.atomic():
        _renew(source.pk, token, lease)
        runs.note(the_run, [{"record": "", "code": code, "reason": detail[:500]}])
        runs.finish(the_run, SourceRun.FAILED, error=code, detail=detail)
        Source.objects.filter(pk=source.pk).update(
            status=Source.FAILING,
            failures=failures,
            last_error=code,
            last_error_detail=detail[:500],
            last_run_on=now,
            next_sync_on=now + _backoff(source, failures, retry_after),
        )
