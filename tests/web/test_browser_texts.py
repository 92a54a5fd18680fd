"""Texts in a real browser (Debian's Chromium through Playwright), at 1280×800 and 390×844: an officer writes
the Swahili STOP confirmation on Settings → Texts, and a Swahili contact who texts STOP from the phone
simulator gets it (an English contact still gets casemsg's English); the keyword form shows only the chosen
action's parameters. Every page visited loads nothing from outside, does not scroll sideways, labels every
field and breaks no Content-Security-Policy rule."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases import services as cases
from casemsg.consent import texts
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
    watch_csp_violations,
    watch_external_requests,
)

pytestmark = CHROMIUM_MISSING
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

UMEJIONDOA = "Umejiondoa. Hutapokea ujumbe tena. Tuma START kujiunga tena."


def check(page, outside: list[str], violations: list[str]) -> None:
    assert_no_overflow(page)
    assert_every_field_labelled(page)
    assert outside == [] and violations == [], (outside, violations)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.django_db(transaction=True)
def test_a_swahili_stop_after_the_text_is_written_on_the_settings_page(live_server, viewport):
    # Every ORM call before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project("texts", "Texts test", languages=["sw"])
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    for case_id, number, lang in (("sw-1", "254712000001", "sw"), ("en-1", "254712000002", "en")):
        cases.create_case(
            project,
            cases.CaseChange(
                case_id=case_id,
                case_type="mother",
                name="Asha",
                properties={
                    "contact_phone_number": number,
                    "contact_phone_number_is_verified": "1",
                    "language_code": lang,
                },
            ),
        )
    get_user_model().objects.create_superuser("ann", password="pw-ann-1")
    base = f"{live_server.url}/projects/{project.slug}"
    english = texts.get("opt_out_confirmation").default

    with browser_session() as browser:
        page = new_page(browser, VIEWPORTS[viewport])
        outside = watch_external_requests(page)
        violations = watch_csp_violations(page)
        login(page, live_server, "ann", "pw-ann-1")

        page.goto(f"{base}/settings/")
        page.click("#texts-link")
        page.wait_for_url("**/settings/texts/")
        check(page, outside, violations)
        box = page.locator("#id_t__opt_out_confirmation__sw")
        assert box.get_attribute("placeholder") == english  # the fallback that applies now
        box.fill(UMEJIONDOA)
        page.click("#save")
        page.wait_for_url("**/settings/texts/")
        assert page.locator("#id_t__opt_out_confirmation__sw").input_value() == UMEJIONDOA
        check(page, outside, violations)

        for case_id, expected in (("sw-1", UMEJIONDOA), ("en-1", english)):
            page.goto(f"{base}/simulator/?case={case_id}")
            page.wait_for_selector("#phone")
            page.fill("#phone input[name=text]", "STOP")
            page.press("#phone input[name=text]", "Enter")
            page.wait_for_selector(f"#conversation .bubble.out >> text={expected}")
            check(page, outside, violations)

        # the keyword form shows the chosen action's parameters only
        page.goto(f"{base}/keywords/new/")
        assert page.locator("#params-update_case").is_hidden() and page.locator("#params-start_survey").is_hidden()
        page.select_option("#id_action", "update_case")
        assert page.locator("#params-update_case").is_visible() and page.locator("#params-start_survey").is_hidden()
        assert page.locator("#id_p_update_case__property_value").input_value() == "{rest}"
        check(page, outside, violations)
