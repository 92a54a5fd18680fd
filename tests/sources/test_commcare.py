"""CommCare HQ through its Case API v2 (the fake speaks its paging, auth and errors): the first sync
reads every page, the next reads what changed (closes too), 500 and 429 are waited out, wrong
credentials show on the source."""

from __future__ import annotations

import time

import pytest

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.sources.models import Source
from tests.sources.helpers import run_sync

pytestmark = pytest.mark.django_db


def test_first_sync_reads_five_pages_and_keeps_commcare_case_ids(project, fake_source, make_source):
    fake = fake_source("commcare")
    ids = fake.add(50, case_type="mother")
    source = make_source(fake, config={"page_size": 10})
    run = run_sync(source)
    assert (run.status, run.pages, run.records, run.total) == ("succeeded", 5, 50, 50)
    assert (run.created, run.updated, run.unchanged, run.skipped) == (50, 0, 0, 0)
    case = Case.objects.get(project=project, case_id=ids[7])
    assert case.case_type == "mother" and case.name == "Person 7" and case.owner_id == "owner-1"
    assert case.properties["contact_phone_number"] == "254710000007"
    assert source.status == Source.OK and source.watermark is not None
    reads = fake.data_requests()
    assert len(reads) == 5
    assert reads[0].headers["Authorization"] == f"ApiKey {fake.system.username}:{fake.system.api_key}"
    assert reads[0].query["limit"] == ["10"] and "indexed_on.gte" not in reads[0].query
    assert all("cursor" in r.query for r in reads[1:])


def test_next_sync_reads_changes_and_closes(project, fake_source, make_source):
    fake = fake_source("commcare")
    ids = fake.add(30)
    source = make_source(fake, config={"page_size": 10})
    run_sync(source)
    fake.update(ids[3], edd="2030-01-01", risk_level=None)
    fake.close(ids[4])
    fake.update(ids[5], parent_id="household-9")
    seen = len(fake.data_requests())
    run = run_sync(source)
    assert run.kind == "incremental" and run.watermark_before is not None
    # from the watermark less the overlap (which, seconds after the first sync, still covers every case)
    assert fake.data_requests()[seen].query["indexed_on.gte"]
    assert (run.updated, run.closed, run.created, run.skipped) == (2, 1, 0, 0)
    assert run.unchanged == run.records - 3
    changed = Case.objects.get(project=project, case_id=ids[3])
    assert changed.properties["edd"] == "2030-01-01" and "risk_level" not in changed.properties
    assert Case.objects.get(project=project, case_id=ids[4]).closed
    assert Case.objects.get(project=project, case_id=ids[5]).parent_id == "household-9"
    again = run_sync(source)
    assert (again.created, again.updated, again.closed) == (0, 0, 0)


def test_a_page_answered_500_then_200_is_read(project, fake_source, make_source):
    fake = fake_source("commcare")
    fake.add(20)
    source = make_source(fake, config={"page_size": 10})
    fake.fail(500, times=1)
    run = run_sync(source)
    assert (run.status, run.created) == ("succeeded", 20)
    assert [r.status for r in fake.data_requests()] == [500, 200, 200]


def test_429_waits_as_long_as_retry_after_says(project, fake_source, make_source):
    fake = fake_source("commcare")
    fake.add(5)
    source = make_source(fake)
    fake.fail(429, times=1, retry_after="1")
    started = time.monotonic()
    run = run_sync(source)
    assert run.status == "succeeded" and run.created == 5
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake.data_requests()] == [429, 200]


def test_a_long_retry_after_fails_the_run_and_backs_off(project, fake_source, make_source):
    fake = fake_source("commcare")
    fake.add(5)
    source = make_source(fake)
    fake.fail(429, times=1, retry_after="3600")
    run = run_sync(source)
    assert (run.status, run.error) == ("failed", errors.SOURCE_UNAVAILABLE)
    assert source.status == Source.FAILING and source.failures == 1
    assert source.next_sync_on is not None and (source.next_sync_on - source.last_run_on).total_seconds() >= 3599


def test_wrong_credentials_show_on_the_source(project, fake_source, make_source):
    fake = fake_source("commcare")
    fake.add(5)
    source = make_source(fake, config={"api_key": "wrong"})
    run = run_sync(source)
    assert (run.status, run.error) == ("failed", errors.SOURCE_AUTH_FAILED)
    assert source.status == Source.FAILING and source.last_error == errors.SOURCE_AUTH_FAILED
    assert "wrong" not in source.last_error_detail and "401" in source.last_error_detail
    assert Case.objects.filter(project=project).count() == 0
    # not retried in a hot loop: the next try is after the back-off
    assert (source.next_sync_on - source.last_run_on).total_seconds() >= 15 * 60 - 1
    assert len(fake.data_requests()) == 1


def test_a_large_page_is_read_whole(project, fake_source, make_source):
    fake = fake_source("commcare")
    fake.add(600)  # one page of ~400 kB, which arrives in many chunks
    source = make_source(fake, config={"page_size": 600})
    run = run_sync(source)
    assert (run.status, run.pages, run.created) == ("succeeded", 1, 600)


def test_a_secret_the_source_repeats_is_never_shown(project, fake_source, make_source):
    fake = fake_source("commcare")
    fake.add(2)
    source = make_source(fake)
    fake.fail(400, body=f'{{"error": "bad key {fake.system.api_key} for this domain"}}')
    run = run_sync(source)
    assert run.error == errors.SOURCE_REQUEST_REFUSED and "<hidden>" in run.error_detail
    assert fake.system.api_key not in run.error_detail + source.last_error_detail + str(run.log)
