"""The fake providers themselves (fakes/whatsapp.py): they check what the real ones check — the Bearer
token or basic auth, the payload's shape, the window and the templates' approval — and answer with the
documented success and error bodies, so a test passing against them says something."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from fakes.whatsapp import VERSION, FakeWhatsApp
from tests.whatsapp.conftest import KE


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _meta(fake: FakeWhatsApp, body: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
    url = f"{fake.url}/{VERSION}/{fake.phone_number_id}/messages"
    headers = {"Authorization": f"Bearer {token or fake.token}", "Content-Type": "application/json"}
    return _post(url, json.dumps(body).encode(), headers)


TEXT = {"messaging_product": "whatsapp", "to": KE, "type": "text", "text": {"body": "hi"}}


def test_the_fake_cloud_api_checks_and_answers_as_meta_documents():
    with FakeWhatsApp("meta") as fake:
        fake.add_template("visit_reminder", "Hello {{1}}")
        status, body = _meta(fake, TEXT, token="wrong")
        assert (status, body["error"]["code"]) == (401, 190)
        status, body = _meta(fake, {**TEXT, "messaging_product": "sms"})
        assert (status, body["error"]["code"]) == (400, 100) and body["error"]["message"].startswith("(#100)")
        status, body = _meta(fake, TEXT)  # the person never wrote: outside the window
        assert (status, body["error"]["code"]) == (400, 131047)
        fake.user_wrote(KE)
        status, body = _meta(fake, TEXT)
        assert status == 200 and body["messages"][0]["id"].startswith("wamid.") and body["contacts"][0]["wa_id"] == KE
        unknown = {"name": "nope", "language": {"code": "en"}, "components": []}
        status, body = _meta(fake, {**TEXT, "type": "template", "template": unknown})
        assert (status, body["error"]["code"]) == (404, 132001)
        fake.fail(130429, times=1)
        status, body = _meta(fake, TEXT)
        assert (status, body["error"]["code"]) == (400, 130429)  # (Meta says throttling with a 400)
        fake.error_for(KE, 131026)
        assert _meta(fake, TEXT)[1]["error"]["code"] == 131026


def test_the_fake_twilio_checks_and_answers_as_twilio_documents():
    with FakeWhatsApp("twilio") as fake:
        cfg = fake.gateway_config()
        url = f"{fake.url}/2010-04-01/Accounts/{cfg['account_sid']}/Messages.json"
        form = {"To": f"whatsapp:+{KE}", "From": f"whatsapp:{cfg['from_number']}", "Body": "hi"}

        def post(fields: dict[str, str], secret: str = cfg["auth_token"]) -> tuple[int, dict[str, Any]]:
            auth = base64.b64encode(f"{cfg['account_sid']}:{secret}".encode()).decode()
            headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"}
            return _post(url, urllib.parse.urlencode(fields).encode(), headers)

        assert post(form, secret="wrong")[1]["code"] == 20003
        assert post({**form, "To": KE})[1]["code"] == 21211  # not a whatsapp: address
        assert post(form)[1]["code"] == 63016  # outside the window
        fake.user_wrote(KE)
        status, body = post(form)
        assert status == 201 and body["sid"].startswith("SM") and body["status"] == "queued"
