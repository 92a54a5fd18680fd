"""One real browser run: Debian's Chromium, headless, driven by Playwright against the live server.

Log in through the admin login, open the phone simulator, type STOP and see the confirmation appear
without a page load (htmx). Set CASEMSG_SCREENSHOTS=/some/dir to keep screenshots of the pages.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases import services as cases
from casemsg.contacts.models import OptOut
from casemsg.gateways import services as gateways
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member, create_project

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KE = "254712345678"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


@pytest.mark.django_db(transaction=True)
def test_simulator_stop_in_a_real_browser(live_server):
    # Everything the ORM needs happens before Playwright starts: its sync API runs an event loop in this
    # thread, and Django refuses ORM calls from a thread with a running loop.
    project, _key = create_project("browser", "Browser test")
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    cases.create_case(
        project,
        cases.CaseChange(
            case_id="ke-1",
            case_type="mother",
            name="Asha Njeri",
            properties={"contact_phone_number": KE, "time_zone": "Africa/Nairobi", "note": "<b>not bold</b>"},
        ),
    )
    add_member(project, get_user_model().objects.create_user("operator", password="pw-operator-1"), "editor")
    shots = os.environ.get("CASEMSG_SCREENSHOTS", "")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.goto(f"{live_server.url}/projects/browser/simulator/?case=ke-1")
            assert "/accounts/login/" in page.url  # not logged in yet
            page.fill("#id_username", "operator")
            page.fill("#id_password", "pw-operator-1")
            page.click("form#login button[type=submit]")
            page.wait_for_url("**/projects/browser/simulator/?case=ke-1")
            assert page.evaluate("typeof htmx") == "object"  # the vendored htmx loaded, no CDN
            page.wait_for_selector("#phone")

            # A marker on window survives only if the reply is swapped in by htmx, not a page load.
            page.evaluate("window.__noReload = true")
            page.fill("#phone input[name=text]", "STOP")
            page.press("#phone input[name=text]", "Enter")
            page.wait_for_selector("#conversation .bubble.out >> text=You are unsubscribed")
            assert page.evaluate("window.__noReload === true")
            assert page.locator("#conversation .bubble.in").first.inner_text().startswith("STOP")
            assert page.input_value("#phone input[name=text]") == ""  # a fresh reply box
            if shots:
                page.screenshot(path=str(Path(shots) / "casemsg-simulator.png"), full_page=True)

            page.goto(f"{live_server.url}/projects/browser/cases/ke-1/")
            page.wait_for_selector("text=Contact status")
            assert page.locator("b", has_text="not bold").count() == 0  # user text stays text
            assert "PHONE_OPTED_OUT" in page.content()
            if shots:
                page.screenshot(path=str(Path(shots) / "casemsg-case.png"), full_page=True)
        finally:
            browser.close()

    assert Message.objects.filter(direction="in", to=KE, text="STOP").count() == 1
    assert OptOut.objects.filter(phone_number=KE).exists()
