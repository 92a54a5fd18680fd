from __future__ import annotations

import json
import os

import pytest
from django.test import Client

from casemsg.projects.services import create_project


class Api:
    """A JSON client for one project's API key."""

    def __init__(self, key: str, slug: str):
        self.client = Client()
        self.key = key
        self.slug = slug

    def _h(self, key):
        k = self.key if key is None else key
        return {"HTTP_AUTHORIZATION": f"Bearer {k}"} if k else {}

    def url(self, path: str) -> str:
        if path.startswith("/"):
            return path
        return f"/api/v1/projects/{self.slug}/{path}"

    def get(self, path, key=None, **params):
        return self.client.get(self.url(path), params, **self._h(key))

    def post(self, path, body=None, key=None):
        return self.client.post(self.url(path), json.dumps(body or {}), content_type="application/json", **self._h(key))

    def patch(self, path, body=None, key=None):
        return self.client.patch(
            self.url(path), json.dumps(body or {}), content_type="application/json", **self._h(key)
        )

    def delete(self, path, key=None):
        return self.client.delete(self.url(path), **self._h(key))

    # shortcuts used by many tests
    def case(self, properties=None, **fields) -> dict:
        body = {"case_type": "patient", "name": "Asha", **fields, "properties": properties or {}}
        r = self.post("cases", body)
        assert r.status_code == 201, r.content
        return r.json()

    def contact(self, case_id: str) -> dict:
        r = self.get(f"cases/{case_id}/contact")
        assert r.status_code == 200, r.content
        return r.json()


@pytest.fixture
def project(db):
    p, key = create_project("alpha", "Alpha program", languages=["sw"])
    p.api_key = key
    return p


@pytest.fixture
def other_project(db):
    p, key = create_project("beta", "Beta program")
    p.api_key = key
    return p


@pytest.fixture
def api(project) -> Api:
    return Api(project.api_key, project.slug)


@pytest.fixture
def other_api(other_project) -> Api:
    return Api(other_project.api_key, other_project.slug)


# Fake SMS providers and the SMTP server on 127.0.0.1: fake_gateway, fake_twilio, fake_telerivet,
# fake_africastalking, fake_http, fake_gateway_process, smtp_server (see tests/servers/fixtures.py).
pytest_plugins = ["tests.servers.fixtures"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """CASEMSG_BROWSER_TESTS=0 skips the pages' Chromium tests (tests/web with the live server): they test
    the pages, not the database, so CI runs them once, in the SQLite pass (.ci/run)."""
    if os.environ.get("CASEMSG_BROWSER_TESTS", "1") != "0":
        return
    skip = pytest.mark.skip(reason="CASEMSG_BROWSER_TESTS=0: the browser tests run in the other CI pass")
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()) and "tests/web/" in item.nodeid:
            item.add_marker(skip)
