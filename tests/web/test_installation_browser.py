"""The Installation pages in a real browser (Debian's Chromium through Playwright), at 1280×800 and 390×844:
a staff user adds an installation `http` gateway pointing at a fake provider on 127.0.0.1, sends a test
message the provider receives, and routes a prefix to it with the sandbox behind it (failover). Every page
loads nothing from outside 127.0.0.1, breaks no Content-Security-Policy rule, does not scroll sideways and
labels every field. CASEMSG_SCREENSHOTS=/some/dir keeps screenshots."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from casemsg.gateways import services as gateways
from casemsg.projects.services import create_project
from tests.web.browser import (
    CHROMIUM_MISSING,
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

pytestmark = CHROMIUM_MISSING
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

TEST_TO = "254722000111"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.django_db(transaction=True)
def test_staff_add_an_installation_gateway_and_a_route(live_server, fake_http, viewport):
    # Every ORM call before Playwright starts: its sync API runs an event loop in this thread.
    create_project("clinic", "Clinic")
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    get_user_model().objects.create_user("ops", password="pw-ops-12345", is_staff=True)

    with browser_session() as browser:
        page = new_page(browser, VIEWPORTS[viewport])
        outside = watch_external_requests(page)
        violations = watch_csp_violations(page)

        def check() -> None:
            shots = os.environ.get("CASEMSG_SCREENSHOTS", "")
            if shots:  # CASEMSG_SCREENSHOTS=/some/dir keeps a screenshot of every page checked
                name = re.sub(r"[^a-z0-9]+", "-", page.url.split("/installation/", 1)[-1].lower()).strip("-")
                path = Path(shots) / f"installation-{page.viewport_size['width']}-{name or 'home'}.png"
                page.screenshot(path=str(path), full_page=True)
            assert_no_overflow(page)
            assert_every_field_labelled(page)
            assert outside == [] and violations == [] and csp_events(page) == []

        login(page, live_server, "ops", "pw-ops-12345")
        page.click("header nav >> text=Installation")
        page.wait_for_selector("tr[data-gateway=sandbox]")
        check()

        # --- a gateway, from the type's form -------------------------------------------------------
        page.click("#add-gateway")
        page.click("a[data-type=http]")
        page.wait_for_selector("#gateway-form")
        check()
        page.fill("#id_name", "aggregator")
        page.fill("#id_cfg_url", fake_http.url + "/send")
        page.fill("#id_cfg_params", json.dumps({"to": "{to}", "text": "{text}", "message_id": "{message_id}"}))
        page.fill("#id_cfg_password", "pw-of-the-provider")
        page.click("#save")
        page.wait_for_selector("text=Gateway aggregator added to the installation")
        assert "pw-of-the-provider" not in page.content()  # a secret is never shown back
        check()

        # --- a test message through it, for the project -----------------------------------------------
        page.select_option("#id_project", "clinic")
        page.fill("#id_to", TEST_TO)
        page.fill("#id_text", "Test from the installation")
        page.click("#send-test")
        page.wait_for_selector("#test-outcome[data-status=sent]")
        check()
        (got,) = fake_http.requests()
        assert (got.to, got.text) == (TEST_TO, "Test from the installation")

        # --- a route: 25472 → aggregator, then the sandbox ---------------------------------------------
        page.click("main nav >> text=Routes")
        page.wait_for_selector("#route-form")
        check()
        page.fill("#id_route_prefix", "25472")
        page.select_option("#id_gateway", "aggregator")
        page.select_option("#id_then_1", "sandbox")
        page.click("#add-route")
        page.wait_for_selector("text=Numbers starting 25472 now go through aggregator → sandbox.")
        row = page.locator("tr[data-prefix='25472']")
        assert row.locator("[data-gateway]").all_inner_texts() == ["aggregator", "sandbox"]
        check()

        # the gateway list says where it is routed; the audit log has both changes
        page.click("main nav >> text=Gateways")
        assert page.locator("tr[data-gateway=aggregator] [data-routes]").inner_text() == "25472"
        page.click("main nav >> text=Audit log")
        page.wait_for_selector("tr[data-subject='route 25472'][data-action=added]")
        assert page.locator("tr[data-subject='gateway aggregator'][data-action=added]").count() == 1
        check()
