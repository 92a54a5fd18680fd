"""Every API operation, fuzzed from its own OpenAPI document (schemathesis): no input gives a 5xx, every
response matches its schema, and every status code an operation answers with is documented.

Bounded for CI: a few examples per operation (CASEMSG_FUZZ_EXAMPLES raises it for a longer run). The
calls are authenticated with a real project key and, mostly, aimed at that project, so they reach past
the authorization check into the handlers."""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from casemsg.wsgi import application

# Requests run in-process, inside the test's transaction (tests/api/conftest.py).
pytestmark = pytest.mark.usefixtures("keep_connection_open")
EXAMPLES = int(os.environ.get("CASEMSG_FUZZ_EXAMPLES", "12"))


# Loaded once from the running application (the OpenAPI view needs no database).
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
def test_no_input_gives_a_server_error(case, project, api):
    if "project" in (case.path_parameters or {}):
        case.path_parameters["project"] = project.slug
    case.call_and_validate(
        headers={"Authorization": f"Bearer {project.api_key}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
