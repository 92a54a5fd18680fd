"""Structured logs and masking: JSON lines with the message fields, no whole phone number at INFO, no
gateway key in access lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from casemsg.core import logs
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline


def handler(formatter: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    h = logging.StreamHandler(out)
    h.setFormatter(formatter)
    h.addFilter(logs.MaskNumbersFilter())
    return h, out


@pytest.fixture
def capture():
    """A JSON handler on casemsg's loggers, as CASEMSG_LOG_FORMAT=json configures, at INFO."""
    h, out = handler(logs.JsonFormatter())
    root = logging.getLogger("casemsg")
    old = root.level
    root.addHandler(h)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(h)
    root.setLevel(old)


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_mask_phone():
    assert logs.mask_phone("254712345678") == "********5678"
    assert logs.mask_phone("+1 206-617-1234") == "*******1234"
    assert logs.mask_phone("123") == "***"
    assert (
        logs.mask_numbers("to +254712345678 and 12066171234, id 20260101")
        == "to ********5678 and *******1234, id ****0101"
    )
    assert logs.mask_numbers("message 4711 of batch abc123def4567890") == "message 4711 of batch abc123def4567890"


def test_failed_message_logged_as_json_with_its_fields(api, capture, fake_gateway):
    fake = fake_gateway("http")
    fake.error_for(None, 0, status=400)
    add_gateway("http-fake", "http", fake.gateway_config())
    map_prefix("*", "http-fake")
    case = api.case({"contact_phone_number": "254712345678"})
    message_id = api.post("messages", {"recipient": {"case_id": case["case_id"]}, "text": "Hi"}).json()["id"]
    pipeline.deliver_due()
    [line] = [x for x in lines(capture) if x["logger"] == "casemsg.messages"]
    assert line["level"] == "INFO"
    assert line["message_id"] == message_id and line["project"] == "alpha" and line["gateway"] == "http-fake"
    assert line["error"] == "GATEWAY_ERROR"
    assert "********5678" in line["message"] and "254712345678" not in json.dumps(line)
    assert line["time"].endswith("+00:00")


def test_numbers_masked_at_info_not_at_debug():
    h, out = handler(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("casemsg.test_masking")
    log.addHandler(h)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        log.info("reply to %s", "254712345678")
        log.warning("number 12066171234 opted out")
        log.debug("raw %s", "254712345678")
        log.warning("Forbidden: /api/v1/gateways/at-ke/s3cr3tK3y/status")
    finally:
        log.removeHandler(h)
    assert out.getvalue().splitlines() == [
        "INFO reply to ********5678",
        "WARNING number *******1234 opted out",
        "DEBUG raw 254712345678",
        "WARNING Forbidden: /api/v1/gateways/at-ke/***/status",
    ]


def test_access_lines_hide_gateway_keys_and_numbers():
    h, out = handler(logs.JsonFormatter())
    log = logging.getLogger("gunicorn.access")
    log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
    atoms = {
        "h": "10.0.0.1",
        "m": "POST",
        "U": "/api/v1/gateways/at-ke/s3cr3tK3y/inbound",
        "q": "from=254712345678",
        "r": "POST /api/v1/gateways/at-ke/s3cr3tK3y/inbound?from=254712345678 HTTP/1.1",
        "s": "200",
        "L": "0.012",
        "b": "2",
    }
    try:
        log.info('%(h)s "%(r)s" %(s)s', atoms)
    finally:
        log.removeHandler(h)
    text = out.getvalue()
    assert "s3cr3tK3y" not in text and "254712345678" not in text
    [line] = lines(out)
    assert line["path"] == "/api/v1/gateways/at-ke/***/inbound"
    assert line["status"] == "200" and line["method"] == "POST" and line["duration_s"] == "0.012"
