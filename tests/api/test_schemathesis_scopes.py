"""The admin scope, fuzzed (schemathesis, bounded by CASEMSG_FUZZ_EXAMPLES like test_schemathesis.py): a key
with read, send and write but not admin

- never weakens a legal rule through PATCH …/settings, whatever the body: each write that would is refused
  with 403 WEAKENS_LEGAL_RULE and changes nothing, and no audit entry marks a weakening;
- is refused with 403 INSUFFICIENT_SCOPE by every operation on the keys and the audit log.

The project starts with every legal rule switched on, so that there is something to weaken."""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis

from casemsg.projects import services
from casemsg.projects.models import AuditEntry, Project
from casemsg.wsgi import application

# Requests run in-process, inside the test's transaction (tests/api/conftest.py).
pytestmark = pytest.mark.usefixtures("keep_connection_open")
EXAMPLES = int(os.environ.get("CASEMSG_FUZZ_EXAMPLES", "12"))
FUZZ = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)
STRICT = {
    "consent_regions": ["US", "PR", "CA"],
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "opt_out_keywords": ["SITISHA"],
    "opt_in_keywords": [],
    "block_shared_numbers": True,
}


@pytest.fixture
def no_admin(project) -> str:
    """The plain key of a key without admin, in a project with every legal rule on. (Through the services:
    Django's test client would connect the signals that close the connection again.)"""
    services.update_settings(project, STRICT, may_weaken=True)
    return services.issue_key(project, "no admin", ["read", "send", "write"])[1]


def current(project: Project) -> dict:
    return services.get_settings(Project.objects.get(pk=project.pk))


@schema.include(path_regex=r"/settings$", method="PATCH").parametrize()
@FUZZ
def test_a_key_without_admin_never_weakens_a_legal_rule(case, project, no_admin) -> None:
    case.path_parameters["project"] = project.slug
    before = current(project)
    response = case.call(headers={"Authorization": f"Bearer {no_admin}"})
    after = current(project)
    # (schemathesis also tries a request without the key, 401, and other methods, 405)
    assert response.status_code in (200, 400, 401, 403, 405, 422), response.text
    assert not services.weakenings(before, after), (case.body, before, after)
    if response.status_code != 200:
        assert after == before
    if response.status_code == 403:
        assert response.json()["error"]["code"] == "WEAKENS_LEGAL_RULE", response.text
    assert not AuditEntry.objects.filter(project=project, source="api", weakens=True).exists()


@schema.include(path_regex=r"/(keys|audit)").parametrize()
@FUZZ
def test_a_key_without_admin_reaches_no_key_and_no_audit_log(case, project, no_admin) -> None:
    if "project" in (case.path_parameters or {}):
        case.path_parameters["project"] = project.slug
    keys = project.api_keys.count()
    response = case.call(headers={"Authorization": f"Bearer {no_admin}"})
    # Refused, always: 403 INSUFFICIENT_SCOPE, or earlier still (schemathesis also sends a body that cannot be
    # read, 400; no key or an empty one, 401; a path id the URL patterns do not take, 404; another method, 405).
    assert response.status_code in (400, 401, 403, 404, 405), response.text
    if response.status_code == 403:
        assert response.json()["error"]["code"] == "INSUFFICIENT_SCOPE", response.text
    assert project.api_keys.count() == keys and not project.api_keys.filter(revoked=True).exists()
