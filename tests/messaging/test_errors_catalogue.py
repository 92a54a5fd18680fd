"""The error catalogue is one list, shown the same by the API, the CLI and docs/errors.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from casemsg.core import errors

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "make errors-doc"

# The codes the catalogue starts from (docs/errors.md lists them all).
DESIGN_CODES = """INVALID_PHONE_NUMBER NO_PHONE_NUMBER NO_TWO_WAY_PHONE_NUMBER PHONE_NUMBER_IN_USE NO_CONSENT
PHONE_OPTED_OUT NO_CASE_NAME NO_EMAIL_ADDRESS INVALID_EMAIL_ADDRESS INVALID_TIME_ZONE UNKNOWN_LANGUAGE_CODE
NO_MESSAGE_FOR_LANGUAGE CANNOT_RENDER_MESSAGE GATEWAY_NOT_FOUND NO_SUITABLE_GATEWAY UNSUPPORTED_COUNTRY
CONTACT_IS_INACTIVE MESSAGE_BLANK MESSAGE_TOO_LONG INVALID_DESTINATION_NUMBER GATEWAY_ERROR
TOO_MANY_UNSUCCESSFUL_ATTEMPTS MESSAGE_IS_STALE RATE_LIMITED QUIET_HOURS LOOP_DETECTED EMAIL_GATEWAY_ERROR
SURVEY_EXPIRED""".split()


def test_catalogue_has_every_design_code_with_words():
    assert set(DESIGN_CODES) <= set(errors.CATALOGUE)
    for e in errors.CATALOGUE.values():
        assert e.code == e.code.upper() and " " not in e.code
        assert e.title.strip() and e.description.strip() and e.fix.strip(), e.code
    assert {c for c, e in errors.CATALOGUE.items() if e.delay} == {
        "RATE_LIMITED",
        "QUIET_HOURS",
        "GATEWAY_FAILOVER",
        "GATEWAY_CIRCUIT_OPEN",
    }


def test_api_lists_every_code_without_a_key(db):
    r = Client().get("/api/v1/errors")
    assert r.status_code == 200, r.content
    items = r.json()
    codes = [i["code"] for i in items]
    assert len(codes) == len(set(codes))
    assert set(codes) == set(errors.CATALOGUE)
    for item in items:
        e = errors.CATALOGUE[item["code"]]
        assert (item["title"], item["description"], item["fix"], item["delay"]) == (
            e.title,
            e.description,
            e.fix,
            e.delay,
        )


def test_cli_prints_every_code(tmp_path):
    env = {**os.environ, "CASEMSG_DATA_DIR": str(tmp_path)}
    exe = Path(sys.executable).with_name("casemsg")
    out = subprocess.run([str(exe), "errors"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    for e in errors.CATALOGUE.values():
        assert f"{e.code}{' (delay)' if e.delay else ''} — {e.title}" in out.stdout
        assert e.description in out.stdout
        assert f"Fix: {e.fix}" in out.stdout


def test_cli_one_code_and_json():
    buf = StringIO()
    call_command("errors", "no_consent", stdout=buf)
    assert buf.getvalue().startswith("NO_CONSENT — No recorded consent")
    assert "PHONE_OPTED_OUT" not in buf.getvalue()
    buf = StringIO()
    call_command("errors", "--json", stdout=buf)
    assert {i["code"]: i["fix"] for i in json.loads(buf.getvalue())} == {c: e.fix for c, e in errors.CATALOGUE.items()}
    with pytest.raises(SystemExit):
        call_command("errors", "NO_SUCH_CODE", stdout=StringIO(), stderr=StringIO())


def test_docs_errors_md_equals_the_catalogue():
    path = ROOT / "docs" / "errors.md"
    assert path.exists(), f"docs/errors.md is missing; create it with: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == errors.catalogue_markdown(), (
        f"docs/errors.md is out of date with casemsg/core/errors.py; regenerate it with: {REGENERATE}"
    )
    for code in errors.CATALOGUE:
        assert f"## `{code}`" in path.read_text(encoding="utf-8")


def test_every_contact_error_in_the_api_comes_from_the_catalogue(api):
    """Contact statuses only carry catalogue codes, with the catalogue's title and description."""
    c = api.case(
        {
            "contact_phone_number": "1-206-617-1234",
            "time_zone": "Bad/Zone",
            "language_code": "xx",
            "contact_backend_id": "nope",
            "commcare_email_address": "bad",
        },
        name="",
    )
    st = api.contact(c["case_id"])
    found = [st[ch]["error"] for ch in ("sms", "two_way_sms", "email")] + st["warnings"]
    assert len(found) >= 7
    for err in found:
        e = errors.CATALOGUE[err["code"]]
        assert (err["title"], err["description"]) == (e.title, e.description)
        assert err["fix"]
