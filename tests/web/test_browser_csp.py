"""The Content-Security-Policy in Debian's Chromium, on the pages outside a project (the project pages are
in test_browser_frame.py): the login, error and 404 pages and the API docs report no violation, Swagger UI
still draws the API under its policy, and a confirmation moved out of an onsubmit attribute
(data-confirm, static/web/casemsg.js) still asks, and still stops the form when the answer is no."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases import services as cases
from casemsg.gateways import services as gateways
from casemsg.projects.services import add_member, create_project
from tests.web.browser import (
    CHROMIUM_MISSING,
    browser_session,
    csp_events,
    login,
    new_page,
    watch_csp_violations,
    watch_external_requests,
)

pytestmark = [CHROMIUM_MISSING, pytest.mark.django_db(transaction=True)]
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

KE = "254712345678"


def test_pages_outside_a_project_and_the_api_docs_pass_the_policy(live_server):
    get_user_model().objects.create_user("ann", password="pw-ann-1")
    with browser_session() as browser:
        page = new_page(browser)
        outside = watch_external_requests(page)
        reported = watch_csp_violations(page)
        events: list[str] = []
        page.goto(live_server.url + "/accounts/login/", wait_until="networkidle")
        events += csp_events(page)
        login(page, live_server, "ann", "pw-ann-1")
        for path in ["/", "/errors/", "/no-such-page/", "/projects/nobody/"]:
            page.goto(live_server.url + path, wait_until="networkidle")
            events += csp_events(page)
        # Swagger UI draws every operation from the OpenAPI document, under its own policy
        page.goto(live_server.url + "/api/docs", wait_until="networkidle")
        page.wait_for_selector(".opblock-summary-path")
        assert page.locator(".opblock").count() > 20
        page.locator(".opblock-summary").first.click()  # an operation opens (Swagger UI's React runs)
        page.wait_for_selector(".opblock-body")
        events += csp_events(page)
        assert outside == [], outside
        page.close()
    assert not events and not reported, "\n".join(events + reported)


def test_a_confirmation_still_asks_and_no_stops_the_form(live_server):
    project, _key = create_project("csp", "CSP test")
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    cases.create_case(
        project,
        cases.CaseChange(case_id="ke-1", case_type="mother", name="Asha", properties={"contact_phone_number": KE}),
    )
    add_member(project, get_user_model().objects.create_user("owner", password="pw-owner-1"), "owner")
    url = f"{live_server.url}/projects/csp/simulator/?number={KE}"
    with browser_session() as browser:
        page = new_page(browser)
        reported = watch_csp_violations(page)
        login(page, live_server, "owner", "pw-owner-1")
        page.goto(url, wait_until="networkidle")
        asked: list[str] = []

        def say_no(dialog):
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", say_no)
        page.click("#reset")
        page.wait_for_timeout(500)
        assert asked and asked[0].startswith(f"Reset {KE}?"), asked
        assert page.url == url  # "no": nothing was sent
        assert page.locator(".flash").count() == 0
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#reset")
        page.wait_for_selector(".flash")  # "yes": the form was sent, and its answer is shown
        assert f"{KE} reset" in page.inner_text(".flash") or "reset" in page.inner_text(".flash").lower()
        events = csp_events(page)
        page.close()
    assert not reported and not events, reported + events
