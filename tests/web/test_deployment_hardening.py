"""Deployment hardening: the Content-Security-Policy on every answer (and no inline script or style in any
template, so the pages pass it), TLS behind a proxy (the X-Forwarded-Proto header, Secure cookies, HSTS,
the HTTPS redirect) from environment variables, and the data directory's files created mode 0600.

The browser side — no CSP violation on any page, the API docs still drawn — is in test_browser_frame.py
and test_browser_csp.py."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

import casemsg
from casemsg.projects.services import add_member
from casemsg.web import csp
from tests.web.clients import logged_in

REPO = Path(casemsg.__file__).resolve().parents[1]
TEMPLATES = sorted(Path(casemsg.__file__).parent.glob("*/templates/**/*.html"))


# --- the policy ------------------------------------------------------------------------------------
def test_every_answer_carries_the_policy(admin, project):
    directives = dict(d.strip().split(" ", 1) for d in csp.POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    for url in [
        "/",
        f"/projects/{project.slug}/",
        f"/projects/{project.slug}/simulator/",
        "/errors/",
        "/no-such-page/",
    ]:
        r = admin.get(url)
        assert r[csp.HEADER] == csp.POLICY, url
        assert r["X-Frame-Options"] == "DENY", url
    assert Client().get("/accounts/login/")[csp.HEADER] == csp.POLICY  # before logging in too
    docs = admin.get("/api/docs")  # Swagger UI passes the same policy (test_browser_csp.py)
    assert docs.status_code == 200 and docs[csp.HEADER] == csp.POLICY


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
_STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_no_template_has_inline_script_or_style(template):
    """What the policy refuses must not be in a page: inline <script>, on…= handlers, <style>, style=."""
    text = template.read_text(encoding="utf-8")
    assert not _INLINE_SCRIPT.search(text), "inline <script>: put it in a file under static/web/"
    assert not _HANDLER.search(text), "an on…= handler: use data-confirm or a listener in static/web/casemsg.js"
    assert "<style" not in text.lower(), "a <style> element: put the rules in static/web/casemsg.css"
    assert not _STYLE_ATTR.search(text), "a style= attribute: give the element a class in casemsg.css"


def test_a_confirmation_is_a_data_attribute(admin, project, sandbox):
    r = admin.get(f"/projects/{project.slug}/simulator/", {"number": "254712345678"})
    page = r.content.decode()
    assert 'data-confirm="Reset 254712345678?' in page and "onsubmit" not in page
    assert '<script src="/static/web/casemsg.js" defer></script>' in page


# --- TLS behind a proxy -------------------------------------------------------------------------------
def settings_with(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The settings a process started with these environment variables has (settings read them once)."""
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({k: "
        "str(getattr(s, k, None)) for k in ['SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_INCLUDE_SUBDOMAINS']}))"
    )
    full = {k: v for k, v in os.environ.items() if not k.startswith("CASEMSG_") and k != "PYTEST_VERSION"}
    full |= {"DJANGO_SETTINGS_MODULE": "casemsg.settings", "CASEMSG_DATA_DIR": str(tmp_path), **env}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_tls_settings_come_from_the_environment(tmp_path):
    plain = settings_with({}, tmp_path)
    assert plain == {
        "SECURE_PROXY_SSL_HEADER": "None",
        "SESSION_COOKIE_SECURE": "False",
        "CSRF_COOKIE_SECURE": "False",
        "SECURE_HSTS_SECONDS": "0",
        "SECURE_SSL_REDIRECT": "False",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "False",
    }
    env = {"CASEMSG_BEHIND_TLS_PROXY": "1", "CASEMSG_HSTS_SECONDS": "31536000", "CASEMSG_SSL_REDIRECT": "1"}
    behind = settings_with(env, tmp_path)
    assert behind["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert behind["SESSION_COOKIE_SECURE"] == behind["CSRF_COOKIE_SECURE"] == "True"
    assert (behind["SECURE_HSTS_SECONDS"], behind["SECURE_SSL_REDIRECT"]) == ("31536000", "True")
    # cookies can be made Secure on their own, or kept plain behind the proxy
    assert settings_with({"CASEMSG_SECURE_COOKIES": "1"}, tmp_path)["SESSION_COOKIE_SECURE"] == "True"
    kept = settings_with({"CASEMSG_BEHIND_TLS_PROXY": "1", "CASEMSG_SECURE_COOKIES": "0"}, tmp_path)
    assert kept["CSRF_COOKIE_SECURE"] == "False"


@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_SSL_REDIRECT=True,
    SECURE_HSTS_SECONDS=31536000,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
)
def test_behind_a_tls_proxy(db):
    """What those settings do to requests: a client's plain HTTP is sent to HTTPS (the probes excepted),
    the proxy's https gets HSTS, and the session and CSRF cookies are Secure."""
    user = get_user_model().objects.create_user("tls", password="pw-tls-1")
    c = Client()
    r = c.get("/accounts/login/")
    assert r.status_code == 301 and r["Location"] == "https://testserver/accounts/login/"
    assert c.get("/healthz").status_code == 200  # probes over plain HTTP inside the network
    https = {"HTTP_X_FORWARDED_PROTO": "https"}
    r = c.get("/accounts/login/", **https)
    assert r.status_code == 200 and r["Strict-Transport-Security"] == "max-age=31536000"
    assert r.cookies["csrftoken"]["secure"] is True
    r = c.post("/accounts/login/", {"username": "tls", "password": "pw-tls-1"}, **https)
    assert r.status_code == 302 and r.cookies["sessionid"]["secure"] is True
    assert user.pk


def test_plain_http_stays_plain_without_the_settings(db):
    r = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert r.status_code == 200 and "Strict-Transport-Security" not in r
    assert r.cookies["csrftoken"]["secure"] == ""  # the header is not trusted, nothing is Secure


# --- files only their owner reads -----------------------------------------------------------------------
def test_the_data_dir_files_are_created_0600(tmp_path):
    """secret_key, the SQLite database (and its -wal file while open) and the job queue, even under umask 0,
    which would leave a file created the plain way readable and writable by everyone."""
    code = (
        "import os; os.umask(0); import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('CREATE TABLE t (x)'); c.execute('INSERT INTO t VALUES (1)')\n"
        "    print(oct(os.stat(connection.settings_dict['NAME'] + '-wal').st_mode & 0o777))\n"
        "from huey.contrib.djhuey import HUEY\n"
        "HUEY.storage.enqueue(b'x', 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEMSG_") and k != "PYTEST_VERSION"}
    env |= {"DJANGO_SETTINGS_MODULE": "casemsg.settings", "CASEMSG_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0o600"]  # the WAL file, while the database was open
    for name in ("secret_key", "casemsg.sqlite3", "queue.sqlite3"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} is {oct(mode)}"
    assert (tmp_path / "secret_key").read_text().strip()  # and it holds a key


def test_an_upload_waiting_for_its_import_is_0600(project, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    user = get_user_model().objects.create_user("imp", password="pw-imp-1")
    add_member(project, user, "editor")
    upload = SimpleUploadedFile("cases.csv", b"case_id,name\nc1,Asha\n", content_type="text/csv")
    old = os.umask(0)
    try:
        r = logged_in(user).post(f"/projects/{project.slug}/cases-import/", {"file": upload, "case_type": "mother"})
    finally:
        os.umask(old)
    assert r.status_code == 200 and "Nothing has been written yet" in r.content.decode()
    (waiting,) = (tmp_path / "imports").glob("*.csv")
    assert stat.S_IMODE(waiting.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "imports").stat().st_mode) == 0o700
