"""The officer's inbox and conversation in Debian's Chromium, at 1280×800 and at 390×844: a contact texts (the
phone simulator plays the person), the message appears in the open inbox without a reload; the officer opens
the conversation and answers from the thread; the person sees the answer and texts again, and that reply
appears in the open thread without a reload. Nothing is fetched from outside 127.0.0.1, no page scrolls
sideways, every field has a label, the browser reports no Content-Security-Policy violation. Set
CASEMSG_SCREENSHOTS=/some/dir to keep screenshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases import services as cases
from casemsg.gateways import services as gateways
from casemsg.projects.services import add_member, create_project
from tests.web.browser import (
    CHROMIUM_MISSING,
    PHONE,
    VIEWPORTS,
    assert_every_field_labelled,
    assert_no_overflow,
    browser_session,
    csp_events,
    login,
    new_page,
    watch_csp_violations,
    watch_external_requests,
)

pytestmark = [CHROMIUM_MISSING, pytest.mark.django_db(transaction=True)]
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

KE = "254711000001"
QUESTION = "Is the clinic open on Sunday?"
ANSWER = "Yes, from 9 to 12."
THANKS = "Thank you, I will come."


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_a_reply_reaches_the_inbox_and_the_thread_without_reload(live_server, viewport):
    # Every ORM call before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project("desk", "Help desk", time_zone="Africa/Nairobi")
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    user = get_user_model().objects.create_user("olga", password="pw-olga-1", first_name="Olga", last_name="N")
    add_member(project, user, "editor")
    cases.create_case(
        project,
        cases.CaseChange(
            case_id="amina",
            case_type="mother",
            name="Amina",
            properties={"contact_phone_number": KE, "contact_phone_number_is_verified": "1"},
        ),
    )
    base = f"{live_server.url}/projects/desk"
    shots = os.environ.get("CASEMSG_SCREENSHOTS", "")

    def shot(page, name: str) -> None:
        if shots:
            page.screenshot(path=str(Path(shots) / f"inbox-{viewport}-{name}.png"), full_page=True)

    def check(page) -> None:
        assert_no_overflow(page)
        assert_every_field_labelled(page)

    with browser_session() as browser:
        officer = new_page(browser, VIEWPORTS[viewport])
        outside = watch_external_requests(officer)
        csp = watch_csp_violations(officer)
        login(officer, live_server, "olga", "pw-olga-1")
        officer.goto(f"{base}/inbox/")
        assert officer.locator(".inbox-item").count() == 0
        check(officer)
        officer.evaluate("window.__notReloaded = true")

        # the person, on the phone simulator (a page of its own)
        person = new_page(browser, PHONE)
        person_outside = watch_external_requests(person)
        login(person, live_server, "olga", "pw-olga-1")
        person.goto(f"{base}/simulator/?case=amina")
        person.fill("#phone input[name=text]", QUESTION)
        person.click("#phone button[type=submit]")
        person.locator("#conversation .bubble.in", has_text=QUESTION).wait_for()

        # the open inbox shows it, without a reload
        item = officer.locator(".inbox-item", has_text=QUESTION)
        item.wait_for()
        assert officer.evaluate("window.__notReloaded === true")
        assert "Amina" in item.inner_text()
        check(officer)
        shot(officer, "1-inbox")

        # the officer opens the conversation and answers from the thread
        item.locator("a.contact").click()
        officer.wait_for_url("**/conversations/amina/")
        officer.locator(".tmsg.in", has_text=QUESTION).wait_for()
        check(officer)
        officer.fill("#id_text", ANSWER)
        officer.click("#send-reply")
        officer.wait_for_url("**/conversations/amina/")
        sent = officer.locator(".tmsg.out", has_text=ANSWER)
        sent.wait_for()
        assert sent.get_attribute("data-status") in ("sent", "delivered", "queued")
        officer.evaluate("window.__notReloaded = true")
        shot(officer, "2-answered")

        # the person gets it and texts again; the open thread shows it, without a reload
        person.locator("#conversation .bubble.out", has_text=ANSWER).wait_for()
        person.fill("#phone input[name=text]", THANKS)
        person.click("#phone button[type=submit]")
        officer.locator(".tmsg.in", has_text=THANKS).wait_for()
        assert officer.evaluate("window.__notReloaded === true")
        assert officer.locator(".tmsg.out", has_text=ANSWER).get_attribute("data-status") in ("sent", "delivered")
        check(officer)
        shot(officer, "3-thread")

        # the inbox: the answered message is handled, the new one open
        officer.goto(f"{base}/inbox/")
        officer.locator(".inbox-item", has_text=THANKS).wait_for()
        assert officer.locator(".inbox-item", has_text=QUESTION).count() == 0
        officer.goto(f"{base}/inbox/?state=handled")
        officer.locator(".inbox-item", has_text=QUESTION).wait_for()
        check(officer)

        assert outside == [] and person_outside == []
        assert csp == [] and csp_events(officer) == []
