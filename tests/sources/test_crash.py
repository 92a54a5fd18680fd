"""One sync at a time per source, and exactly once: a `casemsg sources sync` process killed (kill -9)
mid-sync leaves its lease to run out; the next sync goes on with the same run from its cursor, and the
cases equal those of one clean sync. A sync whose lease passed to another worker writes nothing more."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.projects.services import create_project
from casemsg.sources import services, sync
from casemsg.sources.models import Source, SourceRun
from tests.conftest import database_url
from tests.sources.helpers import run_sync

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cases(project) -> list[tuple]:
    return sorted(
        Case.objects.filter(project=project).values_list(
            "case_id", "case_type", "name", "owner_id", "parent_id", "properties", "closed"
        )
    )


@pytest.mark.slow
def test_a_sync_killed_mid_way_goes_on_and_equals_one_clean_sync(transactional_db, fake_source, tmp_path):
    fake = fake_source("commcare")
    fake.add(40)
    fake.latency = 0.15  # a page every ~0.15 s: the kill lands mid-sync
    project, _ = create_project("killed", "Killed")
    source = services.add_source(project, "cc", "commcare", fake.config(page_size=4))
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    env.update(
        CASEMSG_DATABASE_URL=database_url(),
        CASEMSG_DATA_DIR=str(tmp_path),
        CASEMSG_GATEWAY_ALLOW_PRIVATE="1",
        DJANGO_SETTINGS_MODULE="casemsg.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    args = [sys.executable, "-m", "casemsg", "sources", "sync", "cc", "--project", "killed", "--lease", "2", "--quiet"]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    try:
        while True:
            run = SourceRun.objects.filter(source=source).first()
            if run is not None and run.pages >= 3:
                break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the sync did not get going"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    killed = SourceRun.objects.get(source=source)
    assert killed.status == SourceRun.RUNNING and 3 <= killed.pages < 10
    applied = Case.objects.filter(project=project).count()
    assert applied == killed.created == killed.pages * 4  # each committed page, with its cursor, and no more
    source.refresh_from_db()
    assert sync.acquire(source.pk) is None  # the dead process's lease still holds

    fake.latency = 0.0
    while True:  # its lease runs out within 2 s
        token = sync.acquire(source.pk)
        if token is not None:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    done = sync.run(source.pk, token, trigger="cli")
    assert done is not None and done.pk == killed.pk  # the same run went on
    assert (done.status, done.resumed, done.pages, done.created, done.updated) == ("succeeded", 1, 10, 40, 0)
    assert done.unchanged == 0  # nothing read twice was applied again

    clean_project, _ = create_project("clean", "Clean")
    clean = services.add_source(clean_project, "cc", "commcare", fake.config(page_size=4))
    assert run_sync(clean).created == 40
    assert _cases(project) == _cases(clean_project)


def test_one_sync_at_a_time_and_a_lost_lease_writes_nothing(project, fake_source, make_source):
    fake = fake_source("commcare")
    fake.add(10)
    source = make_source(fake)
    first = sync.acquire(source.pk)
    assert first is not None
    assert sync.acquire(source.pk) is None  # one sync at a time
    # the first sync stalls past its lease; another worker takes the source over
    Source.objects.filter(pk=source.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    second = sync.acquire(source.pk)
    assert second is not None and second != first
    assert sync.run(source.pk, first) is None  # stops at once: it no longer holds the source
    assert Case.objects.filter(project=project).count() == 0
    run = sync.run(source.pk, second)
    assert run is not None and run.created == 10
