"""API keys are stored hashed, so nothing can show an issued key again: `casemsg project key SLUG` issues one
only with --new (and says where the keys are without it), `project keys` lists them with their last use, and
`casemsg demo` keeps the demo's key in a file only its owner reads (the README's `KEY=$(cat var/demo-api-key)`)."""

from __future__ import annotations

import json
import os
import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from casemsg.projects.models import ApiKey, hash_key
from tests.conftest import Api


def _cli(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_key_without_new_issues_nothing_and_says_how(project) -> None:
    before = ApiKey.objects.filter(project=project).count()
    with pytest.raises(CommandError) as exc:
        _cli("project", "key", project.slug)
    text = str(exc.value)
    assert "stored hashed" in text
    assert f"casemsg project keys {project.slug}" in text
    assert f"casemsg project key {project.slug} --new" in text
    assert ApiKey.objects.filter(project=project).count() == before
    issued = json.loads(_cli("project", "key", project.slug, "--new", "--name", "ci", "--json"))
    assert ApiKey.objects.filter(project=project).count() == before + 1
    assert ApiKey.objects.get(key_hash=hash_key(issued["api_key"])).name == "ci"


def test_keys_lists_prefix_scopes_and_last_use(project) -> None:
    listed = json.loads(_cli("project", "keys", project.slug, "--json"))
    assert [k["last_used_on"] for k in listed] == [None]
    assert listed[0]["prefix"] == project.api_key[:10] and project.api_key not in json.dumps(listed)
    assert "never" in _cli("project", "keys", project.slug)
    assert Api(project.api_key, project.slug).get("cases").status_code == 200
    used = json.loads(_cli("project", "keys", project.slug, "--json"))[0]["last_used_on"]
    assert used is not None
    # a refused key is not "used"
    other = json.loads(_cli("project", "key", project.slug, "--new", "--scope", "read", "--json"))["api_key"]
    assert Api(other, project.slug).post("cases", {"case_type": "x"}).status_code == 403
    rows = {k["prefix"]: k for k in json.loads(_cli("project", "keys", project.slug, "--json"))}
    assert rows[other[:10]]["last_used_on"] is None
    # the API's list says it too
    admin = Api(project.api_key, project.slug).get("keys").json()["items"]
    assert admin[0]["last_used_on"] is not None and admin[1]["last_used_on"] is None


def test_demo_writes_its_key_once_to_a_private_file_and_keeps_it(tmp_path, db) -> None:
    with override_settings(DATA_DIR=tmp_path):
        first = _cli("demo")
        path = tmp_path / "demo-api-key"
        key = path.read_text().strip()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert f"API key: {key}" in first and str(path) in first
        assert Api(key, "demo").get("cases/demo-asha").status_code == 200
        os.chmod(path, 0o644)  # loosened by hand: the next run makes it private again
        _cli("demo")
        assert path.read_text().strip() == key
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ApiKey.objects.filter(project__slug="demo").count() == 1
