"""The send form on WhatsApp: its preview says whether the window is open and which template will be
used; sending from it names the template, its variables and the fallback."""

from __future__ import annotations

import pytest

from casemsg.messaging.models import Message
from fakes.whatsapp import meta_webhook
from tests.whatsapp.conftest import KE, post_meta

pytestmark = pytest.mark.django_db


def _preview(editor, case_id: str, template: str = "") -> str:
    r = editor.get(
        "/projects/alpha/messages/preview/",
        {"channel": "whatsapp", "case": case_id, "text": "Hi {case.name}", "whatsapp_template": template},
    )
    assert r.status_code == 200
    return r.content.decode()


def test_the_preview_says_which_rule_sends_it(api, editor, meta_gw, fake_meta):
    case_id = api.case({"contact_phone_number": KE}, name="Amina")["case_id"]
    assert "WHATSAPP_WINDOW_CLOSED" in _preview(editor, case_id)
    assert "WHATSAPP_TEMPLATE_NOT_APPROVED" in _preview(editor, case_id, "visit_reminder")  # not synced yet
    api.post("whatsapp-templates/sync")
    page = _preview(editor, case_id, "visit_reminder")
    assert "the approved template <code>visit_reminder</code> will be used" in page
    post_meta(meta_gw, meta_webhook(KE, "hi"))
    assert "window <strong>open</strong> until" in _preview(editor, case_id, "visit_reminder")


def test_sending_from_the_form(api, editor, meta_gw, fake_meta):
    case_id = api.case({"contact_phone_number": KE}, name="Amina")["case_id"]
    r = editor.post(
        f"/projects/alpha/cases/{case_id}/",
        {
            "action": "send",
            "channel": "whatsapp",
            "text": "Hi {case.name}",
            "whatsapp_template": "visit_reminder",
            "whatsapp_variables": "{case.name}, tomorrow",
            "fallback_sms": "on",
        },
    )
    assert r.status_code in (200, 302), r.content
    m = Message.objects.get(direction="out")
    assert m.channel == "whatsapp"
    assert m.content["whatsapp"] == {
        "template": "visit_reminder",
        "variables": ["{case.name}", "tomorrow"],
        "fallback_sms": True,
    }


def test_sending_from_the_cli(api, meta_gw, fake_meta):
    from io import StringIO

    from django.core.management import call_command

    case_id = api.case({"contact_phone_number": KE}, name="Amina")["case_id"]
    out = StringIO()
    call_command(
        "send",
        "--project=alpha",
        f"--case={case_id}",
        "--channel=whatsapp",
        "--text=Hi {case.name}",
        "--whatsapp-template=visit_reminder",
        '--whatsapp-variables=["{case.name}", "tomorrow"]',
        "--fallback-sms",
        stdout=out,
    )
    m = Message.objects.get(direction="out")
    assert out.getvalue().startswith(f"message {m.pk}: queued")
    assert (m.channel, m.content["whatsapp"]) == (
        "whatsapp",
        {"template": "visit_reminder", "variables": ["{case.name}", "tomorrow"], "fallback_sms": True},
    )
