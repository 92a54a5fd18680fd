#!/usr/bin/env python
"""Bench: a case source's sync (issue 17) against the bulk path it writes through, in the same run.

100,000 cases wait in a fake CommCare HQ (fakes/sources.py, in a process of its own so that it does not
share this process's GIL; its cases' modification times spread over 30 days, as a real project's are).

1. first sync: a `commcare` source of a project reads them from the fake's Case API v2 in pages of 1,000
   (HTTP, JSON, the mapping, only-what-changes, the bulk path, a transaction per page);
   the floor: the same rows (ids, names, owner, the seeds' contact properties) through
   `cases.services.bulk_upsert` in batches of 1,000 — what bench/import_cases.py measures as the bulk
   path — into another project, a batch between two pages of the sync (the same load for both);
3. incremental sync: 1,000 of the 100,000 cases change at the source; the next sync reads from the
   watermark (less its overlap) and applies them.

Goals: the first sync at >= 0.5x the floor's rate; the incremental sync <= 5 s; this process's memory
during the syncs <= 300 MB whatever the number of cases (sampled every 50 ms; a sync holds one page).

    .venv/bin/python bench/source_sync.py                        # SQLite in a temporary data dir
    CASEMSG_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/source_sync.py

On PostgreSQL a fresh database `casemsg_bench_sources` is made beside the one in the URL and dropped at the
end. `--cases N` for another size (memory should not move with it).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _database import fresh_database  # noqa: E402

from fakes.sources import FakeSourceProcess, seed_properties  # noqa: E402

MB = 1024 * 1024


def rss() -> int:
    """This process's resident memory now (bytes)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Peak:
    """The highest RSS while the block runs (sampled every 50 ms)."""

    def __enter__(self) -> Peak:
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--page", type=int, default=1000)
    ap.add_argument("--changed", type=int, default=1000)
    args = ap.parse_args()
    os.environ["CASEMSG_GATEWAY_ALLOW_PRIVATE"] = "1"  # the fake listens on 127.0.0.1
    cleanup, _pg = fresh_database("casemsg_bench_sources")
    try:
        ok = _run(args)
    finally:
        cleanup()
    sys.exit(0 if ok else 1)


def _run(args: argparse.Namespace) -> bool:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "casemsg.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from casemsg.cases import services as cases
    from casemsg.cases.models import Case
    from casemsg.core import phone
    from casemsg.projects.services import create_project
    from casemsg.sources import services, sync

    call_command("migrate", verbosity=0)
    print(f"database: {'PostgreSQL' if settings.IS_POSTGRES else 'SQLite'} ({connection.settings_dict['NAME']})")
    n, page = args.cases, args.page
    started = time.perf_counter()
    with FakeSourceProcess("commcare", cases=n, spread_seconds=30 * 86400) as fake:
        print(f"fake CommCare HQ: {n:,} cases ready in {time.perf_counter() - started:.1f} s at {fake.url}")

        def change(i: int) -> cases.CaseChange:
            return cases.CaseChange(
                case_id=f"case-{i:07d}",
                case_type="mother",
                name=f"Person {i}",
                owner_id="owner-1",
                properties=seed_properties(i),
            )

        floor_project, _ = create_project("bench-floor", "Bulk path")
        sync_project, _ = create_project("bench-sync", "Case source")
        source = services.add_source(sync_project, "cchq", "commcare", {**fake.config(), "page_size": page})
        batches = iter(range(0, n, page))

        def forget_numbers() -> None:
            phone._cached_check.cache_clear()
            phone._normalized.cache_clear()

        floor = {"s": 0.0, "cpu": 0.0}

        def floor_batch(_run: object = None) -> None:
            """One batch of the floor, run between two pages of the sync, so that both see the same machine
            load and the same table sizes (this bench often shares its two cores with test runs)."""
            start = next(batches, None)
            if start is None:
                return
            rows = [change(i) for i in range(start, min(n, start + page))]
            # the numbers' checks are cached (core.phone): neither path may find the other's in the cache
            forget_numbers()
            t0, c0 = time.perf_counter(), time.process_time()
            cases.bulk_upsert(floor_project, rows)
            floor["s"] += time.perf_counter() - t0
            floor["cpu"] += time.process_time() - c0
            forget_numbers()

        cpu = {"sync": 0.0}

        def run_sync(between: object = None) -> tuple[float, object]:
            token = sync.acquire(source.pk)
            assert token is not None
            t0, c0 = time.perf_counter(), time.process_time()
            run = sync.run(source.pk, token, trigger="cli", progress=between)  # type: ignore[arg-type]
            cpu["sync"] = time.process_time() - c0
            return time.perf_counter() - t0, run

        with Peak() as first_mem:
            total_s, first = run_sync(floor_batch)
        for _rest in batches:
            floor_batch()
        first_s, floor_s = total_s - floor["s"], floor["s"]
        first_cpu = cpu["sync"] - floor["cpu"]
        assert first is not None and first.status == "succeeded", (first.status, first.error, first.error_detail)
        assert (first.created, first.skipped) == (n, 0), (first.created, first.skipped)
        gc.collect()
        if settings.IS_POSTGRES:
            with connection.cursor() as cur:  # what autovacuum does within a minute of a big load
                cur.execute("ANALYZE")

        changed = fake.touch(args.changed)
        with Peak() as inc_mem:
            inc_s, inc = run_sync()
        assert inc is not None and inc.status == "succeeded"
        assert inc.updated == len(changed) and inc.created == 0, (inc.updated, inc.created, inc.unchanged)

    # the outcome, so that a fast but wrong run cannot pass
    assert Case.objects.filter(project=sync_project).count() == n
    for i in range(0, n, max(1, n // 200)):
        a = Case.objects.get(project=floor_project, case_id=f"case-{i:07d}")
        b = Case.objects.get(project=sync_project, case_id=f"case-{i:07d}")
        assert (a.case_type, a.name, a.owner_id) == (b.case_type, b.name, b.owner_id), i
        assert {k: v for k, v in b.properties.items() if k != "visits"} == a.properties, i
    visited = Case.objects.get(project=sync_project, case_id=changed[0])
    assert visited.properties["visits"] == "1"

    floor_rate, sync_rate = n / floor_s, n / first_s
    ratio = sync_rate / floor_rate
    peak = max(first_mem.peak, inc_mem.peak)
    print(f"cases: {n:,}, pages of {page:,}")
    # Wall time is the figure; this process's CPU time is printed beside it, steadier on a busy machine (it
    # leaves out the fake's work, and on PostgreSQL the server's; the sync's includes its reading thread's).
    print(
        f"floor: bulk path (cases.services.bulk_upsert)  {floor_s:7.2f} s  {floor_rate:9,.0f} cases/s"
        f"                      (CPU {floor['cpu']:6.2f} s)"
    )
    print(
        f"first sync (HTTP, mapping, bulk path)        {first_s:7.2f} s  {sync_rate:9,.0f} cases/s  "
        f"ratio {ratio:.2f}x the floor  (CPU {first_cpu:6.2f} s, ratio {floor['cpu'] / first_cpu:.2f}x; "
        f"{first.pages} pages)"
    )
    print(
        f"incremental sync: {inc.updated:,} changed of {n:,}         {inc_s:7.2f} s  "
        f"({inc.records:,} read, {inc.unchanged:,} unchanged in the overlap)"
    )
    print(
        f"memory: {first_mem.start / MB:.0f} MB before the first sync, peak {first_mem.peak / MB:.0f} MB during it "
        f"(+{(first_mem.peak - first_mem.start) / MB:.0f} MB); peak {inc_mem.peak / MB:.0f} MB during the incremental"
    )
    goals = {
        "first sync >= 0.5x the bulk path's rate": ratio >= 0.5,
        "incremental sync of 1,000 changed <= 5 s": inc_s <= 5.0,
        "memory <= 300 MB": peak <= 300 * MB,
    }
    for goal, met in goals.items():
        print(f"goal: {goal}: {'met' if met else 'NOT met'}")
    return all(goals.values())


if __name__ == "__main__":
    main()
