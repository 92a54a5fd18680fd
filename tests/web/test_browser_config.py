"""The configuration journeys in a real browser (Debian's Chromium through Playwright), at 1280×800 and
390×844: add a keyword and trigger it from the phone simulator (its reply appears, with what happened);
add an `http` gateway pointing at a fake provider on 127.0.0.1 and send a test message that the provider
receives; change a setting; create an API key. Every page visited loads nothing from outside 127.0.0.1,
does not scroll sideways and labels every field. CASEMSG_SCREENSHOTS=/some/dir keeps screenshots."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases import services as cases
from casemsg.gateways import services as gateways
from casemsg.projects.services import create_project
from tests.web.browser import (
    CHROMIUM_MISSING,
    VIEWPORTS,
    assert_every_field_labelled,
    assert_no_overflow,
    browser_session,
    login,
    new_page,
    watch_external_requests,
)

pytestmark = CHROMIUM_MISSING
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

KE = "254712345678"
TEST_TO = "254722000111"


def check(page, outside: list[str]) -> None:
    shots = os.environ.get("CASEMSG_SCREENSHOTS", "")
    if shots:  # CASEMSG_SCREENSHOTS=/some/dir keeps a screenshot of every page checked
        name = re.sub(r"[^a-z0-9]+", "-", page.url.split("/projects/", 1)[-1].lower()).strip("-") or "page"
        page.screenshot(path=str(Path(shots) / f"{page.viewport_size['width']}-{name}.png"), full_page=True)
    assert_no_overflow(page)
    assert_every_field_labelled(page)
    assert outside == [], outside


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.django_db(transaction=True)
def test_configure_a_project_in_a_real_browser(live_server, fake_http, viewport):
    # Every ORM call before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project("config", "Config test", languages=["sw"])
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    cases.create_case(
        project,
        cases.CaseChange(
            case_id="ke-1",
            case_type="mother",
            name="Asha",
            properties={"contact_phone_number": KE, "contact_phone_number_is_verified": "1"},
        ),
    )
    get_user_model().objects.create_superuser("ann", password="pw-ann-1")
    base = f"{live_server.url}/projects/{project.slug}"

    with browser_session() as browser:
        page = new_page(browser, VIEWPORTS[viewport])
        outside = watch_external_requests(page)
        login(page, live_server, "ann", "pw-ann-1")

        # --- a keyword, then triggered from the simulator ------------------------------------------
        page.goto(f"{base}/keywords/")
        check(page, outside)
        page.click("text=Add a keyword")
        page.wait_for_url("**/keywords/new/")
        check(page, outside)
        page.fill("#id_keyword", "Hello")
        page.select_option("#id_action", "reply")
        page.fill("#id_reply_en", "Hi {case.name}, welcome!")
        page.fill("#id_reply_sw", "Habari {case.name}!")
        page.click("#save")
        page.wait_for_url("**/keywords/")
        assert page.locator("tr[data-keyword=HELLO]").count() == 1
        check(page, outside)

        page.goto(f"{base}/simulator/?case=ke-1")
        page.wait_for_selector("#phone")
        check(page, outside)
        page.fill("#phone input[name=text]", "hello there")
        page.press("#phone input[name=text]", "Enter")
        page.wait_for_selector("#conversation .bubble.out >> text=Hi Asha, welcome!")
        assert "Keyword HELLO matched." in page.locator("#conversation .bubble.in .outcome").last.inner_text()
        page.fill("#phone input[name=text]", "nothing here")
        page.press("#phone input[name=text]", "Enter")
        page.wait_for_selector("#conversation [data-outcome=unhandled] >> text=No keyword matched")
        check(page, outside)

        # --- an http gateway at the fake provider, and a test message through it --------------------
        page.goto(f"{base}/gateways/")
        check(page, outside)
        page.click("text=Add a gateway")
        page.click("a[data-type=http]")
        page.wait_for_selector("#gateway-form")
        check(page, outside)
        page.fill("#id_name", "aggregator")
        page.fill("#id_cfg_url", fake_http.url + "/send")
        page.fill("#id_cfg_params", json.dumps({"to": "{to}", "text": "{text}", "message_id": "{message_id}"}))
        page.fill("#id_cfg_password", "pw-of-the-provider")
        page.click("#save")
        page.wait_for_selector("text=Gateway aggregator added")
        assert "pw-of-the-provider" not in page.content()  # a secret is never shown back
        check(page, outside)
        page.fill("#id_to", TEST_TO)
        page.fill("#id_text", "Test from the browser")
        page.click("#send-test")
        page.wait_for_selector("#test-outcome[data-status=sent]")
        check(page, outside)
        (got,) = fake_http.requests()
        assert (got.to, got.text) == (TEST_TO, "Test from the browser")

        # a route to it, then removed
        page.goto(f"{base}/routes/")
        page.fill("#id_route_prefix", "25472")
        page.select_option("#id_gateway", "aggregator")
        page.click("#add-route")
        page.wait_for_selector("tr[data-prefix='25472']")
        check(page, outside)
        page.click("tr[data-prefix='25472'] button")
        page.wait_for_selector("text=Route 25472 removed")

        # --- settings: a refused value shows the reason, a good one saves ---------------------------
        page.goto(f"{base}/settings/")
        check(page, outside)
        page.fill("#id_quiet_hours_start", "21:00")
        page.fill("#id_quiet_hours_end", "25:00")
        page.click("#save")
        page.wait_for_selector("text=is not a time of day")
        check(page, outside)
        page.fill("#id_quiet_hours_end", "07:00")
        page.select_option("#id_default_time_zone", "Africa/Nairobi")
        page.click("#save")
        page.wait_for_selector("text=Settings saved.")
        assert page.input_value("#id_default_time_zone") == "Africa/Nairobi"

        # --- an API key, shown once --------------------------------------------------------------
        page.goto(f"{base}/api-keys/")
        check(page, outside)
        page.fill("#id_name", "forwarder")
        page.click("#create-key")
        key = page.locator("#new-key code.key").inner_text()
        assert key.startswith("cm_")
        check(page, outside)
        page.goto(f"{base}/api-keys/")
        assert key not in page.content()
