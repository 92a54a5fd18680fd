"""What a provider's webhook may put in the database, made storable before the database sees it.

A provider (or anyone holding a gateway's webhook URL) can send anything. The webhooks must never answer
500 and never lose a message, so every value is cleaned or bounded here, the same way on SQLite and
PostgreSQL (PostgreSQL refuses NUL characters in text and JSON, and values longer than their column):

- text: NUL characters and lone surrogates are removed (`clean_text`);
- provider ids longer than the column (128) are shortened deterministically, so that a webhook retried
  by the provider is still recognised as the same message and a status report still finds the message
  whose send answer carried the same long id (`provider_key`);
- a sender that is not a plausible phone number (no digits, or more than 15) makes the message
  *unroutable*: stored as received, with the raw payload, but not processed (`sender_problem`);
- a provider's time outside a plausible window, or with an offset no time zone has, is replaced by the
  time of arrival (`received_time`);
- the request itself is kept as the message's raw payload (`raw_payload`): the body as text when it is
  clean UTF-8, else base64, so that nothing the provider sent is lost even when parsing found nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpRequest

from casemsg.core import errors, netguard
from casemsg.gateways.base import InboundSms, StatusUpdate

MAX_PROVIDER_ID = 128  # messaging.Message.provider_id
MAX_SENDER_DIGITS = 15  # E.164
MAX_DETAIL = 200  # a provider's words shown to a project (status reports)
# A provider's own time of a message is believed within this window around its arrival.
PAST_LIMIT = timedelta(days=365)
FUTURE_LIMIT = timedelta(days=1)
# UTC offsets real time zones use (UTC-12 to UTC+14); PostgreSQL refuses some others outright.
MIN_OFFSET, MAX_OFFSET = timedelta(hours=-12), timedelta(hours=14)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # a Python str holds surrogates only as lone ones


def clean_text(value: str) -> str:
    """`value` without NUL characters and lone surrogates, which no database column can store."""
    return _UNSTORABLE.sub("", value) if value else ""


def provider_key(value: str) -> str:
    """A provider's message id as stored: cleaned, and when longer than the column, its head plus a hash
    of the whole (deterministic, so dedupe and status matching keep working)."""
    value = clean_text(value or "")
    if len(value) <= MAX_PROVIDER_ID:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    return value[: MAX_PROVIDER_ID - len(digest) - 1] + "~" + digest


def sender_problem(number: str) -> str | None:
    """Why `number` (the digits a gateway type read) cannot be routed, or None when it is plausible."""
    if not number:
        return "The provider gave no sender number (or one without digits, such as a sender ID)."
    if not number.isdigit():
        return "The provider's sender is not a phone number."
    if len(number) > MAX_SENDER_DIGITS:
        return f"The provider's sender has {len(number)} digits; a phone number has at most {MAX_SENDER_DIGITS}."
    return None


def received_time(value: datetime | None, now: datetime) -> datetime:
    """The provider's time of the message, in UTC, when plausible; else `now`."""
    if value is None or value.tzinfo is None:
        return now
    offset = value.utcoffset()
    if offset is None or not MIN_OFFSET <= offset <= MAX_OFFSET:
        return now
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return now
    if not now - PAST_LIMIT <= utc <= now + FUTURE_LIMIT:
        return now
    return utc


@dataclass(frozen=True)
class CleanInbound:
    """One inbound message as it may be stored. An unroutable one (`error` set, `problem` its reason) is
    stored without a sender and never processed."""

    sender: str
    text: str
    provider_id: str
    received_on: datetime
    error: str = ""
    problem: str = ""


def clean_inbound(item: InboundSms, now: datetime) -> CleanInbound:
    number = clean_text(item.from_number or "")
    problem = sender_problem(number)
    return CleanInbound(
        sender="" if problem else number,
        text=clean_text(item.text or ""),
        provider_id=provider_key(item.provider_id or ""),
        received_on=received_time(item.received_on, now),
        error=errors.INVALID_SENDER if problem else "",
        problem=f"{problem} Stored as received; not processed." if problem else "",
    )


def clean_status(update: StatusUpdate) -> StatusUpdate:
    """A status report with a storable provider id and a short, plain-text detail."""
    return StatusUpdate(
        provider_key(update.provider_id),
        update.status,
        error=update.error,
        detail=netguard.excerpt(update.detail, MAX_DETAIL) if update.detail else "",
        opt_out=update.opt_out,
    )


def _storable(data: bytes) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return {"body_base64": base64.b64encode(data).decode("ascii")}
    return {"body": text}


def raw_payload(request: HttpRequest, body: bytes) -> dict[str, Any]:
    """What the provider sent, storable in a JSON column on every database: the content type, the query
    string and the body (as text when it is clean UTF-8, else as base64)."""
    meta = request.META
    return {
        "content_type": clean_text(str(meta.get("CONTENT_TYPE", ""))),
        "query": clean_text(str(meta.get("QUERY_STRING", ""))),
        **_storable(body),
    }
