"""The messages API (send, list, get, sandbox outbox), the status-callback webhook and the `casemsg send`
/ `casemsg messages` commands."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from casemsg.contacts.models import OptOut
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix, status_url
from casemsg.messaging.models import Message
from tests.conftest import sandbox_gateway
from tests.messaging.conftest import KE, KE2, TZ, deliver, msg, send
from tests.servers.webhooks import FORM, twilio_signature, twilio_status

pytestmark = pytest.mark.django_db


# --- POST ----------------------------------------------------------------------------------------
def test_post_returns_202_with_the_message(api, sandbox):
    case = api.case({"contact_phone_number": KE})
    before = timezone.now()
    r = api.post("messages", {"recipient": {"case_id": case["case_id"]}, "text": "Hello {case.name}"})
    assert r.status_code == 202, r.content
    m = r.json()
    for key in ("id", "status", "error", "channel", "to", "gateway", "segments", "created_on"):
        assert key in m, key
    assert (m["status"], m["error"], m["channel"], m["to"]) == ("queued", None, "sms", KE)
    assert m["recipient"] == {"case_id": case["case_id"]} and m["direction"] == "out"
    assert before <= datetime.fromisoformat(m["created_on"]) <= timezone.now()
    assert Message.objects.get(pk=m["id"]).status == "queued"
    deliver()
    got = api.get(f"messages/{m['id']}").json()
    assert (got["status"], got["gateway"], got["segments"], got["text"]) == ("sent", "sandbox", 1, "Hello Asha")
    assert got["sent_on"] is not None and got["attempts"] == 1 and got["provider_id"]


def test_post_a_failure_is_202_with_the_error(api, sandbox):
    case = api.case({})
    r = api.post("messages", {"recipient": {"case_id": case["case_id"]}, "text": "Hi"})
    assert r.status_code == 202
    err = r.json()["error"]
    assert r.json()["status"] == "failed" and err["code"] == "NO_PHONE_NUMBER"
    assert err["title"] and err["description"] and err["fix"]


def test_post_to_a_mobile_worker_and_email(api, sandbox):
    r = api.post("mobile-workers", {"username": "amina", "phone_numbers": [KE], "email": "amina@example.org"})
    wid = r.json()["id"]
    sms = api.post("messages", {"recipient": {"mobile_worker_id": wid}, "text": "Hi"}).json()
    email = api.post(
        "messages", {"recipient": {"mobile_worker_id": wid}, "channel": "email", "subject": "S", "text": "Hi"}
    ).json()
    assert (sms["to"], sms["recipient"]) == (KE, {"mobile_worker_id": wid})
    assert (email["channel"], email["to"], email["status"]) == ("email", "amina@example.org", "queued")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"recipient": {"case_id": "nope"}, "text": "Hi"}, 404, "CASE_NOT_FOUND"),
        ({"recipient": {"mobile_worker_id": 999999}, "text": "Hi"}, 404, "MOBILE_WORKER_NOT_FOUND"),
        ({"recipient": {}, "text": "Hi"}, 422, "VALIDATION_ERROR"),
        ({"recipient": {"case_id": "c1", "mobile_worker_id": 1}, "text": "Hi"}, 422, "VALIDATION_ERROR"),
        ({"recipient": {"case_id": "c1"}, "text": "Hi", "channel": "fax"}, 422, "VALIDATION_ERROR"),
        ({"recipient": {"case_id": "c1"}, "translations": {"en": 5}}, 422, "VALIDATION_ERROR"),
        ({"text": "Hi"}, 422, "VALIDATION_ERROR"),
    ],
)
def test_post_refuses_bad_requests(api, body, status, code):
    api.case({"contact_phone_number": KE}, case_id="c1")
    r = api.post("messages", body)
    assert r.status_code == status, r.content
    assert r.json()["error"]["code"] == code
    assert not Message.objects.exists()


def test_post_needs_a_key(api):
    r = api.post("messages", {"recipient": {"case_id": "x"}, "text": "Hi"}, key="")
    assert r.status_code == 401
    r = api.post("messages", {"recipient": {"case_id": "x"}, "text": "Hi"}, key="cm_wrong")
    assert r.status_code == 401


def test_a_case_of_another_project_is_not_found(api, other_api, sandbox):
    theirs = other_api.case({"contact_phone_number": KE})
    r = api.post("messages", {"recipient": {"case_id": theirs["case_id"]}, "text": "Hi"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "CASE_NOT_FOUND"


# --- GET -----------------------------------------------------------------------------------------
@pytest.fixture
def log(api, sandbox):
    """A small message log: sent, failed, email, inbound, one old message."""
    a = api.case({"contact_phone_number": KE}, case_id="a")
    b = api.case({}, case_id="b")
    c = api.case({"commcare_email_address": "c@example.org"}, case_id="c")
    out = {
        "old": send(api, a["case_id"], text="Old one"),
        "sent": send(api, a["case_id"], text="Sent one"),
        "failed": send(api, b["case_id"], text="Fails"),
        "email": send(api, c["case_id"], channel="email", subject="S", text="Mail"),
    }
    deliver()
    r = api.post("sandbox/incoming", {"phone_number": KE, "text": "hello there"})
    assert r.status_code == 202, r.content
    out["in"] = {"id": r.json()["ids"][0]}
    Message.objects.filter(pk=out["old"]["id"]).update(created_on=timezone.now() - timedelta(days=3))
    return out


def _ids(r) -> list[int]:
    assert r.status_code == 200, r.content
    return [m["id"] for m in r.json()["items"]]


def test_list_filters(api, log):
    everything = api.get("messages").json()
    assert everything["count"] == len(everything["items"]) >= 5
    assert log["old"]["id"] == everything["items"][-1]["id"]  # newest first
    assert set(_ids(api.get("messages", case_id="a"))) >= {log["old"]["id"], log["sent"]["id"]}
    assert log["failed"]["id"] not in _ids(api.get("messages", case_id="a"))
    assert _ids(api.get("messages", case_id="b")) == [log["failed"]["id"]]
    assert _ids(api.get("messages", status="failed")) == [log["failed"]["id"]]
    assert _ids(api.get("messages", error="NO_PHONE_NUMBER")) == [log["failed"]["id"]]
    assert _ids(api.get("messages", error="no_phone_number")) == [log["failed"]["id"]]
    assert _ids(api.get("messages", error="GATEWAY_ERROR")) == []
    assert _ids(api.get("messages", channel="email")) == [log["email"]["id"]]
    inbound = _ids(api.get("messages", direction="in"))
    assert log["in"]["id"] in inbound
    assert log["in"]["id"] not in _ids(api.get("messages", direction="out"))
    assert {m["direction"] for m in api.get("messages", direction="in").json()["items"]} == {"in"}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert log["old"]["id"] not in _ids(api.get("messages", since=since))
    assert _ids(api.get("messages", until=since)) == [log["old"]["id"]]
    combined = api.get("messages", case_id="a", status="sent", channel="sms", direction="out", since=since)
    assert _ids(combined) == [log["sent"]["id"]]


def test_list_pagination(api, log):
    everything = _ids(api.get("messages"))
    page1 = api.get("messages", limit=2, offset=0).json()
    page2 = api.get("messages", limit=2, offset=2).json()
    assert page1["count"] == page2["count"] == len(everything)
    assert [m["id"] for m in page1["items"] + page2["items"]] == everything[:4]
    assert api.get("messages", limit=2, offset=len(everything)).json()["items"] == []
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"status": "lost"}):
        r = api.get("messages", **params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", params


def test_get_by_id(api, other_api, log):
    m = api.get(f"messages/{log['failed']['id']}")
    assert m.status_code == 200
    assert (m.json()["error"]["code"], m.json()["recipient"]) == ("NO_PHONE_NUMBER", {"case_id": "b"})
    r = api.get("messages/999999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "MESSAGE_NOT_FOUND"
    # another project's key sees nothing of this project's messages
    assert other_api.get(f"messages/{log['sent']['id']}").status_code == 404
    assert other_api.get("messages").json()["count"] == 0


def test_project_isolation(api, other_api, log):
    for path in ("messages", f"messages/{log['sent']['id']}", "sandbox/outbox"):
        r = other_api.get(f"/api/v1/projects/{api.slug}/{path}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", path
    case_id = "a"
    r = other_api.post(f"/api/v1/projects/{api.slug}/messages", {"recipient": {"case_id": case_id}, "text": "x"})
    assert r.status_code == 403
    assert Message.objects.filter(project__slug=other_api.slug).count() == 0


def test_sandbox_outbox(api, other_api, fake_http, log):
    # a message sent through another gateway type, a failed one and another project's are not listed
    add_gateway("http-ke2", "http", fake_http.gateway_config())
    map_prefix("25472", "http-ke2")
    via_http = send(api, api.case({"contact_phone_number": KE2})["case_id"], text="Via HTTP")
    theirs = send(other_api, other_api.case({"contact_phone_number": TZ})["case_id"], text="Theirs")
    queued = send(api, "a", text="Not yet")
    Message.objects.filter(pk=queued["id"]).update(next_attempt_on=timezone.now() + timedelta(hours=1))
    deliver()
    assert msg(via_http).status == "sent" and msg(theirs).status == "sent"
    r = api.get("sandbox/outbox")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [m["id"] for m in items] == [log["sent"]["id"], log["old"]["id"]]
    assert {(m["to"], m["gateway"], m["status"]) for m in items} == {(KE, "sandbox", "sent")}
    assert [m["text"] for m in items] == ["Sent one", "Old one"]
    assert [m["id"] for m in other_api.get("sandbox/outbox").json()["items"]] == [theirs["id"]]


# --- status callbacks ----------------------------------------------------------------------------
@pytest.fixture
def twilio_sent(api, fake_twilio, twilio_gateway):
    """A message sent through the fake Twilio: it has Twilio's message sid."""
    m = send(api, api.case({"contact_phone_number": KE})["case_id"])
    deliver()
    row = msg(m)
    assert row.status == "sent" and row.provider_id.startswith("SM")
    return row


def _form(fields: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(fields)


def test_status_callback_with_a_wrong_key_is_refused(twilio_sent, twilio_gateway):
    fields = twilio_status(twilio_sent.provider_id, "delivered")
    r = Client().post(f"/api/v1/gateways/{twilio_gateway.name}/wrong-key/status", _form(fields), content_type=FORM)
    assert r.status_code == 403
    r = Client().post(
        f"/api/v1/gateways/no-such-gateway/{twilio_gateway.inbound_key}/status", _form(fields), content_type=FORM
    )
    assert r.status_code == 403
    # the right key without a valid Twilio signature is refused too
    r = Client().post(status_url(twilio_gateway), _form(fields), content_type=FORM, HTTP_X_TWILIO_SIGNATURE="forged")
    assert r.status_code == 403
    assert msg(twilio_sent.pk).status == "sent"


def _signed(gw: Gateway, fields: dict):
    path = status_url(gw)
    sig = twilio_signature("http://testserver" + path, fields, gw.config["auth_token"])
    return Client().post(path, _form(fields), content_type=FORM, HTTP_X_TWILIO_SIGNATURE=sig)


def test_status_callback_marks_delivered(api, twilio_sent, twilio_gateway):
    r = _signed(twilio_gateway, twilio_status(twilio_sent.provider_id, "delivered"))
    assert r.status_code == 200, r.content
    row = msg(twilio_sent.pk)
    assert row.status == "delivered" and row.delivered_on is not None
    assert api.get(f"messages/{row.pk}").json()["status"] == "delivered"
    # a late "sent" report does not take it back
    assert _signed(twilio_gateway, twilio_status(twilio_sent.provider_id, "sent")).status_code == 200
    assert msg(twilio_sent.pk).status == "delivered"


def test_status_callback_for_an_unknown_sid_changes_nothing(twilio_sent, twilio_gateway):
    assert _signed(twilio_gateway, twilio_status("SM" + "f" * 32, "delivered")).status_code == 200
    assert msg(twilio_sent.pk).status == "sent"


def test_status_callback_failure_maps_the_error(api, twilio_sent, twilio_gateway):
    r = _signed(twilio_gateway, twilio_status(twilio_sent.provider_id, "undelivered", error_code=30006))
    assert r.status_code == 200
    row = msg(twilio_sent.pk)
    assert (row.status, row.error) == ("failed", "INVALID_DESTINATION_NUMBER")
    assert api.get(f"messages/{row.pk}").json()["error"]["code"] == "INVALID_DESTINATION_NUMBER"
    assert not OptOut.objects.exists()


def test_status_callback_21610_opts_the_number_out(api, twilio_sent, twilio_gateway):
    r = _signed(twilio_gateway, twilio_status(twilio_sent.provider_id, "failed", error_code=21610))
    assert r.status_code == 200
    assert (msg(twilio_sent.pk).status, msg(twilio_sent.pk).error) == ("failed", "PHONE_OPTED_OUT")
    assert OptOut.objects.filter(phone_number=KE, source="gateway").exists()
    again = send(api, api.case({"contact_phone_number": KE})["case_id"])
    assert (again["status"], again["error"]["code"]) == ("failed", "PHONE_OPTED_OUT")


def test_status_callback_only_touches_its_own_gateways_messages(api, fake_twilio, twilio_sent, twilio_gateway):
    other = add_gateway("twilio-2", "twilio", fake_twilio.gateway_config())
    r = _signed(other, twilio_status(twilio_sent.provider_id, "delivered"))
    assert r.status_code == 200
    assert msg(twilio_sent.pk).status == "sent"


# --- CLI -----------------------------------------------------------------------------------------
def test_cli_send_and_messages(api, capsys, sandbox):
    case = api.case({"contact_phone_number": KE}, case_id="cli-case")
    call_command("send", "--project", api.slug, "--case", "cli-case", "--text", "From the CLI {case.name}")
    out = capsys.readouterr().out
    m = Message.objects.get(case__case_id="cli-case")
    assert out.strip() == f"message {m.pk}: queued"
    assert m.event.source == "api"
    deliver()
    assert (msg(m.pk).status, msg(m.pk).text) == ("sent", "From the CLI Asha")

    call_command(
        "send",
        "--project",
        api.slug,
        "--case",
        "cli-case",
        "--translations",
        '{"sw": "Habari"}',
        "--channel",
        "email",
        "--subject",
        "S",
    )
    out = capsys.readouterr().out
    assert ": failed — NO_EMAIL_ADDRESS" in out

    call_command("messages", "--project", api.slug)
    out = capsys.readouterr().out
    assert "From the CLI Asha" in out and "sent" in out and "sandbox" in out
    assert "NO_EMAIL_ADDRESS: No email address" in out
    call_command("messages", "--project", api.slug, "--status", "sent")
    out = capsys.readouterr().out
    assert "From the CLI Asha" in out and "NO_EMAIL_ADDRESS" not in out
    call_command("messages", "--project", api.slug, "--error", "no_email_address")
    out = capsys.readouterr().out
    assert "NO_EMAIL_ADDRESS" in out and "From the CLI" not in out
    assert case["case_id"] == "cli-case"


def test_cli_send_refuses_bad_input(api, sandbox):
    api.case({"contact_phone_number": KE}, case_id="cli-case")
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("send", "--project", "nope", "--case", "cli-case", "--text", "Hi")
    with pytest.raises(CommandError, match="CASE_NOT_FOUND"):
        call_command("send", "--project", api.slug, "--case", "missing", "--text", "Hi")
    with pytest.raises(CommandError, match="CANNOT_RENDER_MESSAGE"):
        call_command("send", "--project", api.slug, "--case", "cli-case", "--text", "Hi {case.name")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("send", "--project", api.slug, "--case", "cli-case", "--translations", "{")
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("messages", "--project", "nope")
    assert not Message.objects.exists()


def test_gateway_project_routes_api_is_project_scoped(api, other_api):
    r = api.post("gateways", {"name": "alpha-gw", "type": "sandbox", "rate_limit": 5, "countries": ["KE"]})
    assert r.status_code == 201
    body = r.json()
    assert body["status_url"].endswith("/status") and body["project"] == api.slug
    gw = Gateway.objects.get(name="alpha-gw")
    assert body["status_url"] == status_url(gw)
    # another project sees neither the gateway nor its secret URLs, and cannot route to it
    assert "alpha-gw" not in [g["name"] for g in other_api.get("gateways").json()["items"]]
    r = other_api.post("routes", {"prefix": "254", "gateway": "alpha-gw"})
    assert r.status_code == 404
    assert other_api.delete("gateways/alpha-gw").status_code == 404
    sandbox_gateway("shared", None)
    listed = {g["name"]: g for g in other_api.get("gateways").json()["items"]}
    assert listed["shared"]["status_url"] is None  # an installation gateway's key is not shown to projects


def test_events_list_why_messages_exist_and_their_outcome(api, other_api):
    ok = api.case({"contact_phone_number": "919812345678"})
    bad = api.case({"contact_phone_number": "1-206-617-1234"})
    api.post("messages", {"recipient": {"case_id": ok["case_id"]}, "text": "Hi"})
    api.post("messages", {"recipient": {"case_id": bad["case_id"]}, "text": "Hi"})
    r = api.get("events")
    assert r.status_code == 200, r.content
    events = r.json()["items"]
    assert [e["source"] for e in events] == ["api", "api"]
    assert events[0]["messages"] == {"failed": 1} and events[0]["error"] == "INVALID_PHONE_NUMBER"
    assert events[1]["messages"] == {"queued": 1} and events[1]["status"] == "ok"
    assert api.get("events", key=other_api.key).status_code == 403


LISTS = ["messages", "events", "sandbox/outbox", "consents", "cases", "keywords", "gateways", "routes"]
LISTS += ["mobile-workers", "keys"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "params", [{"offset": -1}, {"limit": 0}, {"limit": 501}, {"offset": 9975917990790338560}, {"limit": 10**30}]
)
def test_bad_paging_is_a_422_on_every_list(api, path, params):
    r = api.get(path, **params)
    assert r.status_code == 422, (path, params, r.content)
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("path", LISTS)
def test_every_list_has_the_same_shape(api, path):
    r = api.get(path, limit=1, offset=0)
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"count", "items"} and len(r.json()["items"]) <= 1


@pytest.mark.parametrize(
    "since", ["2026-01-01T00:00:00+16:42", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+05:00"]
)
def test_odd_times_in_filters_are_not_server_errors(api, since):
    r = api.get("messages", since=since)
    assert r.status_code in (200, 422), r.content
    if r.status_code == 422:
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "method,path",
    [("get", "/api/v1/nowhere"), ("get", "/api/v2/projects/alpha/cases"), ("put", "cases"), ("delete", "messages")],
)
def test_unknown_paths_and_wrong_methods_answer_json(api, method, path):
    r = getattr(api.client, method)(api.url(path), **api._h(None))
    assert r.status_code in (404, 405)
    assert r["Content-Type"].startswith("application/json")
    assert r.json()["error"]["code"] == ("NOT_FOUND" if r.status_code == 404 else "METHOD_NOT_ALLOWED")


def test_a_misspelt_field_is_named(api, sandbox):
    case = api.case({"contact_phone_number": KE})
    r = api.post("messages", {"recipient": {"case_id": case["case_id"]}, "txt": "Hello"})
    assert r.status_code == 422 and "txt" in r.json()["error"]["message"]


# JSON escapes, as a client sends them: NUL and an unpaired surrogate
@pytest.mark.parametrize("text", [r"nul \u0000 inside", r"lone \ud800 surrogate"])
def test_unstorable_text_is_refused(api, sandbox, text):
    case = api.case({"contact_phone_number": KE})
    body = '{"recipient": {"case_id": "' + case["case_id"] + '"}, "text": "' + text + '"}'
    r = api.client.post(api.url("messages"), body, content_type="application/json", **api._h(None))
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == "INVALID_VALUE"
