"""ODK Central's Entities through the OData feed (the fake speaks its sessions, app-user keys, $top/$count,
$filter and $skiptoken paging, and its error bodies)."""

from __future__ import annotations

import pytest

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.sources.models import Source
from tests.sources.helpers import run_sync

pytestmark = pytest.mark.django_db


def test_first_sync_pages_with_skiptoken_then_changes_and_deletes(project, fake_source, make_source):
    fake = fake_source("odk_central")
    ids = fake.add(25, prefix="")  # entity ids are UUIDs
    source = make_source(fake, config={"page_size": 10})
    run = run_sync(source)
    assert (run.status, run.pages, run.records, run.total, run.created) == ("succeeded", 3, 25, 25, 25)
    reads = fake.data_requests()
    assert reads[0].headers["Authorization"].startswith("Bearer ")
    assert reads[0].query["$count"] == ["true"] and "$filter" not in reads[0].query
    assert all("$skiptoken" in r.query for r in reads[1:])
    assert [r.path for r in fake.requests if r.method == "POST"] == ["/v1/sessions"]
    case = Case.objects.get(project=project, case_id=ids[0])
    assert case.case_type == "people" and case.name == "Person 0"  # the entity list; the label
    assert case.properties["contact_phone_number"] == "254710000000"

    fake.update(ids[1], edd="2031-02-03")
    fake.delete(ids[2])
    seen = len(fake.data_requests())
    run = run_sync(source)
    assert run.kind == "incremental"
    first = fake.data_requests()[seen].query["$filter"][0]
    assert "__system/updatedAt gt" in first and "__system/deletedAt gt" in first
    assert (run.updated, run.closed, run.created, run.skipped) == (1, 1, 0, 0)
    assert Case.objects.get(project=project, case_id=ids[1]).properties["edd"] == "2031-02-03"
    assert Case.objects.get(project=project, case_id=ids[2]).closed


def test_an_app_user_token_goes_in_the_path_and_never_in_the_cursor(project, fake_source, make_source):
    fake = fake_source("odk_central")
    fake.add(12)
    config = {"email": "", "password": "", "app_user_token": fake.system.app_user_token, "page_size": 5}
    source = make_source(fake, config=config)
    run = run_sync(source)
    assert (run.status, run.created) == ("succeeded", 12)
    assert all(r.path.startswith("/v1/key/") for r in fake.data_requests())
    assert not [r for r in fake.requests if r.path == "/v1/sessions"]


def test_wrong_password_shows_on_the_source(project, fake_source, make_source):
    fake = fake_source("odk_central")
    fake.add(3)
    source = make_source(fake, config={"password": "not-it"})
    run = run_sync(source)
    assert (run.status, run.error) == ("failed", errors.SOURCE_AUTH_FAILED)
    assert source.status == Source.FAILING and "Could not authenticate" in source.last_error_detail
    assert "not-it" not in source.last_error_detail


def test_an_unknown_entity_list_is_refused_in_words(project, fake_source, make_source):
    fake = fake_source("odk_central")
    source = make_source(fake, config={"entity_list": "nope"})
    run = run_sync(source)
    assert run.error == errors.SOURCE_REQUEST_REFUSED and "404" in run.error_detail
