from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.projects.services import add_member, create_project
from tests.web.clients import logged_in


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


def assert_error(r, status: int, code: str) -> dict:
    """The answer is the API's one error shape, {"error": {"code", "message"}}, with this status and code."""
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def sandbox_gateway(name: str = "sandbox", prefix: str | None = "*", project=None, **kw) -> Gateway:
    """A sandbox gateway (the installation's, or `project`'s own) routing numbers that start with `prefix`
    (`*`: every number; None: no route)."""
    gw = add_gateway(name, "sandbox", project=project, **kw)
    if prefix is not None:
        map_prefix(prefix, name, project)
    return gw


@pytest.fixture
def sandbox(db) -> Gateway:
    """An installation-wide sandbox gateway routing every number (the phone simulator's gateway)."""
    return sandbox_gateway()


@pytest.fixture
def admin(db) -> Client:
    """A superuser's page client: owner of every project."""
    return logged_in(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-boss-1"))


@pytest.fixture
def editor(project) -> Client:
    """A page client of an editor of the project."""
    user = get_user_model().objects.create_user("eddie", password="pw-eddie-1")
    add_member(project, user, "editor")
    return logged_in(user)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (a server that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_bind(host: str) -> bool:
    """Whether this machine has the address (e.g. 127.0.0.2, or ::1)."""
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except OSError:
            return False
    return True


def database_url() -> str:
    """The *test* database as a URL (CASEMSG_DATABASE_URL), as a worker process started by a test must see it."""
    db = settings.DATABASES["default"]
    if settings.IS_POSTGRES:
        auth = quote(db.get("USER") or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgresql://{auth}@{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def queue_url(number: int) -> str:
    """The test run's Redis (CASEMSG_QUEUE_URL) at database `number`: a queue of a test module's own."""
    base = settings.QUEUE_URL.split("://", 1)[1].split("/", 1)[0]
    return f"redis://{base}/{number}"


@pytest.fixture
def redis_queue(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test module's own Redis database (its REDIS_DB), empty before and after; yields its URL."""
    import redis

    url = queue_url(request.module.REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database after `casemsg migrate`, made once per run: a migrate in a fresh process
    takes 10–15 s, and each test that starts casemsg processes on a data dir of its own needs one."""
    data = tmp_path_factory.mktemp("migrated")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "CASEMSG_DATABASE_URL")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["CASEMSG_DATA_DIR"] = str(data)
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], env=env, cwd=root, check=True)
    return data / "casemsg.sqlite3"


@pytest.fixture
def migrated_data_dir(_migrated_sqlite: Path) -> Iterator[Callable[[Path], Path]]:
    """`migrated_data_dir(path)` makes `path` a casemsg data dir whose SQLite database is migrated (what
    `casemsg migrate` there would leave), as a copy of the run's one migrated database."""

    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_migrated_sqlite, path / "casemsg.sqlite3")  # with its 0600 mode
        return path

    yield make


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
