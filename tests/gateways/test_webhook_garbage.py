"""Webhooks never answer 500 and never lose a message, whatever an authenticated provider sends.

Each reproduction of the issue is posted to the real webhook views (the gateway's secret URL, a valid
Twilio signature where the type has one) for every gateway type it applies to. A request is either
stored — text cleaned of NUL, lengths bounded, the raw payload kept — or answered 4xx with a catalogue
code and the reason. Run on SQLite and on PostgreSQL (CASEMSG_DATABASE_URL), which refuses NUL characters
and over-long values where SQLite does not."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from django.test import Client
from django.utils import timezone

from casemsg.core import errors
from casemsg.gateways.cleaning import MAX_PROVIDER_ID, provider_key
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, inbound_url, status_url
from casemsg.inbound import router
from casemsg.messaging.models import Message
from tests.gateways.webhook_posts import CONFIGS, TOKEN, kind_of, post, post_inbound, post_status
from tests.servers.webhooks import (
    africastalking_inbound,
    telerivet_inbound,
    twilio_inbound,
    twilio_signature,
    twilio_status,
)

pytestmark = pytest.mark.django_db

KINDS = list(CONFIGS)
FORM_KINDS = ["twilio", "telerivet", "africastalking"]
STATUS_KINDS = ["http", "twilio", "telerivet", "africastalking"]
KE = "254712345678"


@pytest.fixture
def client() -> Client:
    # A view's exception becomes the 500 a provider would see, instead of being raised into the test.
    return Client(raise_request_exception=False)


def make_gateway(kind: str) -> Gateway:
    return add_gateway(f"gw-{kind}", kind.removesuffix("-json"), CONFIGS[kind])


@pytest.fixture(params=KINDS)
def gw(request) -> Gateway:
    return make_gateway(request.param)


def assert_accepted(r) -> None:
    assert r.status_code == 200, r.content


def assert_refused(r, code: str = errors.INVALID_WEBHOOK, status: int = 400) -> dict:
    """A 4xx answer in JSON, with a catalogue code whose status it is, and nothing stored."""
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == code and errors.get(code).status == status
    assert error["message"]
    assert not Message.objects.filter(direction=Message.IN).exists()
    return error


def stored() -> Message:
    (m,) = Message.objects.filter(direction=Message.IN)
    return m


def raw_body(m: Message) -> bytes:
    assert m.raw is not None
    if "body_base64" in m.raw:
        return base64.b64decode(m.raw["body_base64"])
    return m.raw["body"].encode()


def near_now(value: datetime) -> bool:
    return abs(timezone.now() - value) < timedelta(minutes=1)


# --- text, sender, provider id -----------------------------------------------------------------------
def test_nul_is_removed_from_text_sender_and_id(client, gw):
    r = post_inbound(client, gw, "+2547\x0012345678", "Hi\x00 there\x00", "id\x00-1")
    assert_accepted(r)
    m = stored()
    assert (m.text, m.to, m.provider_id) == ("Hi there", KE, "id-1")
    assert (m.error, m.next_attempt_on is not None) == ("", True)  # routable: queued for processing
    # the raw payload is what the provider sent, NUL included
    if kind_of(gw) in ("sandbox", "http-json"):
        assert "\\u0000" in m.raw["body"]
    else:
        text_field = {"twilio": "Body", "telerivet": "content"}.get(gw.type, "text")
        assert parse_qs(raw_body(m).decode())[text_field] == ["Hi\x00 there\x00"]
    assert m.raw["content_type"].startswith("application/")


@pytest.mark.parametrize("kind", ["sandbox", "http-json"])
def test_lone_surrogates_are_removed_from_json_text(client, kind):
    gw = make_gateway(kind)
    assert_accepted(post_inbound(client, gw, "+" + KE, "a\ud800b\udfffc", "s1"))
    assert stored().text == "abc"


@pytest.mark.parametrize("sender", ["9" * 300, "MPESA"])
def test_a_sender_that_is_no_phone_number_is_stored_unroutable(client, gw, sender):
    assert_accepted(post_inbound(client, gw, sender, "Your balance is 10", "u1"))
    m = stored()
    assert m.to == "" and m.error == errors.INVALID_SENDER and m.error_detail
    assert m.text == "Your balance is 10" and m.provider_id == "u1"
    assert m.next_attempt_on is None  # never processed: nobody to route it to
    assert sender in raw_body(m).decode()  # what the provider sent is kept
    assert router.process_due() == 0
    assert_accepted(post_inbound(client, gw, sender, "Your balance is 10", "u1"))  # a retry: still one row
    assert Message.objects.filter(direction=Message.IN).count() == 1


def test_a_long_provider_id_is_shortened_deterministically(client, gw):
    long_id = "X" * 200 + "A" * 100
    assert_accepted(post_inbound(client, gw, "+" + KE, "one", long_id))
    m = stored()
    assert len(m.provider_id) == MAX_PROVIDER_ID and m.provider_id == provider_key(long_id)
    assert_accepted(post_inbound(client, gw, "+" + KE, "one", long_id))  # the provider retrying
    assert Message.objects.filter(direction=Message.IN).count() == 1
    assert_accepted(post_inbound(client, gw, "+" + KE, "two", "X" * 200 + "B" * 100))  # same head, other id
    assert Message.objects.filter(direction=Message.IN).count() == 2


@pytest.mark.parametrize("kind", STATUS_KINDS)
def test_a_status_report_with_a_long_id_finds_its_message(client, kind):
    gw = make_gateway(kind)
    long_id = "SM" + "7" * 298
    out = Message.objects.create(
        direction=Message.OUT,
        to=KE,
        gateway=gw,
        gateway_name=gw.name,
        provider_id=provider_key(long_id),  # as the transport stores a send answer's id
        status=Message.SENT,
        created_on=timezone.now(),
    )
    assert_accepted(post_status(client, gw, long_id))
    out.refresh_from_db()
    assert out.status == Message.DELIVERED
    assert_accepted(post_status(client, gw, "SM\x00" + "1" * 10))  # a NUL in the id: no match, no 500


# --- the URL -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["inbound", "status"])
@pytest.mark.parametrize(
    "variant", ["non-ascii key", "nul key", "overlong key", "wrong key", "non-ascii name", "nul name", "long name"]
)
def test_a_bad_name_or_key_in_the_url_is_refused(client, endpoint, variant):
    gw = make_gateway("http")
    name, key = gw.name, gw.inbound_key
    name, key = {
        "non-ascii key": (name, "ключ" + key[4:]),
        "nul key": (name, key[:10] + "%00" + key[10:]),
        "overlong key": (name, key * 200),
        "wrong key": (name, key[:-1] + ("A" if key[-1] != "A" else "B")),
        "non-ascii name": ("шлюз", key),
        "nul name": (name + "%00", key),
        "long name": ("n" * 5000, key),
    }[variant]
    r = post(client, gw, {"from": KE, "text": "hi"}, path=f"/api/v1/gateways/{name}/{key}/{endpoint}")
    assert_refused(r, errors.FORBIDDEN, 403)


# --- bodies ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["inbound", "status"])
def test_twilio_form_data_sent_as_json(client, endpoint):
    gw = make_gateway("twilio")
    fields = twilio_inbound(KE, "hello") if endpoint == "inbound" else twilio_status("SM1", "delivered")
    body = json.dumps(fields)
    # validly signed as a JSON webhook (bodySHA256): authenticated, but not the form Twilio's SMS webhooks post
    error = assert_refused(post(client, gw, body=body, content_type="application/json", endpoint=endpoint))
    assert "form data" in error["message"]
    # signed as if it were the form: the signature does not match the body
    path = inbound_url(gw) if endpoint == "inbound" else status_url(gw)
    signature = twilio_signature(f"http://testserver{path}", fields, TOKEN)
    r = client.post(path, data=body, content_type="application/json", headers={"X-Twilio-Signature": signature})
    assert_refused(r, errors.FORBIDDEN, 403)


BAD_JSON: list[tuple[str, bytes]] = [
    ("invalid JSON", b'{"phone_number": "+254712345678", '),
    ("a JSON list", b'[{"phone_number": "+254712345678"}]'),
    ("a JSON string", b'"+254712345678"'),
    ("a JSON number", b"254712345678"),
    ("not UTF-8", b'{"phone_number": "+254712345678", "text": "\xff\xfe"}'),
]


@pytest.mark.parametrize("kind", ["sandbox", "http-json"])
@pytest.mark.parametrize(("what", "body"), BAD_JSON, ids=[w for w, _ in BAD_JSON])
def test_malformed_json_is_refused_with_the_reason(client, kind, what, body):
    error = assert_refused(post(client, make_gateway(kind), body=body, content_type="application/json"))
    assert ("UTF-8" if what == "not UTF-8" else "JSON") in error["message"]


def test_the_sandbox_refuses_form_data_and_a_missing_sender(client):
    gw = make_gateway("sandbox")
    assert_refused(post(client, gw, {"phone_number": KE, "text": "hi"}))
    error = assert_refused(post(client, gw, body=json.dumps({"text": "hi"}), content_type="application/json"))
    assert "phone_number" in error["message"]


@pytest.mark.parametrize("endpoint", ["inbound", "status"])
@pytest.mark.parametrize("kind", FORM_KINDS)
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"from": "+254712345678", "text": "hi"}'),
        ("application/json", b"{broken"),
        ("text/plain", b"from=%2B254712345678&text=hi"),
        ("application/xml", b"<sms><from>+254712345678</from></sms>"),
    ],
)
def test_form_providers_refuse_other_bodies(client, endpoint, kind, content_type, body):
    error = assert_refused(post(client, make_gateway(kind), body=body, content_type=content_type, endpoint=endpoint))
    assert "form data" in error["message"]


@pytest.mark.parametrize("kind", ["http", *FORM_KINDS])
def test_a_broken_multipart_body_is_refused(client, kind):
    # multipart without a boundary: Django cannot parse it (a MultiPartParserError inside the view)
    gw = make_gateway(kind)
    if kind == "telerivet":
        gw.config = {**gw.config, "webhook_secret": "s3"}  # the signature check itself reads the form
        gw.save()
    r = post(client, gw, body=b"--x\r\nContent-Disposition: form-data\r\n\r\n", content_type="multipart/form-data")
    assert r.status_code < 500, r.content
    assert_refused(r, r.json()["error"]["code"], r.status_code)


def test_too_many_form_fields_is_refused(client):
    gw = make_gateway("http")
    fields = {"from": KE, "text": "hi", **{f"f{i}": "x" for i in range(2000)}}
    assert_refused(post(client, gw, fields))


@pytest.mark.parametrize("kind", ["http", "telerivet", "africastalking"])
def test_a_form_that_is_not_utf8_is_stored_with_its_raw_bytes(client, kind):
    gw = make_gateway(kind)
    sender_field, text_field = {"http": ("from", "text"), "telerivet": ("from_number", "content")}.get(
        kind, ("from", "text")
    )
    body = f"{sender_field}=%2B{KE}&{text_field}=caf".encode() + b"\xe9" + b"&id=latin1"
    if kind == "telerivet":
        body += b"&event=incoming_message"
    assert_accepted(post(client, gw, body=body))
    m = stored()
    assert m.to == KE and m.text.startswith("caf") and "\x00" not in m.text
    assert raw_body(m) == body  # kept byte for byte (as base64: it is not UTF-8)


# --- dates -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["1e18", "-1e18", "1e11", "nan", "inf", "0", "soon", ""])
def test_telerivet_times_out_of_range_are_ignored(client, value):
    gw = make_gateway("telerivet")
    fields = {**telerivet_inbound(KE, "hi", id="t1"), "time_created": value}
    assert_accepted(post(client, gw, fields))
    assert near_now(stored().created_on)


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-31 12:15:36+16:42",  # no time zone has this offset (PostgreSQL refuses some such)
        "2024-05-31T12:15:36-23:59",
        "9999-12-31T23:59:59-12:00",  # beyond year 9999 in UTC
        "0001-01-01T00:00:00+14:00",
        "2024-13-45 99:99:99",
        "yesterday",
    ],
)
def test_africastalking_dates_out_of_range_or_with_odd_offsets_are_ignored(client, value):
    gw = make_gateway("africastalking")
    assert_accepted(post(client, gw, africastalking_inbound(KE, "hi", id="a1", date=value)))
    assert near_now(stored().created_on)


def test_a_plausible_provider_time_is_kept_in_utc(client):
    at = timezone.now().astimezone(UTC).replace(microsecond=0) - timedelta(hours=2)
    gw = make_gateway("africastalking")
    nairobi = (at + timedelta(hours=3)).replace(tzinfo=None).isoformat() + "+03:00"  # the same instant
    assert_accepted(post(client, gw, africastalking_inbound(KE, "hi", id="a1", date=nairobi)))
    assert stored().created_on == at
    tr = make_gateway("telerivet")
    assert_accepted(post(client, tr, telerivet_inbound(KE, "hi", id="t1", time_created=int(at.timestamp()))))
    assert Message.objects.get(gateway=tr).created_on == at
