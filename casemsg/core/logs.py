"""Logging helpers: structured (JSON) log lines and phone numbers masked at INFO and above.

``CASEMSG_LOG_FORMAT=json`` (settings.LOGGING) formats every line as one JSON object: ``time`` (UTC,
ISO 8601), ``level``, ``logger``, ``message``, and — on lines that concern one message — the fields
``message_id``, ``project``, ``gateway`` and ``error`` (a catalogue code), passed by the caller with
``extra=fields(...)``. Gunicorn's access lines become objects with the request's method, path, status,
duration and remote address.

Phone numbers: a line at INFO or above never shows a whole number. Code that logs one masks it with
``mask_phone`` (all but the last 4 digits), and ``MaskNumbersFilter`` on the handler masks any run of 8 or
more digits left in a line's text as a backstop (DEBUG lines are left alone: they are for a developer's own
machine). Secrets are never logged: API keys, gateway tokens and webhook secrets are not passed to a logger.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# The structured fields a line about one message (or delivery) may carry, in this order.
FIELDS = ("message_id", "project", "gateway", "error", "endpoint", "delivery_id", "event")

# A phone number as it appears in text: optionally '+', then 8–15 digits, possibly split by single spaces,
# dashes or dots (+1 555-123-4567). Runs inside longer words (hex ids) are left alone.
_NUMBER = re.compile(r"(?<![\w+])\+?\d(?:[ .\-]?\d){7,14}(?!\w)")


def mask_phone(number: str | None) -> str:
    """All but the last 4 digits replaced by '*': '254712345678' → '********5678'."""
    digits = "".join(ch for ch in str(number or "") if ch.isdigit())
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_numbers(text: str) -> str:
    """Every phone-number-like run of digits in `text` masked (mask_phone)."""
    return _NUMBER.sub(lambda m: mask_phone(m.group(0)), text)


# A provider webhook's URL carries the gateway's secret inbound key: /api/v1/gateways/<name>/<key>/inbound.
_WEBHOOK_KEY = re.compile(r"(/gateways/[^/\s?]+/)[^/\s?]+(/(?:inbound|status))")


def redact_url(text: str) -> str:
    """A request line or path as it may be logged: gateway keys hidden, phone numbers masked."""
    return mask_numbers(_WEBHOOK_KEY.sub(r"\1***\2", text))


def fields(**values: Any) -> dict[str, Any]:
    """The `extra` of a log call about one message: fields() with the ones that apply, empty ones left out.

    log.info("message %s failed", m.pk, extra=fields(message_id=m.pk, project=slug, error=m.error))
    """
    return {k: v for k, v in values.items() if k in FIELDS and v not in (None, "")}


class MaskNumbersFilter(logging.Filter):
    """Masks phone numbers and hides gateway webhook keys in every line at INFO or above (a backstop for
    what was not masked at the call: Django's request warnings name the path), and in gunicorn's access
    lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            atoms = dict(record.args)
            for atom in ("r", "U", "q", "f"):
                if isinstance(atoms.get(atom), str):
                    atoms[atom] = redact_url(atoms[atom])
            record.args = atoms
            return True
        if record.levelno >= logging.INFO:
            try:
                text = record.getMessage()
            except Exception:  # noqa: BLE001 — a bad format string is logging's own error to report
                return True
            masked = redact_url(text)  # django.request names the path of a refused webhook
            if masked != text:
                record.msg, record.args = masked, None
        return True


# Gunicorn hands its access-log atoms to the logger as the record's args (a dict); these are kept.
_ACCESS_ATOMS = {"m": "method", "U": "path", "s": "status", "h": "remote", "L": "duration_s", "b": "bytes"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (CASEMSG_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            atoms = record.args
            out["message"] = f"{atoms.get('m', '')} {atoms.get('U', '')} {atoms.get('s', '')}"
            for atom, name in _ACCESS_ATOMS.items():
                if atom in atoms:
                    out[name] = atoms[atom]
        else:
            out["message"] = record.getMessage()
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value not in (None, ""):
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)
