"""Values Python accepts but no column stores are refused with a 422 naming the field, never a 500: NaN and
±Infinity anywhere in a JSON body (Python's JSON parser reads them), and gateway limits beyond what their
columns hold."""

from __future__ import annotations

import pytest

from casemsg.core import errors
from casemsg.gateways.models import Gateway

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/send"


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (
            '{"name": "g1", "type": "http", "config": {"url": "%s", "timeout": NaN}}',
            errors.INVALID_VALUE,
            "config.timeout is nan",
        ),
        (
            '{"name": "g2", "type": "http", "config": {"url": "%s", "x": -Infinity}}',
            errors.INVALID_VALUE,
            "config.x is -inf",
        ),
        (
            '{"name": "g3", "type": "http", "rate_limit": 99999999999999999999, "config": {"url": "%s"}}',
            errors.VALIDATION_ERROR,
            "rate_limit",
        ),
        (
            '{"name": "g4", "type": "http", "max_segments": 4294967296, "config": {"url": "%s"}}',
            errors.VALIDATION_ERROR,
            "max_segments",
        ),
    ],
)
def test_a_gateway_body_with_an_unstorable_value_is_a_422(api, body, code, words):
    r = api.client.post(api.url("gateways"), body % URL, content_type="application/json", **api._h(None))
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == code and words in r.json()["error"]["message"]
    assert not Gateway.objects.exists()


def test_nan_in_a_case_property_is_a_422(api):
    body = '{"case_type": "patient", "name": "Asha", "properties": {"weight": NaN}}'
    r = api.client.post(api.url("cases"), body, content_type="application/json", **api._h(None))
    assert r.status_code == 422 and "properties.weight is nan" in r.json()["error"]["message"]
