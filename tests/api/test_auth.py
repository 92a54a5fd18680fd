"""API keys: a key reaches only its own project; keys are issued by the CLI and stored hashed."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from casemsg.cases.models import Case
from casemsg.projects.models import ApiKey, hash_key
from casemsg.workers.models import MobileWorker
from tests.conftest import Api, assert_error

INDIA = "919812345678"


@pytest.fixture
def alpha_data(api):
    case = api.case({"contact_phone_number": INDIA, "secret": "alpha-secret"}, name="Alpha Asha", case_id="alpha-case")
    r = api.post("mobile-workers", {"username": "alpha-chw", "phone_numbers": [INDIA]})
    assert r.status_code == 201
    return {"case": case, "worker": r.json()}


def calls(data: dict) -> list[tuple[str, str, dict | None]]:
    """Every project-scoped route, on alpha's objects."""
    w = data["worker"]["id"]
    return [
        ("get", "cases", None),
        ("post", "cases", {"case_type": "patient", "properties": {"x": "1"}}),
        ("post", "cases/bulk", {"cases": [{"case_type": "patient"}]}),
        ("get", "cases/alpha-case", None),
        ("patch", "cases/alpha-case", {"name": "hijacked", "closed": True}),
        ("get", "cases/alpha-case/contact", None),
        ("delete", "cases/alpha-case", None),
        ("get", "mobile-workers", None),
        ("post", "mobile-workers", {"username": "intruder"}),
        ("get", f"mobile-workers/{w}", None),
        ("patch", f"mobile-workers/{w}", {"active": False}),
        ("get", f"mobile-workers/{w}/contact", None),
        ("delete", f"mobile-workers/{w}", None),
    ]


def call(api: Api, method: str, path: str, body, key=None):
    if method in ("post", "patch"):
        return getattr(api, method)(path, body, key=key)
    return getattr(api, method)(path, key=key)


def unchanged(data: dict) -> None:
    assert Case.objects.count() == 1
    c = Case.objects.get()
    assert (c.case_id, c.name, c.closed) == ("alpha-case", "Alpha Asha", False)
    assert list(MobileWorker.objects.values_list("username", "active")) == [("alpha-chw", True)]


@pytest.mark.parametrize("i", range(13))
def test_no_key_is_401(api, alpha_data, i):
    method, path, body = calls(alpha_data)[i]
    r = call(api, method, path, body, key="")
    assert_error(r, 401, "UNAUTHENTICATED")
    assert b"alpha-secret" not in r.content and b"Alpha Asha" not in r.content
    unchanged(alpha_data)


@pytest.mark.parametrize("key", ["wrong", "cm_" + "x" * 43, "Bearer", " "])
def test_wrong_key_is_401(api, alpha_data, key):
    for method, path, body in calls(alpha_data):
        assert_error(call(api, method, path, body, key=key), 401, "UNAUTHENTICATED")
    unchanged(alpha_data)


def test_other_auth_schemes_are_401(api, alpha_data):
    for header in (f"Token {api.key}", api.key, f"Basic {api.key}"):
        r = api.client.get(api.url("cases"), HTTP_AUTHORIZATION=header)
        assert_error(r, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("i", range(13))
def test_other_projects_key_is_403_and_leaks_nothing(api, other_api, alpha_data, i):
    method, path, body = calls(alpha_data)[i]
    r = call(api, method, path, body, key=other_api.key)
    assert_error(r, 403, "FORBIDDEN")
    for secret in (b"alpha-secret", b"Alpha Asha", b"alpha-chw", INDIA.encode()):
        assert secret not in r.content
    unchanged(alpha_data)


def test_a_key_sees_only_its_own_project(api, other_api, alpha_data):
    other_api.case({"who": "beta"}, case_id="beta-case")
    assert [c["case_id"] for c in other_api.get("cases").json()["items"]] == ["beta-case"]
    assert [c["case_id"] for c in api.get("cases").json()["items"]] == ["alpha-case"]
    assert other_api.get("mobile-workers").json()["items"] == []
    # the same key on a project that does not exist
    assert_error(api.get("/api/v1/projects/nonexistent/cases"), 403, "FORBIDDEN")


def test_a_revoked_key_is_401(api, alpha_data):
    assert api.get("cases").status_code == 200
    ApiKey.objects.filter(key_hash=hash_key(api.key)).update(revoked=True)
    assert_error(api.get("cases"), 401, "UNAUTHENTICATED")


# --- the CLI ------------------------------------------------------------------------------------


def cli(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_project_create_prints_a_working_key(db):
    out = json.loads(cli("project", "create", "gamma", "--name", "Gamma program", "--json"))
    assert set(out) == {"slug", "api_key", "scopes"} and out["scopes"] == ["read", "send", "write", "admin"]
    assert out["slug"] == "gamma"
    gamma = Api(out["api_key"], "gamma")
    r = gamma.get("cases")
    assert r.status_code == 200 and r.json() == {"count": 0, "items": []}
    assert gamma.post("cases", {"case_type": "patient"}).status_code == 201


def test_project_create_options_and_text_output(db):
    text = cli("project", "create", "delta", "--name", "Delta", "--time-zone", "Africa/Nairobi", "--language", "sw")
    key = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("API key: "))
    d = Api(key, "delta")
    case = d.case({})
    st = d.contact(case["case_id"])
    assert (st["time_zone"], st["language_code"]) == ("Africa/Nairobi", "sw")


@pytest.mark.parametrize(
    "args, message",
    [
        (["Not A Slug"], "INVALID_SLUG"),
        (["epsilon", "--time-zone", "Mars/Base"], "INVALID_TIME_ZONE"),
        (["epsilon", "--time-zone", "America"], "INVALID_TIME_ZONE"),
    ],
)
def test_project_create_refuses_bad_input(db, args, message):
    with pytest.raises(CommandError, match=message):
        cli("project", "create", *args)


def test_project_create_refuses_an_existing_slug(project):
    with pytest.raises(CommandError, match="PROJECT_EXISTS"):
        cli("project", "create", "alpha")


def test_project_key_issues_a_second_working_key(api, alpha_data):
    out = json.loads(cli("project", "key", "alpha", "--new", "--json"))
    assert out["slug"] == "alpha" and out["api_key"] != api.key
    second = Api(out["api_key"], "alpha")
    assert [c["case_id"] for c in second.get("cases").json()["items"]] == ["alpha-case"]
    assert api.get("cases").status_code == 200  # the first key still works
    assert ApiKey.objects.filter(project__slug="alpha").count() == 2
    with pytest.raises(CommandError):
        cli("project", "key", "no-such-project", "--new")


def test_keys_are_stored_hashed(api, other_api, alpha_data):
    keys = [api.key, other_api.key, json.loads(cli("project", "key", "alpha", "--new", "--json"))["api_key"]]
    hashes = set(ApiKey.objects.values_list("key_hash", flat=True))
    assert hashes == {hash_key(k) for k in keys}
    # no column of any table holds a plain key
    with connection.cursor() as cur:
        for table in connection.introspection.table_names(cur):
            cur.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dump = repr(cur.fetchall())
            for k in keys:
                assert k not in dump, f"plain API key stored in {table}"
