"""`casemsg doctor` against real parts: the test database, a fake provider, a real SMTP server and a
closed port."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway
from tests.conftest import closed_port


@pytest.fixture
def production(settings, monkeypatch):
    """What a production install sets."""
    monkeypatch.setenv("CASEMSG_SECRET_KEY", "k" * 50)
    monkeypatch.setenv("CASEMSG_ALLOWED_HOSTS", "sms.example.org")
    settings.ALLOWED_HOSTS = ["sms.example.org"]
    settings.DEBUG = False
    settings.CASEMSG_SANDBOX = False
    settings.CASEMSG_METRICS_TOKEN = "t" * 32
    settings.EMAIL_URL = ""
    return settings


def doctor(capsys, *args: str) -> tuple[int, str]:
    try:
        call_command("doctor", *args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


def findings(capsys) -> tuple[int, dict[str, list[dict]]]:
    code, out = doctor(capsys, "--json")
    doc = json.loads(out)
    assert doc["ok"] is (code == 0)
    by_check: dict[str, list[dict]] = {}
    for f in doc["findings"]:
        by_check.setdefault(f["check"], []).append(f)
    return code, by_check


def test_a_development_install_must_be_fixed(db, settings, monkeypatch, capsys):
    monkeypatch.delenv("CASEMSG_SECRET_KEY", raising=False)
    monkeypatch.delenv("CASEMSG_ALLOWED_HOSTS", raising=False)
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    settings.DEBUG = True
    settings.CASEMSG_SANDBOX = True
    code, out = doctor(capsys)
    assert code == 1
    assert "[FAIL] secret_key: CASEMSG_SECRET_KEY is not set" in out
    assert "[FAIL] debug:" in out and "[FAIL] allowed_hosts:" in out and "[FAIL] sandbox:" in out
    assert "fix: Set CASEMSG_SANDBOX=0" in out
    assert out.strip().splitlines()[-1].startswith("4 to fix")


def test_a_production_install_passes(db, production, fake_http, capsys):
    production.CASEMSG_GATEWAY_ALLOW_PRIVATE = True  # the fake provider is on 127.0.0.1
    add_gateway("http-fake", "http", fake_http.gateway_config())
    code, checks = findings(capsys)
    assert code == 0, checks
    for name in ("secret_key", "debug", "allowed_hosts", "sandbox", "migrations"):
        assert checks[name][0]["level"] == "ok", checks[name]
    assert checks["gateway"][0]["level"] == "ok" and "http-fake" in checks["gateway"][0]["message"]
    assert checks["email"][0]["level"] == "warn"  # console email works, but sends nothing
    assert checks["private_addresses"][0]["level"] == "warn"


def test_gateways_incomplete_unresolvable_or_internal(db, production, capsys):
    production.CASEMSG_GATEWAY_ALLOW_PRIVATE = True
    # rows as an older version or the admin may have left them: the doctor reads what is stored
    Gateway.objects.create(name="no-url", type="http", config={})
    Gateway.objects.create(name="typo", type="http", config={"url": "https://sms.no-such-host.invalid/send"})
    code, checks = findings(capsys)
    assert code == 1
    by_name = {f["message"].split(":")[0]: f for f in checks["gateway"]}
    assert by_name["gateway no-url"]["level"] == "fail" and "needs url" in by_name["gateway no-url"]["message"]
    assert by_name["gateway typo"]["level"] == "fail" and "does not resolve" in by_name["gateway typo"]["message"]

    production.CASEMSG_GATEWAY_ALLOW_PRIVATE = False
    Gateway.objects.filter(name="typo").update(config={"url": "http://10.0.0.5/send"})
    _code, checks = findings(capsys)
    typo = [f for f in checks["gateway"] if f["message"].startswith("gateway typo")][0]
    assert typo["level"] == "fail" and "private-network address" in typo["message"]


def test_smtp_reachable_or_not(db, production, smtp_server, capsys):
    production.EMAIL_URL = f"smtp://{smtp_server.host}:{smtp_server.port}"
    production.EMAIL_HOST, production.EMAIL_PORT = smtp_server.host, smtp_server.port
    production.EMAIL_USE_TLS = production.EMAIL_USE_SSL = False
    production.EMAIL_HOST_USER = ""
    _code, checks = findings(capsys)
    assert checks["email"][0]["level"] == "ok", checks["email"]

    port = closed_port()
    production.EMAIL_URL = f"smtp://127.0.0.1:{port}"
    production.EMAIL_PORT = port
    code, checks = findings(capsys)
    assert code == 1 and checks["email"][0]["level"] == "fail"
    assert f"127.0.0.1:{port} cannot be used" in checks["email"][0]["message"]
