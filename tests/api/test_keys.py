"""API keys can be listed, issued and revoked (API and CLI); a revoked key stops working at once; the
demo keeps its credentials between runs; failed logins are throttled."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from casemsg.projects.models import ApiKey
from tests.conftest import Api


def test_list_issue_revoke_through_the_api(api: Api, project) -> None:
    r = api.get("keys")
    assert r.status_code == 200, r.content
    assert r.json()["count"] == 1
    first = r.json()["items"][0]
    assert first["revoked"] is False and "key" not in first and api.key.startswith(first["prefix"])

    r = api.post("keys", {"name": "CommCare forwarder"})
    assert r.status_code == 201, r.content
    new = r.json()
    assert new["key"].startswith(new["prefix"]) and new["name"] == "CommCare forwarder"
    assert ApiKey.objects.filter(project=project).count() == 2
    assert not ApiKey.objects.filter(key_hash__contains=new["key"]).exists()  # only the hash is kept

    second = Api(new["key"], project.slug)
    assert second.get("cases").status_code == 200
    assert api.delete(f"keys/{new['id']}").status_code == 204
    r = second.get("cases")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
    listed = {k["id"]: k for k in api.get("keys").json()["items"]}
    assert listed[new["id"]]["revoked"] is True and listed[new["id"]]["revoked_on"]
    assert api.get("cases").status_code == 200  # the other key still works


def test_keys_of_another_project_cannot_be_touched(api: Api, other_api: Api, other_project) -> None:
    theirs = ApiKey.objects.get(project=other_project)
    r = api.delete(f"/api/v1/projects/{other_project.slug}/keys/{theirs.pk}")
    assert r.status_code == 403
    r = api.delete(f"keys/{theirs.pk}")  # their key's id under our own project: not ours
    assert r.status_code == 404 and r.json()["error"]["code"] == "KEY_NOT_FOUND"
    assert other_api.get("cases").status_code == 200


def test_key_name_is_bounded(api: Api) -> None:
    r = api.post("keys", {"name": "x" * 101})
    assert r.status_code == 422


def test_cli_lists_and_revokes(project) -> None:
    out = StringIO()
    call_command("project", "key", project.slug, "--new", "--name", "ci", "--json", stdout=out)
    key = json.loads(out.getvalue())["api_key"]
    row = ApiKey.objects.get(project=project, name="ci")
    out = StringIO()
    call_command("project", "keys", project.slug, "--json", stdout=out)
    listed = json.loads(out.getvalue())
    assert {k["id"] for k in listed} == set(ApiKey.objects.filter(project=project).values_list("pk", flat=True))
    assert all(key not in json.dumps(k) for k in listed)
    call_command("project", "revoke-key", project.slug, str(row.pk), stdout=StringIO())
    row.refresh_from_db()
    assert row.revoked
    with pytest.raises(CommandError, match="KEY_NOT_FOUND"):
        call_command("project", "revoke-key", project.slug, "999999", stdout=StringIO())


def test_demo_prints_the_same_credentials_each_run(db, tmp_path) -> None:
    with override_settings(DATA_DIR=tmp_path):
        first, second = StringIO(), StringIO()
        call_command("demo", stdout=first)
        call_command("demo", stdout=second)
    assert first.getvalue() == second.getvalue()
    assert ApiKey.objects.filter(project__slug="demo").count() == 1
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o077 == 0
    key = [ln.split()[-1] for ln in first.getvalue().splitlines() if "API key:" in ln][0]
    assert Api(key, "demo").get("cases").status_code == 200


def test_failed_logins_are_throttled(db) -> None:
    User.objects.create_user("officer", password="right-password", is_staff=True)
    c = Client()
    for _ in range(4):
        r = c.post("/admin/login/", {"username": "officer", "password": "wrong"})
        assert r.status_code == 200  # the form again, with its error
    r = c.post("/admin/login/", {"username": "officer", "password": "wrong"})
    assert r.status_code == 429  # the fifth failure locks the pair out
    r = c.post("/admin/login/", {"username": "officer", "password": "right-password"})
    assert r.status_code == 429  # locked out, even with the right password
    assert "_auth_user_id" not in c.session
    # another user from the same address is not locked out
    User.objects.create_user("other", password="pw-other-1", is_staff=True)
    r = Client().post("/admin/login/", {"username": "other", "password": "pw-other-1"})
    assert r.status_code == 302
