"""Webhook payloads in each provider's own format (what the provider POSTs to us), for tests of
parse_inbound/parse_status, of the webhook views and for the inbound benchmark's load generator.

Every builder returns the form fields as a dict of strings; post them form-encoded
(application/x-www-form-urlencoded), as the providers do. Twilio requests also need
`twilio_signature(url, fields, auth_token)` in the X-Twilio-Signature header.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from twilio.request_validator import RequestValidator

FORM = "application/x-www-form-urlencoded"


def _plus(number: str) -> str:
    return number if number.startswith("+") else "+" + number


# --- Twilio (https://www.twilio.com/docs/messaging/guides/webhook-request) ---------------------------
def twilio_inbound(
    from_: str,
    text: str,
    *,
    to: str = "+15550001111",
    sid: str | None = None,
    account_sid: str = "AC" + "0" * 32,
) -> dict[str, str]:
    sid = sid or "SM" + uuid.uuid4().hex
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": text,
        "To": _plus(to),
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": _plus(from_),
        "ApiVersion": "2010-04-01",
    }


def twilio_status(
    sid: str,
    status: str,
    *,
    error_code: str | int | None = None,
    to: str = "+15551234567",
    account_sid: str = "AC" + "0" * 32,
) -> dict[str, str]:
    fields = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": _plus(to),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": "+15550001111",
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        fields["ErrorCode"] = str(error_code)
    return fields


def twilio_signature(url: str, fields: dict[str, str], auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for a form POST of `fields` to `url`."""
    return RequestValidator(auth_token).compute_signature(url, fields)


# --- Telerivet (https://telerivet.com/api/webhook) ---------------------------------------------------
def telerivet_inbound(
    from_: str,
    text: str,
    *,
    id: str | None = None,
    secret: str | None = None,
    to: str = "+254700000000",
    time_created: int | None = None,
) -> dict[str, str]:
    fields = {
        "event": "incoming_message",
        "id": id or "SM" + uuid.uuid4().hex[:16],
        "message_type": "sms",
        "content": text,
        "from_number": _plus(from_),
        "from_number_e164": _plus(from_),
        "to_number": _plus(to),
        "time_created": str(time_created if time_created is not None else int(time.time())),
        "direction": "incoming",
        "status": "received",
        "phone_id": "PN0123456789abcdef",
        "project_id": "PJ0123456789abcdef",
    }
    if secret is not None:
        fields["secret"] = secret
    return fields


def telerivet_status(
    id: str, status: str, *, secret: str | None = None, error_message: str | None = None
) -> dict[str, str]:
    fields = {"event": "send_status", "id": id, "status": status, "message_type": "sms", "direction": "outgoing"}
    if secret is not None:
        fields["secret"] = secret
    if error_message is not None:
        fields["error_message"] = error_message
    return fields


# --- Africa's Talking (https://developers.africastalking.com/docs/sms/notifications) -----------------
def africastalking_inbound(
    from_: str,
    text: str,
    *,
    id: str | None = None,
    to: str = "12345",
    date: str = "2024-05-31 12:15:36",
    link_id: str | None = None,
) -> dict[str, str]:
    fields = {"from": _plus(from_), "to": to, "text": text, "id": id or str(uuid.uuid4()), "date": date}
    if link_id is not None:
        fields["linkId"] = link_id
    return fields


def africastalking_status(
    id: str, status: str, *, failure_reason: str | None = None, phone_number: str = "+254711000000"
) -> dict[str, str]:
    fields = {"id": id, "status": status, "phoneNumber": phone_number, "networkCode": "63902", "retryCount": "0"}
    if failure_reason is not None:
        fields["failureReason"] = failure_reason
    return fields


# --- sending one for real (live server, benchmarks) --------------------------------------------------
def post_form(url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """POST `fields` form-encoded; returns (HTTP status, body) without raising on 4xx/5xx."""
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    req.add_header("Content-Type", FORM)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
