"""Running a sync the way a worker does (take the lease, sync, release)."""

from __future__ import annotations

from casemsg.sources import sync
from casemsg.sources.models import Source, SourceRun


def run_sync(source: Source, **kw: object) -> SourceRun:
    token = sync.acquire(source.pk)
    assert token is not None, "another sync holds the source"
    run = sync.run(source.pk, token, trigger="cli", **kw)  # type: ignore[arg-type]
    assert run is not None
    source.refresh_from_db()
    return run
