"""The sources API: CRUD with write-only secrets and checked URLs and mappings, sync now, runs with their
log, the test read (fields offered for the mapping, nothing written), the types."""

from __future__ import annotations

import pytest
from django.test import override_settings

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.projects import services as projects
from casemsg.projects.models import Project
from tests.conftest import Api

pytestmark = pytest.mark.django_db


def create(api: Api, fake, **body) -> dict:
    r = api.post("sources", {"name": "cc", "type": fake.kind, "config": fake.config(), **body})
    assert r.status_code == 201, r.content
    return r.json()


def test_crud_never_answers_a_secret(api, fake_source):
    fake = fake_source("commcare")
    created = create(api, fake, mapping=[{"from": "phone", "to": "contact_phone_number", "transform": "phone"}])
    assert created["config"] == {k: v for k, v in fake.config().items() if k != "api_key"}
    assert created["secrets_set"] == ["api_key"] and fake.system.api_key not in str(created)
    assert created["mapping"] == [{"from": "phone", "to": "contact_phone_number", "transform": {"type": "phone"}}]
    assert created["receiver_url"].endswith("/receive") and created["status"] == "new"
    sid = created["id"]
    # a config without the secret keeps the stored one
    r = api.patch(f"sources/{sid}", {"config": {**created["config"], "page_size": 50}, "interval_minutes": 60})
    assert r.status_code == 200, r.content
    assert r.json()["config"]["page_size"] == 50 and r.json()["secrets_set"] == ["api_key"]
    listed = api.get("sources").json()
    assert listed["count"] == 1 and fake.system.api_key not in str(listed)
    # a read-only key does not see the receiver URL (it holds the source's secret key)
    _row, read_only = projects.issue_key(api_project(api), "reader", ["read"])
    assert api.get(f"sources/{sid}", key=read_only).json()["receiver_url"] is None
    assert api.delete(f"sources/{sid}").status_code == 204
    assert api.get(f"sources/{sid}").json()["error"]["code"] == errors.SOURCE_NOT_FOUND


def api_project(api: Api) -> Project:
    return Project.objects.get(slug=api.slug)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "nope"}, errors.UNKNOWN_SOURCE_TYPE),
        ({"config": {"domain": "x"}}, errors.INVALID_SOURCE_CONFIG),
        ({"config": {"surprise": 1}}, errors.INVALID_SOURCE_CONFIG),
        (
            {"mapping": [{"from": "a", "to": "b", "transform": {"type": "date", "format": "dd/mm"}}]},
            errors.INVALID_MAPPING,
        ),
        ({"mapping": [{"from": "a", "to": "x"}, {"from": "b", "to": "x"}]}, errors.INVALID_MAPPING),
        ({"name": "bad name!"}, errors.VALIDATION_ERROR),
    ],
)
def test_bad_input_is_refused_in_words(api, fake_source, body, code):
    fake = fake_source("commcare")
    r = api.post("sources", {"name": "cc", "type": "commcare", "config": fake.config(), **body})
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.content


def test_source_urls_go_through_netguard(api, fake_source):
    fake = fake_source("commcare")
    with override_settings(CASEMSG_GATEWAY_ALLOW_PRIVATE=False):
        r = api.post("sources", {"name": "cc", "type": "commcare", "config": fake.config()})
        assert (
            r.json()["error"]["code"] == errors.SOURCE_URL_NOT_ALLOWED and "127.0.0.1" in r.json()["error"]["message"]
        )
        meta = {**fake.config(), "base_url": "http://169.254.169.254/"}
        r = api.post("sources", {"name": "cc", "type": "commcare", "config": meta})
        assert r.json()["error"]["code"] == errors.SOURCE_URL_NOT_ALLOWED


def test_sync_now_runs_and_the_runs_show_their_log(api, project, fake_source):
    fake = fake_source("commcare")
    fake.add(12)
    fake.update("case-0000003", edd="31/02/2024")
    mapping = [{"from": "edd", "to": "edd", "transform": {"type": "date", "format": "%Y-%m-%d"}}]
    sid = create(api, fake, config={**fake.config(), "page_size": 5}, mapping=mapping)["id"]
    r = api.post(f"sources/{sid}/sync", {})
    assert r.status_code == 202, r.content
    last = r.json()["last_run"]
    assert (last["status"], last["pages"], last["created"], last["skipped"]) == ("succeeded", 3, 11, 1)
    assert last["progress"] == 1.0 and r.json()["status"] == "ok"
    runs = api.get(f"sources/{sid}/runs").json()
    assert runs["count"] == 1
    detail = api.get(f"sources/{sid}/runs/{last['id']}").json()
    (entry,) = [e for e in detail["log"] if e["record"]]
    assert entry["record"] == "case-0000003" and entry["code"] == errors.UNMAPPABLE_VALUE
    assert "31/02/2024" in entry["reason"]
    assert Case.objects.filter(project=project).count() == 11
    full = api.post(f"sources/{sid}/sync", {"full": True}).json()["last_run"]
    assert full["kind"] == "full" and full["unchanged"] == 11 and full["created"] == 0


def test_the_test_read_offers_fields_and_writes_nothing(api, project, fake_source):
    fake = fake_source("dhis2")
    fake.add(3)
    r = api.post("sources", {"name": "d", "type": "dhis2", "config": fake.config(), "case_type": "mother"})
    sid = r.json()["id"]
    out = api.post(f"sources/{sid}/test").json()
    assert out["ok"] and out["records"] == 3 and out["counts"]["created"] == 3
    assert out["labels"]["w75KJ2mc4zz"] == "Phone number" and "w75KJ2mc4zz" in out["fields"]
    assert out["targets"][:2] == ["contact_phone_number", "language_code"]
    assert out["sample"][0]["case"]["case_type"] == "mother"
    assert Case.objects.filter(project=project).count() == 0
    bad = api.post("sources", {"name": "d2", "type": "dhis2", "case_type": "m", "config": fake.config(api_token="x")})
    out = api.post(f"sources/{bad.json()['id']}/test").json()
    assert (out["ok"], out["error"]) == (False, errors.SOURCE_AUTH_FAILED)


def test_types_list_their_settings(api):
    types = {t["type"]: t for t in api.get("source-types").json()}
    assert set(types) == {"commcare", "odk_central", "dhis2", "push"}
    api_key = next(f for f in types["commcare"]["config"] if f["name"] == "api_key")
    assert api_key["secret"] and api_key["required"]
    assert types["dhis2"]["needs_case_type"] and not types["push"]["reads"]


def test_another_projects_source_is_not_found(api, other_api, fake_source):
    fake = fake_source("commcare")
    sid = create(api, fake)["id"]
    for path in (f"sources/{sid}", f"sources/{sid}/runs"):
        assert other_api.get(path).status_code == 404
    assert other_api.post(f"sources/{sid}/sync", {}).status_code == 404
    assert api.get(f"/api/v1/projects/{other_api.slug}/sources").status_code == 403


def test_interval_0_syncs_only_when_asked_and_a_paused_source_not_at_all(api, fake_source):
    fake = fake_source("commcare")
    created = create(api, fake, interval_minutes=0)
    assert created["next_sync_on"] is None
    sid = created["id"]
    assert api.patch(f"sources/{sid}", {"interval_minutes": 60}).json()["next_sync_on"] is not None
    paused = api.patch(f"sources/{sid}", {"active": False}).json()
    assert paused["next_sync_on"] is None
    r = api.post(f"sources/{sid}/sync", {})
    assert r.status_code == 422 and "paused" in r.json()["error"]["message"]
