"""Inbound webhooks for every gateway type, over real HTTP: each provider's own request format is POSTed
to a live casemsg server at the gateway's secret URL, and the keyword reply goes back out through the
same gateway to a fake provider on 127.0.0.1.

These tests commit (live server), so the queue's immediate mode processes each webhook right after its
commit, as a worker would; the tests still run the worker's functions afterwards, which must find
nothing left to do."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from casemsg.consent import texts
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, inbound_url, map_prefix
from casemsg.gateways.twilio import EMPTY_TWIML
from casemsg.inbound import router
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from tests.inbound.conftest import KE, KE2, KE3
from tests.servers.webhooks import (
    africastalking_inbound,
    post_form,
    telerivet_inbound,
    twilio_inbound,
    twilio_signature,
)

pytestmark = pytest.mark.django_db(transaction=True)

REPLY = "Karibu! Clinic hours are 8 to 5."
TYPES = ["sandbox", "http", "http-json", "twilio", "telerivet", "africastalking"]


def post_json(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Provider:
    """One gateway type: how to configure it, how the provider calls our webhook, what it expects back."""

    kind: str
    gateway: Gateway
    fake: Any  # the fake provider the replies go to (None for the sandbox)
    base: str  # the live server

    @property
    def url(self) -> str:
        return self.base + inbound_url(self.gateway)

    def post(
        self, number: str, text: str, msg_id: str | None = None, url: str | None = None, **tweak: Any
    ) -> tuple[int, bytes]:
        """POST an inbound SMS the way this provider does. Returns (status, body)."""
        url = url or self.url
        msg_id = msg_id or uuid.uuid4().hex[:20]
        if self.kind == "sandbox":
            return post_json(url, {"phone_number": "+" + number, "text": text, "id": msg_id})
        if self.kind == "http":
            # an aggregator posting a form with its own field names
            fields = {"msisdn": "+" + number, "message": text, "msgid": msg_id, "shortcode": "20880"}
            return post_form(url, fields)
        if self.kind == "http-json":
            body = {"event": "mo", "sms": {"sender": number, "body": text, "id": msg_id}}
            return post_json(url, body, {"X-Webhook-Secret": tweak.get("secret", "s3cret")})
        if self.kind == "twilio":
            fields = twilio_inbound(number, text, sid="SM" + msg_id)
            token = tweak.get("token", self.gateway.config["auth_token"])
            sig = tweak.get("signature") or twilio_signature(tweak.get("signed_url", url), fields, token)
            if tweak.get("body_override"):
                fields = {**fields, **tweak["body_override"]}
            return post_form(url, fields, {"X-Twilio-Signature": sig} if sig != "-" else {})
        if self.kind == "telerivet":
            return post_form(url, telerivet_inbound(number, text, id=msg_id, secret=tweak.get("secret", "tsecret")))
        if self.kind == "africastalking":
            return post_form(url, africastalking_inbound(number, text, id=msg_id))
        raise AssertionError(self.kind)

    def replies(self) -> list[tuple[str, str]]:
        """(to, text) of every SMS the provider accepted from us."""
        if self.fake is None:
            return [
                (m.to, m.text)
                for m in Message.objects.filter(direction="out", gateway=self.gateway, status="sent").order_by("pk")
            ]
        return [(r.to, r.text) for r in self.fake.messages()]

    def expected_body(self) -> bytes:
        return EMPTY_TWIML.encode() if self.kind == "twilio" else b""


@pytest.fixture(params=TYPES)
def provider(request, project, live_server, fake_gateway) -> Provider:
    kind = request.param
    fake = None
    if kind == "sandbox":
        config: dict[str, Any] = {}
    elif kind == "http":
        fake = fake_gateway("http")
        config = fake.gateway_config(inbound={"from": "msisdn", "text": "message", "id": "msgid", "to": "shortcode"})
    elif kind == "http-json":
        fake = fake_gateway("http")
        config = fake.gateway_config(
            inbound={"from": "sms.sender", "text": "sms.body", "id": "sms.id"},
            inbound_secret={"header": "X-Webhook-Secret", "value": "s3cret"},
        )
    else:
        fake = fake_gateway(kind)
        config = fake.gateway_config(**({"webhook_secret": "tsecret"} if kind == "telerivet" else {}))
    gw = add_gateway(f"gw-{kind}", "sandbox" if kind == "sandbox" else kind.split("-")[0], config, project=project)
    map_prefix("*", gw.name, project)
    return Provider(kind, gw, fake, live_server.url)


@pytest.fixture
def clinic(api, provider):
    r = api.post("keywords", {"keyword": "clinic", "reply": {"en": REPLY}})
    assert r.status_code == 201, r.content
    return provider


def worker_finds_nothing_left() -> None:
    assert router.process_due() == 0
    pipeline.deliver_due()


def inbound(**filters) -> list[Message]:
    return list(Message.objects.filter(direction="in", **filters).order_by("pk"))


def test_inbound_keyword_reply_through_each_gateway(api, clinic):
    case = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")

    status, body = clinic.post(KE, "Clinic hours?", msg_id="abc123")

    assert status == 200, body
    assert body == clinic.expected_body()
    worker_finds_nothing_left()
    (msg,) = inbound()
    assert (msg.to, msg.text, msg.gateway_id, msg.project.slug) == (KE, "Clinic hours?", clinic.gateway.pk, "alpha")
    assert msg.provider_id.endswith("abc123") and msg.case.case_id == case["case_id"]
    assert clinic.replies() == [(KE, REPLY)]
    # the message log shows both, with their contact
    items = api.get("messages", direction="in").json()["items"]
    assert [(m["text"], m["recipient"], m["gateway"], m["status"]) for m in items] == [
        ("Clinic hours?", {"case_id": case["case_id"]}, clinic.gateway.name, "received")
    ]
    (out,) = api.get("messages", direction="out").json()["items"]
    assert (out["text"], out["recipient"], out["status"]) == (REPLY, {"case_id": case["case_id"]}, "sent")


def test_stop_through_each_gateway(api, clinic):
    case = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    assert clinic.post(KE, "stop")[0] == 200
    worker_finds_nothing_left()
    assert [t for _to, t in clinic.replies()] == [
        "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
    ]
    assert api.contact(case["case_id"])["sms"]["error"]["code"] == "PHONE_OPTED_OUT"


def test_duplicate_webhook_is_one_message(api, clinic):
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    for _ in range(3):  # the provider retries, e.g. after a timeout on its side
        status, _body = clinic.post(KE, "clinic", msg_id="dup-1")
        assert status == 200
    clinic.post(KE, "clinic", msg_id="dup-2")  # a genuinely new message
    worker_finds_nothing_left()
    assert [m.provider_id[-5:] for m in inbound()] == ["dup-1", "dup-2"]
    assert clinic.replies() == [(KE, REPLY), (KE, REPLY)]


def test_unknown_key_is_refused_and_nothing_is_stored(api, clinic):
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    gw = clinic.gateway
    for url in (
        f"{clinic.base}/api/v1/gateways/{gw.name}/not-the-key/inbound",
        f"{clinic.base}/api/v1/gateways/{gw.name}/{gw.inbound_key[:-1]}/inbound",
        f"{clinic.base}/api/v1/gateways/no-such-gateway/{gw.inbound_key}/inbound",
    ):
        status, body = clinic.post(KE, "clinic", url=url, signed_url=url)
        assert status == 403, body
        assert json.loads(body)["error"]["code"] == "FORBIDDEN"
    worker_finds_nothing_left()
    assert Message.objects.count() == 0
    assert clinic.replies() == []


def test_unknown_sender_is_logged_and_gets_the_projects_reply(api, project, clinic):
    clinic.post(KE3, "hello?")
    worker_finds_nothing_left()
    (msg,) = inbound()
    assert msg.case_id is None and msg.worker_id is None and msg.project_id == project.pk
    assert "No contact holds this number" in msg.error_detail
    assert clinic.replies() == []  # no reply unless the project sets one
    (item,) = api.get("messages", direction="in").json()["items"]
    assert (item["to"], item["recipient"], item["text"]) == (KE3, {}, "hello?")

    texts.update(project, {"unknown_sender_reply": {"en": "This number is not registered with the Alpha program."}})
    clinic.post(KE3, "hello again")
    worker_finds_nothing_left()
    assert clinic.replies() == [(KE3, "This number is not registered with the Alpha program.")]
    # a known sender whose message matches nothing gets no such reply
    api.case({"contact_phone_number": KE2, "contact_phone_number_is_verified": "1"})
    clinic.post(KE2, "hello")
    worker_finds_nothing_left()
    assert len(clinic.replies()) == 1


def test_one_way_registrant_is_not_a_two_way_contact(api, clinic):
    """A case holding the number only one-way (not verified) does not receive replies."""
    api.case({"contact_phone_number": KE})
    clinic.post(KE, "clinic")
    worker_finds_nothing_left()
    (msg,) = inbound()
    assert msg.case_id is None
    assert clinic.replies() == [(KE, REPLY)]  # the keyword still answers the number


# --- signatures and secrets ------------------------------------------------------------------------
@pytest.fixture
def twilio(api, project, live_server, fake_twilio) -> Provider:
    gw = add_gateway("tw", "twilio", fake_twilio.gateway_config(), project=project)
    map_prefix("*", gw.name, project)
    api.post("keywords", {"keyword": "clinic", "reply": {"en": REPLY}})
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    return Provider("twilio", gw, fake_twilio, live_server.url)


@pytest.mark.parametrize(
    "tweak",
    [
        {"token": "not-the-auth-token"},  # forged with a guessed token
        {"signature": "-"},  # no signature at all
        {"signature": "bm90IGEgc2lnbmF0dXJl"},  # garbage
        {"body_override": {"Body": "STOP"}},  # signed, then the body was changed
        {"body_override": {"From": "+" + KE2}},
        {"signed_url": "https://evil.example/api/v1/gateways/tw/x/inbound"},  # signed for another URL
    ],
)
def test_forged_twilio_signature_is_refused_and_nothing_is_stored(twilio, tweak):
    status, body = twilio.post(KE, "clinic", **tweak)
    assert status == 403, body
    assert json.loads(body)["error"]["code"] == "FORBIDDEN"
    worker_finds_nothing_left()
    assert Message.objects.count() == 0
    assert twilio.replies() == []


def test_valid_twilio_signature_with_public_url_base(twilio, project):
    """Behind a proxy Twilio signs the public URL; the gateway's public_url_base rebuilds it."""
    twilio.gateway.config = {**twilio.gateway.config, "public_url_base": "https://sms.example.org"}
    twilio.gateway.save()
    public = "https://sms.example.org" + inbound_url(twilio.gateway)
    assert twilio.post(KE, "clinic", signed_url=twilio.url)[0] == 403  # the internal URL is not what was signed
    assert twilio.post(KE, "clinic", signed_url=public)[0] == 200
    worker_finds_nothing_left()
    assert len(inbound()) == 1 and twilio.replies() == [(KE, REPLY)]


def test_telerivet_wrong_secret_is_refused(api, project, live_server, fake_telerivet):
    gw = add_gateway("tr", "telerivet", fake_telerivet.gateway_config(webhook_secret="tsecret"), project=project)
    p = Provider("telerivet", gw, fake_telerivet, live_server.url)
    assert p.post(KE, "hello", secret="wrong")[0] == 403
    assert p.post(KE, "hello", secret="")[0] == 403
    assert Message.objects.count() == 0
    assert p.post(KE, "hello")[0] == 200
    assert Message.objects.filter(direction="in").count() == 1


def test_http_shared_secret_header_is_checked(api, project, live_server, fake_http):
    config = fake_http.gateway_config(
        inbound={"from": "sms.sender", "text": "sms.body", "id": "sms.id"},
        inbound_secret={"header": "X-Webhook-Secret", "value": "s3cret"},
    )
    gw = add_gateway("hj", "http", config, project=project)
    p = Provider("http-json", gw, fake_http, live_server.url)
    assert p.post(KE, "hello", secret="nope")[0] == 403
    assert Message.objects.count() == 0
    assert p.post(KE, "hello")[0] == 200
    assert Message.objects.filter(direction="in").count() == 1


def test_telerivet_non_sms_events_store_nothing(api, project, live_server, fake_telerivet):
    gw = add_gateway("tr", "telerivet", fake_telerivet.gateway_config(), project=project)
    fields = telerivet_inbound(KE, "hello", id="x1")
    fields["event"] = "contact_update"
    status, _ = post_form(live_server.url + inbound_url(gw), fields)
    assert status == 200
    assert Message.objects.count() == 0


def test_installation_wide_gateway_routes_to_the_owners_project(
    api, other_api, live_server, fake_africastalking, other_project
):
    """A shared gateway (no project) delivers each message to the project of the number's owner."""
    gw = add_gateway("at", "africastalking", fake_africastalking.gateway_config())
    map_prefix("*", "at")
    other_api.post("keywords", {"keyword": "clinic", "reply": {"en": "beta clinic"}})
    case = other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    p = Provider("africastalking", gw, fake_africastalking, live_server.url)
    assert p.post(KE, "clinic")[0] == 200
    worker_finds_nothing_left()
    (msg,) = inbound()
    assert (msg.project_id, msg.case.case_id) == (other_project.pk, case["case_id"])
    assert p.replies() == [(KE, "beta clinic")]
    assert other_api.get("messages", direction="in").json()["count"] == 1
    assert api.get("messages", direction="in").json()["count"] == 0
