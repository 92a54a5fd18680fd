"""Receivers: CommCare's Data Forwarding and the `push` type, with good and bad keys, passwords and
signatures; a receiver URL writes only its own project's cases."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.test import Client

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors
from casemsg.sources import services
from casemsg.sources.models import SourceRun
from casemsg.sources.push import sign

pytestmark = pytest.mark.django_db
SECRET = "s3cret-signing-key-0123456789"


def forwarded(case_id: str, **props: str) -> dict:
    """A case as CommCare's case forwarder posts it (the v0.5 shape)."""
    return {
        "case_id": case_id,
        "closed": False,
        "date_closed": None,
        "date_modified": "2024-05-01T10:00:00.000000Z",
        "domain": "demo",
        "indices": {"parent": {"case_id": "hh-1", "case_type": "household", "identifier": "parent"}},
        "properties": {"case_name": "Amina", "case_type": "mother", "owner_id": "chw-1", **props},
        "server_date_modified": "2024-05-01T10:00:01.000000Z",
        "user_id": "u1",
        "xform_ids": ["f1"],
    }


def post(path: str, body: bytes, **headers: str):
    return Client().post(path, body, content_type="application/json", **headers)


def test_commcare_data_forwarding_with_the_key_and_basic_auth(project, fake_source):
    fake = fake_source("commcare")
    config = {**fake.config(), "forwarding_username": "cc", "forwarding_password": "fw-pass"}
    source = services.add_source(project, "cc", "commcare", config)
    path = services.receiver_path(source)
    body = json.dumps(forwarded("c-1", contact_phone_number="254711000222", edd="2025-01-01")).encode()
    good = "Basic " + base64.b64encode(b"cc:fw-pass").decode()
    bad = "Basic " + base64.b64encode(b"cc:nope").decode()
    assert post(path, body, HTTP_AUTHORIZATION=bad).status_code == 403
    assert post(path, body).status_code == 403
    assert post(path.replace(source.receive_key, "x" * 32), body, HTTP_AUTHORIZATION=good).status_code == 403
    assert not Case.objects.filter(project=project).exists()
    r = post(path, body, HTTP_AUTHORIZATION=good)
    assert r.status_code == 200, r.content
    assert r.json()["created"] == 1
    case = Case.objects.get(project=project, case_id="c-1")
    assert (case.case_type, case.name, case.owner_id, case.parent_id) == ("mother", "Amina", "chw-1", "hh-1")
    assert case.properties == {"contact_phone_number": "254711000222", "edd": "2025-01-01"}
    # the same post again changes nothing; the day's posts share one run
    assert post(path, body, HTTP_AUTHORIZATION=good).json()["unchanged"] == 1
    (run,) = SourceRun.objects.filter(source=source)
    assert (run.kind, run.records, run.created, run.unchanged) == ("receive", 2, 1, 1)
    assert post(path, b"not json", HTTP_AUTHORIZATION=good).status_code == 400


def test_push_with_good_and_bad_signatures(project):
    source = services.add_source(project, "push", "push", {"signing_secret": SECRET}, case_type="patient")
    path = services.receiver_path(source)
    body = json.dumps(
        {
            "cases": [
                {"case_id": "p-1", "name": "Ravi", "properties": {"contact_phone_number": "919812345678"}},
                {"case_id": "p-2", "case_type": "mother", "properties": {"edd": "2025-02-02"}, "closed": False},
                {"name": "no id"},
                {"case_id": "p-3", "properties": {"x" * 300: "too long a name"}},
            ]
        }
    ).encode()
    now = int(time.time())
    assert post(path, body, HTTP_X_CASEMSG_SIGNATURE=sign("wrong-secret-0123456789", now, body)).status_code == 403
    assert post(path, body, HTTP_X_CASEMSG_SIGNATURE=sign(SECRET, now - 3600, body)).status_code == 403
    assert post(path, body + b" ", HTTP_X_CASEMSG_SIGNATURE=sign(SECRET, now, body)).status_code == 403
    assert post(path, body).status_code == 403
    assert not Case.objects.filter(project=project).exists()
    r = post(path, body, HTTP_X_CASEMSG_SIGNATURE=sign(SECRET, now, body))
    assert r.status_code == 200, r.content
    out = r.json()
    assert (out["received"], out["created"], out["skipped"]) == (4, 2, 2)
    assert {e["code"] for e in out["errors"]} == {errors.INVALID_CASE_ID, errors.INVALID_PROPERTY}
    assert Case.objects.get(project=project, case_id="p-1").case_type == "patient"  # the source's case type
    assert Case.objects.get(project=project, case_id="p-2").case_type == "patient"


def test_a_receiver_url_writes_only_its_own_projects_cases(project, other_project):
    (theirs,) = bulk_upsert(
        other_project, [CaseChange(case_id="shared-id", case_type="mother", properties={"edd": "2025-01-01"})]
    )
    source = services.add_source(project, "push", "push", {"signing_secret": SECRET})
    body = json.dumps(
        {"cases": [{"case_id": "shared-id", "case_type": "mother", "properties": {"edd": "2099-09-09"}}]}
    ).encode()
    r = post(services.receiver_path(source), body, HTTP_X_CASEMSG_SIGNATURE=sign(SECRET, int(time.time()), body))
    assert r.json()["created"] == 1
    theirs.refresh_from_db()
    assert theirs.properties == {"edd": "2025-01-01"}
    assert Case.objects.get(project=project, case_id="shared-id").properties == {"edd": "2099-09-09"}
    # another project's key (or its source's key) cannot reach this one either
    other = services.add_source(other_project, "push", "push", {"signing_secret": "other-project-secret-0000"})
    signed = sign(SECRET, int(time.time()), body)
    assert post(services.receiver_path(other), body, HTTP_X_CASEMSG_SIGNATURE=signed).status_code == 403
