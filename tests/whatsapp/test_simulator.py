"""The phone simulator as a WhatsApp user: through the WhatsApp sandbox gateway, the same inbound router
(simulated, speaking for the project only), its 24-hour window shown, templates shown as templates, and a
question's reply buttons or list as buttons that answer with the choice's id — by the Django client and in
a real Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.consent.models import ConsentRecord
from casemsg.contacts.models import OptOut, WhatsAppWindow
from casemsg.gateways import whatsapp_templates
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member
from casemsg.surveys.models import SurveySession
from tests.web.browser import CHROMIUM_MISSING, browser_session, login, new_page, watch_csp_violations
from tests.whatsapp.conftest import KE, send, work
from tests.whatsapp.test_surveys import SURVEY

SIM = "/projects/alpha/simulator/"


@pytest.fixture
def wa_sandbox(project) -> Gateway:
    gw = add_gateway("wa-sandbox", "whatsapp_sandbox", {"survey_template": "survey_start"}, project=project)
    whatsapp_templates.sync(gw)  # its templates, as a provider lists them
    return gw


def _case(api) -> str:
    props = {"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "contact_backend_id": "wa-sandbox"}
    return api.case(props, name="Amina")["case_id"]


def _reply(client: Client, text: str, **extra: str) -> None:
    r = client.post(SIM + "reply/", {"number": KE, "text": text, "channel": "whatsapp", **extra})
    assert r.status_code == 302 and r["Location"].endswith("channel=whatsapp"), r.content


def _page(client: Client) -> str:
    r = client.get(SIM, {"number": KE, "channel": "whatsapp"})
    assert r.status_code == 200
    return r.content.decode()


@pytest.mark.django_db
def test_a_whatsapp_user_in_the_simulator(api, editor, project, wa_sandbox):
    case_id = _case(api)
    assert 'data-open="no"' in _page(editor)  # nobody wrote yet: the window is closed

    reminder = {"template": "visit_reminder", "variables": ["{case.name}", "tomorrow"]}
    m = send(api, case_id, whatsapp=reminder)  # outside the window: the template goes
    work()
    m.refresh_from_db()
    assert (m.status, m.gateway_name, m.text) == ("sent", "wa-sandbox", "Hello Amina, your visit is on tomorrow.")
    page = _page(editor)
    assert "Template <code>visit_reminder</code>" in page and "Hello Amina, your visit is on tomorrow." in page

    _reply(editor, "hi")  # the person writes: simulated, through the same router, the window opens
    (inbound,) = Message.objects.filter(direction="in")
    assert (inbound.channel, inbound.simulated, inbound.gateway_name) == ("whatsapp", True, "wa-sandbox")
    assert WhatsAppWindow.objects.get(gateway=wa_sandbox, phone_number=KE).last_inbound_on is not None
    assert not ConsentRecord.objects.filter(source="whatsapp").exists()  # simulated: never a real opt-in
    page = _page(editor)
    assert 'data-open="yes"' in page and "window open until" in page

    r = api.post("surveys", SURVEY)
    api.post(f"surveys/{r.json()['id']}/start", {"case_id": case_id})
    work()
    page = _page(editor)  # the first question, as reply buttons answering with the choice's id
    assert 'data-kind="buttons"' in page and 'data-choice="yes"' in page and 'data-choice="no"' in page
    _reply(editor, "yes", reply_title="Yes")  # what tapping "Yes" posts
    page = _page(editor)
    assert 'data-kind="list"' in page and 'data-choice="central"' in page  # the next question: a list
    _reply(editor, "central", reply_title="Central")
    assert SurveySession.objects.get().answers == {"well": "yes", "district": "central"}

    _reply(editor, "STOP")  # a simulated STOP speaks for this project only
    (opt_out,) = OptOut.objects.filter(phone_number=KE)
    assert opt_out.project_id == project.pk


@pytest.mark.django_db
def test_the_simulator_acts_only_for_the_project_and_with_a_whatsapp_sandbox(api, editor, project):
    page = _page(editor)
    assert 'id="no-wa-sandbox"' in page
    _case(api)
    r = editor.post(SIM + "reply/", {"number": KE, "text": "hi", "channel": "whatsapp"})
    assert "no WhatsApp sandbox gateway" in r.content.decode() and not Message.objects.exists()
    add_gateway("wa-sandbox", "whatsapp_sandbox", {}, project=project)
    r = editor.post(SIM + "reply/", {"number": "254700000001", "text": "hi", "channel": "whatsapp"})
    assert "No contact of this project has the number" in r.content.decode() and not Message.objects.exists()


@CHROMIUM_MISSING
@pytest.mark.django_db(transaction=True)
def test_buttons_in_a_real_browser(live_server, api, project):
    # every ORM call before Playwright starts (its sync API runs an event loop in this thread)
    gw = add_gateway("wa-sandbox", "whatsapp_sandbox", {}, project=project)
    whatsapp_templates.sync(gw)
    case_id = _case(api)
    add_member(project, get_user_model().objects.create_user("wally", password="pw-wally-1"), "editor")
    client = Client()
    client.force_login(get_user_model().objects.get(username="wally"))
    send(api, case_id, whatsapp={"template": "visit_reminder", "variables": ["{case.name}", "Friday"]})
    work()
    _reply(client, "hi")
    r = api.post("surveys", SURVEY)
    api.post(f"surveys/{r.json()['id']}/start", {"case_id": case_id})
    work()

    with browser_session() as browser:
        page = new_page(browser)
        csp = watch_csp_violations(page)
        login(page, live_server, "wally", "pw-wally-1")
        page.goto(f"{live_server.url}{SIM}?number={KE}&channel=whatsapp")
        assert "window open until" in page.inner_text("#wa-window")
        assert page.locator(".bubble .wa-template").first.inner_text().startswith("Template visit_reminder")
        page.evaluate("window.__noReload = true")
        page.click("#conversation button[data-choice=no]")  # tap "No": htmx posts it, no page load
        page.wait_for_selector("#conversation .bubble.in >> text=no")
        page.wait_for_selector("#conversation [data-kind=list] button[data-choice=north]")
        assert page.evaluate("window.__noReload === true")
        page.click("#conversation button[data-choice=north]")
        page.wait_for_selector("#conversation [data-kind=buttons] button[data-choice=two]")
        assert csp == []
