"""WhatsApp content in broadcasts and alerts: the content names an approved template with its variables
bound to {case.…}; the pre-flight counts, with the send path's own rule, who is inside the window (the
text), who gets the template, who gets an SMS instead and who cannot be reached and why — a fixed number
of queries whatever the number of recipients — and the broadcast then does exactly that."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casemsg.consent.optout import opt_out
from casemsg.contacts import whatsapp as windows
from casemsg.messaging.models import Message
from casemsg.scheduling.models import ConditionalAlert
from fakes.whatsapp import meta_webhook
from tests.whatsapp.conftest import post_meta, work

pytestmark = pytest.mark.django_db

OPEN, CLOSED1, CLOSED2, STOPPED, NOT_WA = (f"25471100010{i}" for i in range(5))


def _body(whatsapp: dict[str, Any] | None = None, **over: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"channel": "whatsapp", "text": "Hi {case.name}"}
    if whatsapp is not None:
        content["whatsapp"] = whatsapp
    return {
        "name": "Visit reminder",
        "content": content,
        "recipients": {"case_type": "mother"},
        "schedule": {"type": "now"},
        **over,
    }


REMINDER = {"template": "visit_reminder", "variables": ["{case.name}", "{case.edd}"]}


@pytest.fixture
def mothers(api, project, meta_gw, fake_meta):
    for i, number in enumerate((OPEN, CLOSED1, CLOSED2, STOPPED, NOT_WA)):
        api.case({"contact_phone_number": number, "edd": "2026-12-24"}, name=f"M{i}", case_type="mother")
    assert api.post("whatsapp-templates/sync").status_code == 200
    fake_meta.user_wrote(OPEN)
    post_meta(meta_gw, meta_webhook(OPEN, "hi"))  # OPEN's window opens (here and at the fake Meta)
    opt_out(STOPPED, project=project, source="keyword")
    windows.not_on_whatsapp(meta_gw.pk, [NOT_WA], timezone.now())  # WhatsApp said so earlier


def test_the_preflight_counts_the_window_the_template_and_who_cannot_be_reached(api, mothers, fake_meta):
    r = api.post("broadcasts/preflight", _body(REMINDER))
    assert r.status_code == 200, r.content
    got = r.json()
    assert got["whatsapp"] == {
        "gateway": "wa",
        "template": "visit_reminder",
        "template_status": "APPROVED",
        "fallback_sms": False,
        "window_open": 1,
        "template_sends": 2,
        "sms": {},
        "unreachable": {"PHONE_OPTED_OUT": 1, "WHATSAPP_NOT_ON_WHATSAPP": 1},
    }
    assert (got["recipients"], got["sendable"]) == (5, 3)
    assert got["blocked"] == {"PHONE_OPTED_OUT": 1, "WHATSAPP_NOT_ON_WHATSAPP": 1}
    assert sorted(f["whatsapp"] for f in got["first_sends"]) == ["free_text", "template", "template"]

    # the broadcast then does what the pre-flight said
    r = api.post("broadcasts", _body(REMINDER))
    assert r.status_code == 201, r.content
    work()
    out = {m.to: m for m in Message.objects.filter(direction="out")}
    assert (out[OPEN].status, out[OPEN].text) == ("sent", "Hi M0")
    assert out[CLOSED1].status == "sent" and out[CLOSED1].text == "Hello M1, your visit is on 2026-12-24."
    assert (out[STOPPED].error, out[NOT_WA].error) == ("PHONE_OPTED_OUT", "WHATSAPP_NOT_ON_WHATSAPP")
    kinds = sorted(r.body["type"] for r in fake_meta.messages())
    assert kinds == ["template", "template", "text"]


def test_no_approved_template_and_the_fallback_to_sms(api, mothers, sandbox):
    got = api.post("broadcasts/preflight", _body({"template": "no_such", "fallback_sms": True})).json()["whatsapp"]
    assert got["template_status"] is None  # never synced
    assert (got["window_open"], got["template_sends"]) == (1, 0)
    assert got["sms"] == {"WHATSAPP_NOT_ON_WHATSAPP": 1, "WHATSAPP_TEMPLATE_NOT_APPROVED": 2}
    assert got["unreachable"] == {"PHONE_OPTED_OUT": 1}  # opted out of WhatsApp is opted out of SMS too

    got = api.post("broadcasts/preflight", _body()).json()["whatsapp"]  # no template, no fallback
    assert got["unreachable"] == {"PHONE_OPTED_OUT": 1, "WHATSAPP_NOT_ON_WHATSAPP": 1, "WHATSAPP_WINDOW_CLOSED": 2}

    api.post("broadcasts", _body({"template": "no_such", "fallback_sms": True}))
    work()
    by_channel = sorted(
        (m.channel, m.status) for m in Message.objects.filter(direction="out").exclude(error="PHONE_OPTED_OUT")
    )
    assert by_channel == [("sms", "sent")] * 3 + [("whatsapp", "sent")]


def test_the_preflight_is_counted_set_wise(api, project, mothers):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.post("broadcasts/preflight", _body(REMINDER)).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for i in range(40):
        api.case({"contact_phone_number": f"2547220000{i:02d}"}, name=f"N{i}", case_type="mother")
    assert queries() == few  # not a query per recipient


def test_content_is_validated(api, mothers):
    bad = api.post("broadcasts/preflight", _body({"template": "x", "variables": ["{case.name"]}))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "CANNOT_RENDER_MESSAGE"
    bad = api.post("broadcasts/preflight", _body({"template": "x", "colour": "blue"}))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    sms = {"channel": "sms", "text": "Hi", "whatsapp": REMINDER}
    bad = api.post("broadcasts/preflight", _body(content=sms))
    assert bad.status_code == 422 and "unknown field" in bad.json()["error"]["message"]


def test_an_alert_names_a_template_too(api, mothers):
    body = {
        "name": "Two weeks before",
        "case_type": "mother",
        "criteria": [{"property": "edd", "operator": "days_before", "value": 14}],
        "content": {"channel": "whatsapp", "text": "Hi {case.name}", "whatsapp": REMINDER},
        "recipients": ["case"],
        "schedule": {"type": "offsets", "unit": "days", "offsets": [0]},
    }
    r = api.post("alerts", body)
    assert r.status_code == 201, r.content
    assert ConditionalAlert.objects.get().content["whatsapp"] == REMINDER
    assert api.get(f"alerts/{r.json()['id']}").json()["content"]["whatsapp"] == REMINDER


def test_the_broadcast_form_and_its_preflight(editor, mothers):
    form = {
        "name": "Visit",
        "channel": "whatsapp",
        "text": "Hi {case.name}",
        "whatsapp_template": "visit_reminder",
        "whatsapp_variables": "{case.name}, {case.edd}",
        "case_type": "mother",
        "schedule_type": "now",
        "time_zone": "recipient",
    }
    r = editor.post("/projects/alpha/broadcasts/preflight/", form, HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert r.status_code == 200 and '<td class="wa-window-open">1 ' in page, page
    assert '<td class="wa-template">2 ' in page and "visit_reminder" in page
    assert "WHATSAPP_NOT_ON_WHATSAPP" in page
    r = editor.post("/projects/alpha/broadcasts/new/", form)
    assert r.status_code == 302, r.content.decode()[:3000]
    (m, *_rest) = Message.objects.filter(direction="out")
    assert m.content["whatsapp"] == REMINDER
