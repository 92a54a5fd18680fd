"""API key scopes: every operation declares the scope it needs (read, send, write or admin), a key without
it is refused with 403 INSUFFICIENT_SCOPE before anything happens, keys are issued with the scopes chosen
(API, page, CLI), existing keys keep read/send/write, and the demo key runs the README's tour."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from casemsg.api.core import ProjectKey
from casemsg.api.urls import api as the_api
from casemsg.cases.models import Case
from casemsg.core import actor
from casemsg.core.errors import InputError
from casemsg.messaging.models import Message
from casemsg.projects import services
from casemsg.projects.models import SCOPES, ApiKey, AuditEntry, Project, hash_key
from tests.conftest import Api

pytestmark = pytest.mark.django_db

# The operations that take no project key: the error catalogue, and the providers' webhooks and the case
# sources' receiver (their secret URL key authenticates them).
PUBLIC = {
    ("get", "/api/v1/errors"),
    ("post", "/api/v1/gateways/{name}/{key}/inbound"),
    ("post", "/api/v1/gateways/{name}/{key}/status"),
    ("get", "/api/v1/gateways/{name}/{key}/inbound"),  # a provider's webhook verification (Meta's hub.challenge)
    ("post", "/api/v1/sources/{key}/receive"),  # a case source's receiver: its URL's secret key and signature
}
P = "/api/v1/projects/{project}"


def expected_scope(method: str, path: str) -> str:
    """The rule, written out once more: GET reads; sending (messages, opt-in requests, verification codes,
    survey starts, the sandbox's simulated SMS, broadcasts and alerts) sends; keys and the audit log are
    admin; every other change writes (a broadcast's preflight and a group's preview change nothing: read)."""
    if path.startswith((P + "/keys", P + "/audit")):
        return "admin"
    if method == "get" or path in (P + "/broadcasts/preflight", P + "/groups/preview"):
        return "read"
    sends = (
        P + "/messages",
        P + "/cases/{case_id}/opt-in-request",
        P + "/mobile-workers/{worker_id}/verify",
        P + "/surveys/{survey_id}/start",
        P + "/sandbox/incoming",
        P + "/conversations/{contact}/messages",  # a person's reply to a contact
    )
    if path in sends or path.startswith((P + "/broadcasts", P + "/alerts")):
        return "send"
    return "write"


def operations() -> list[tuple[str, str, dict]]:
    schema = the_api.get_openapi_schema()
    return [(method, path, op) for path, item in schema["paths"].items() for method, op in item.items()]


def test_every_operation_declares_the_scope_it_needs() -> None:
    seen = set()
    for method, path, op in operations():
        seen.add((method, path))
        if (method, path) in PUBLIC:
            assert not op.get("security"), f"{method} {path} takes no key"
            continue
        assert op.get("security") == [{"ProjectKey": [expected_scope(method, path)]}], (
            method,
            path,
            op.get("security"),
        )
        assert op["x-casemsg-scope"] == expected_scope(method, path)
        responses = {int(code): r for code, r in op["responses"].items()}
        assert "INSUFFICIENT_SCOPE" in responses[403]["description"]
    assert PUBLIC <= seen and len(seen) > 70


def test_every_served_operation_checks_a_scope() -> None:
    """Not only what the OpenAPI document shows: every operation the URLs serve (one hidden from the
    document included) authenticates with a ProjectKey that has a scope, unless it is public."""
    served = 0
    for bound in the_api._get_bound_routers():
        for path, view in bound.path_operations.items():
            for op in view.operations:
                served += 1
                full = re.sub(r"{[^}:]+:", "{", "/api" + bound.prefix + path)
                if (op.methods[0].lower(), full) in PUBLIC:
                    assert not op.auth_callbacks
                    continue
                assert len(op.auth_callbacks) == 1, full
                (auth,) = op.auth_callbacks
                assert isinstance(auth, ProjectKey) and auth.scope in SCOPES, (full, op.methods)
    assert served > 70


def test_an_operation_without_a_declared_scope_refuses_every_key(rf, project) -> None:
    request = rf.get("/")
    with actor.acting_as("system", ""), pytest.raises(InputError) as exc:  # (authenticate names the actor)
        ProjectKey().authenticate(request, project.api_key)
    assert (exc.value.code, exc.value.status) == ("INSUFFICIENT_SCOPE", 403)


def key_without(project: Project, scope: str) -> Api:
    _, key = services.issue_key(project, f"no {scope}", [s for s in SCOPES if s != scope])
    return Api(key, project.slug)


@pytest.mark.parametrize("scope", SCOPES)
def test_every_operation_refuses_a_key_without_its_scope(project, scope) -> None:
    """Each operation needing `scope`, called by a key with every other scope: 403 INSUFFICIENT_SCOPE, before
    the handler runs (so nothing is created, sent or changed)."""
    client = key_without(project, scope)
    before = (Case.objects.count(), Message.objects.count(), ApiKey.objects.count(), AuditEntry.objects.count())
    checked = 0
    for method, path, op in operations():
        if op.get("x-casemsg-scope") != scope:
            continue
        url = re.sub(r"{(\w+)}", lambda m: project.slug if m.group(1) == "project" else "1", path)
        r = client.client.generic(
            method.upper(), url, "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {client.key}"
        )
        assert r.status_code == 403, (method, path, r.content)
        assert r.json()["error"]["code"] == "INSUFFICIENT_SCOPE", (method, path, r.content)
        assert f"'{scope}'" in r.json()["error"]["message"]
        checked += 1
    assert checked > 0
    after = (Case.objects.count(), Message.objects.count(), ApiKey.objects.count(), AuditEntry.objects.count())
    assert after == before


def test_each_scope_on_a_real_call(project, api: Api) -> None:
    api.case({"contact_phone_number": "254711000111"}, case_id="c1")
    reader = Api(services.issue_key(project, "reader", ["read"])[1], project.slug)
    assert reader.get("cases").status_code == 200
    r = reader.post("cases", {"case_type": "patient", "name": "X"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")
    r = reader.post("messages", {"recipient": {"case_id": "c1"}, "text": "hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")

    sender = Api(services.issue_key(project, "sender", ["send"])[1], project.slug)
    assert sender.post("messages", {"recipient": {"case_id": "c1"}, "text": "hi"}).status_code == 202
    r = sender.get("messages")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")
    r = sender.patch("cases/c1", {"name": "Y"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")

    writer = Api(services.issue_key(project, "writer")[1], project.slug)  # the default: read, send, write
    assert writer.patch("cases/c1", {"name": "Y"}).status_code == 200
    for r in (writer.get("keys"), writer.post("keys", {"name": "more"}), writer.get("audit")):
        assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")
    assert Case.objects.get(case_id="c1").name == "Y"


def test_another_projects_key_is_still_forbidden(api: Api, other_api: Api) -> None:
    r = other_api.get(api.url("cases"))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "FORBIDDEN")


# --- issuing keys with scopes ----------------------------------------------------------------------
def test_keys_are_issued_with_the_scopes_chosen(api: Api, project) -> None:
    first = api.get("keys").json()["items"][0]
    assert first["scopes"] == ["read", "send", "write", "admin"]  # a project's first key has every scope

    r = api.post("keys", {"name": "forwarder"})
    assert r.status_code == 201 and r.json()["scopes"] == ["read", "send", "write"]  # the default: no admin
    r = api.post("keys", {"name": "reports", "scopes": ["read"]})
    assert r.status_code == 201 and r.json()["scopes"] == ["read"]
    r = api.post("keys", {"name": "root", "scopes": ["admin", "read", "admin"]})
    assert r.status_code == 201 and r.json()["scopes"] == ["read", "admin"]
    listed = {k["name"]: k["scopes"] for k in api.get("keys").json()["items"]}
    assert listed["reports"] == ["read"] and listed["forwarder"] == ["read", "send", "write"]

    r = api.post("keys", {"name": "none", "scopes": []})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "INVALID_SCOPE")
    r = api.post("keys", {"name": "bad", "scopes": ["superuser"]})
    assert r.status_code == 422
    assert not ApiKey.objects.filter(name__in=["none", "bad"]).exists()


def test_the_command_line_issues_keys_with_scopes(project) -> None:
    out = StringIO()
    call_command(
        "project",
        "key",
        project.slug,
        "--new",
        "--name",
        "ci",
        "--scope",
        "read",
        "--scope",
        "send",
        "--json",
        stdout=out,
    )
    got = json.loads(out.getvalue())
    assert got["scopes"] == ["read", "send"]
    assert ApiKey.objects.get(project=project, name="ci").scopes == ["read", "send"]
    out = StringIO()
    call_command("project", "key", project.slug, "--new", "--name", "default", stdout=out)
    assert "Scopes: read, send, write" in out.getvalue()
    out = StringIO()
    call_command("project", "keys", project.slug, "--json", stdout=out)
    assert {k["name"]: k["scopes"] for k in json.loads(out.getvalue())}["ci"] == ["read", "send"]


def test_the_demo_key_runs_the_readme_tour(tmp_path) -> None:
    """The README's 5-minute tour, with the key `casemsg demo` prints: it needs read, send and write, and
    the demo key has exactly those (no admin)."""
    with override_settings(DATA_DIR=tmp_path):
        out = StringIO()
        call_command("demo", stdout=out)
    key = [ln.split()[-1] for ln in out.getvalue().splitlines() if "API key:" in ln][0]
    assert ApiKey.objects.get(key_hash=hash_key(key)).scopes == ["read", "send", "write"]
    tour = Api(key, "demo")
    assert tour.get("cases/demo-bad/contact").status_code == 200
    body = {"case_type": "mother", "name": "Amina", "properties": {"contact_phone_number": "254711222333"}}
    assert tour.post("cases", body).status_code == 201
    msg = {"recipient": {"case_id": "demo-ravi"}, "translations": {"en": "Hello {case.name}", "sw": "Habari"}}
    assert tour.post("messages", msg).status_code == 202
    assert tour.get("sandbox/outbox").status_code == 200
    assert tour.get("messages", status="failed").status_code == 200
    assert tour.post("cases/demo-maria/opt-in-request").status_code == 202
    assert tour.post("sandbox/incoming", {"phone_number": "12066171234", "text": "Yes"}).status_code == 202
    assert tour.get("consents").status_code == 200
    broadcast = {
        "name": "Daily tip",
        "recipients": {"case_type": "mother"},
        "content": {"channel": "sms", "text": "Good morning {case.name}"},
        "schedule": {"type": "daily", "time": "09:00", "count": 7},
    }
    assert tour.post("broadcasts/preflight", broadcast).status_code == 200
    assert tour.post("broadcasts", broadcast).status_code == 201
    assert tour.get("cases/demo-asha/schedule").status_code == 200
    # and what the tour does not do needs admin
    assert tour.get("keys").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_keys_read_send_write() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("projects", "0004_membership")])
    old = executor.loader.project_state([("projects", "0004_membership")]).apps
    project = old.get_model("projects", "Project").objects.create(slug="old", name="Old")
    old.get_model("projects", "ApiKey").objects.create(project=project, key_hash="h" * 64, prefix="cm_old")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert ApiKey.objects.get(prefix="cm_old").scopes == ["read", "send", "write"]
