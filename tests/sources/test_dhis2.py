"""DHIS2's tracker API (the fake speaks its trackedEntities paging and pager, ApiToken and Basic auth,
and its error bodies): attributes by uid through the mapping, org unit as owner, deletes close."""

from __future__ import annotations

import pytest

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.sources.models import Source
from fakes.sources import Dhis2
from tests.sources.helpers import run_sync

pytestmark = pytest.mark.django_db
PHONE, EDD = Dhis2.ATTRIBUTES["contact_phone_number"][0], Dhis2.ATTRIBUTES["edd"][0]
MAPPING = [{"from": PHONE, "to": "contact_phone_number"}, {"from": EDD, "to": "edd"}]


def test_sync_maps_attributes_pages_by_updated_at_and_closes_deleted(project, fake_source, make_source):
    fake = fake_source("dhis2")
    ids = fake.add(23, prefix="TE")
    source = make_source(fake, config={"page_size": 10}, mapping_rules=MAPPING, keep_unmapped=False)
    run = run_sync(source)
    # each next page starts at the previous page's last updatedAt: that tracked entity is read twice
    assert (run.status, run.records, run.created, run.unchanged, run.total) == ("succeeded", 25, 23, 2, 23)
    reads = fake.data_requests()
    assert reads[0].headers["Authorization"] == f"ApiToken {fake.system.api_token}"
    assert reads[0].query["order"] == ["updatedAt:asc"] and reads[0].query["orgUnits"] == [fake.system.org_unit]
    # each next page starts from the last one's updatedAt, not from a page number
    assert all(r.query["page"] == ["1"] and r.query["updatedAfter"] for r in reads[1:])
    case = Case.objects.get(project=project, case_id=ids[4])
    assert case.case_type == "mother" and case.owner_id == fake.system.org_unit
    assert case.properties == {"contact_phone_number": "254710000004", "edd": case.properties["edd"]}

    fake.update(ids[6], edd="2032-05-06")
    fake.delete(ids[7])
    run = run_sync(source)
    assert (run.updated, run.closed, run.created) == (1, 1, 0)
    assert Case.objects.get(project=project, case_id=ids[6]).properties["edd"] == "2032-05-06"
    assert Case.objects.get(project=project, case_id=ids[7]).closed


def test_a_page_of_one_updated_at_moves_on_by_page_number(project, fake_source, make_source):
    fake = fake_source("dhis2")
    fake.add(25, same_time=True)  # a bulk import in DHIS2: one updatedAt for all
    source = make_source(fake, config={"page_size": 10})
    run = run_sync(source)
    assert (run.status, run.created) == ("succeeded", 25)
    # from the start, then from that updatedAt (which does not move on), then by page number
    assert [r.query["page"] for r in fake.data_requests()] == [["1"], ["1"], ["2"], ["3"]]


def test_basic_auth_and_wrong_credentials(project, fake_source, make_source):
    fake = fake_source("dhis2")
    fake.add(2)
    good = make_source(fake, "basic", config={"api_token": "", "username": "admin", "password": "district"})
    assert run_sync(good).created == 2
    bad = make_source(fake, "bad", config={"api_token": "d2pat_wrong"})
    run = run_sync(bad)
    assert (run.error, bad.status) == (errors.SOURCE_AUTH_FAILED, Source.FAILING)
    assert "Account not found" in bad.last_error_detail and "d2pat_wrong" not in bad.last_error_detail
