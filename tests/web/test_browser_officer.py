"""The program officer's journeys in Debian's Chromium, at 1280×800 and at 390×844: log in → create a case
with a badly written number → apply the fix with one click → write a message (the live preview renders it
for the case and counts its SMS segments) and send it through the sandbox gateway → find it in the message
log → export the log as CSV; and a CSV import: upload → preview (the rows and their problems) → confirm.
Nothing is fetched from outside 127.0.0.1, no page scrolls sideways, every field has a label. Set
CASEMSG_SCREENSHOTS=/some/dir to keep screenshots."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases.models import Case
from casemsg.gateways import services as gateways
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member, create_project
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

pytestmark = [CHROMIUM_MISSING, pytest.mark.django_db(transaction=True)]
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_officer_journey(live_server, viewport):
    # Every ORM call before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project("officer", "Officer journey")  # US numbers need consent (the default)
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    user = get_user_model().objects.create_user("olga", password="pw-olga-1")
    add_member(project, user, "editor")
    shots = os.environ.get("CASEMSG_SCREENSHOTS", "")
    base = f"{live_server.url}/projects/officer"

    def shot(page, name: str) -> None:
        if shots:
            page.screenshot(path=str(Path(shots) / f"officer-{viewport}-{name}.png"), full_page=True)

    def check(page) -> None:
        assert_no_overflow(page)
        assert_every_field_labelled(page)

    with browser_session() as browser:
        page = new_page(browser, VIEWPORTS[viewport])
        outside = watch_external_requests(page)
        login(page, live_server, "olga", "pw-olga-1")

        # a new case, its number written with dashes, consent recorded
        page.goto(f"{base}/cases/")
        check(page)
        page.click("text=New case")
        page.wait_for_url("**/new-case/")
        check(page)
        page.fill("#id_case_type", "mother")
        page.fill("#id_name", "Maria")
        page.fill("#id_case_id", "maria-1")
        page.fill("#id_contact_phone_number", "1-206-617-1234")
        page.check("#id_contact_phone_number_is_verified")
        page.click("text=Create the case")
        page.wait_for_url("**/cases/maria-1/")
        assert "INVALID_PHONE_NUMBER" in page.content()
        assert page.locator(".fix", has_text="Remove the dashes: 12066171234").count() >= 1
        assert page.locator(".fixform").count() == 1
        check(page)
        shot(page, "1-bad-number")

        # the fix, one click
        page.locator("button", has_text="Apply the fix: 12066171234").first.click()
        page.wait_for_selector(".flash >> text=Phone number changed from 1-206-617-1234 to 12066171234")
        assert "INVALID_PHONE_NUMBER" not in page.content()
        assert page.locator(".fixform").count() == 0
        shot(page, "2-fixed")

        # the send form: the preview renders the text for Maria and counts it as it is typed
        page.fill("#send-form textarea[name=text]", "Hello {case.name}, your visit is due. {case.village}")
        page.wait_for_selector("#preview-text >> text=Hello Maria, your visit is due. (?)")
        page.wait_for_selector("#preview-unknown >> text={case.village}")
        assert page.inner_text("#preview-count .segments") == "1"
        page.fill("#send-form textarea[name=text]", "Hello {case.name}, your visit is due. " + "Ok. " * 40)
        page.wait_for_selector("#preview-count .segments >> text=2")
        page.wait_for_function("!document.querySelector('#preview-unknown')")
        page.fill("#send-form textarea[name=text]", "Hello {case.name}, your visit is due.")
        page.wait_for_selector("#preview-count .count >> text=31")
        check(page)
        shot(page, "3-preview")
        page.click("#send-form button[type=submit]")
        page.wait_for_selector(".flash.success >> text=sent")

        # the message log, searched
        if viewport == "phone":  # at 390 px the sections fold behind the Menu button
            page.click("nav.project label.menu-button")
        page.click("nav.project >> text=Messages")
        page.wait_for_url("**/messages/")
        page.fill("#id_q", "12066171234")
        page.press("#id_q", "Enter")
        page.wait_for_url("**/messages/?*q=12066171234*")
        row = page.locator("tr", has_text="Hello Maria, your visit is due.")
        assert row.count() == 1 and "sent" in row.inner_text()
        check(page)
        shot(page, "4-log")

        # the export of what the log shows
        with page.expect_download() as download:
            page.click("text=Export these messages as CSV")
        exported = Path(download.value.path()).read_text()
        assert outside == []

    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["case_id"], r["to"], r["status"], r["text"]) for r in rows] == [
        ("maria-1", "12066171234", "sent", "Hello Maria, your visit is due.")
    ]
    assert Case.objects.get(case_id="maria-1").properties["contact_phone_number"] == "12066171234"
    assert Message.objects.get().status == Message.SENT


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_import_preview_then_confirm(live_server, viewport):
    """Upload a CSV file, read the preview (rows and their problems; nothing written yet), then import."""
    project, _key = create_project("importer", "Import journey")
    user = get_user_model().objects.create_user("ivan", password="pw-ivan-1")
    add_member(project, user, "editor")
    content = (
        b"case_id,name,contact_phone_number,village\n"
        b"i-1,Amina,254712345678,Kisumu\n"
        b"i-2,Bad Number,1-206-617-1234,Nakuru\n"
        b"i-3,Too,many,values,here\n"
    )

    with browser_session() as browser:
        page = new_page(browser, VIEWPORTS[viewport])
        outside = watch_external_requests(page)
        login(page, live_server, "ivan", "pw-ivan-1")
        page.goto(f"{live_server.url}/projects/importer/cases/")
        page.click("text=Import a CSV file")
        assert_every_field_labelled(page)
        page.set_input_files("#id_file", files=[{"name": "mothers.csv", "mimeType": "text/csv", "buffer": content}])
        page.fill("#id_case_type", "mother")
        page.click("button:has-text('Preview')")
        page.wait_for_selector("text=Nothing has been written yet")
        assert "Remove the dashes: 12066171234" in page.inner_text("#line-3")
        assert "skipped" in page.inner_text("#line-4")
        assert "OK" in page.inner_text("#line-2")
        assert_no_overflow(page)
        page.click("button:has-text('Import 2 cases')")
        page.wait_for_selector(".flash.success >> text=2 created, 0 updated, 1 skipped")
        assert page.locator("table.cases code", has_text="i-1").count() == 1
        assert_no_overflow(page)
        assert outside == []

    assert sorted(Case.objects.filter(project=project).values_list("case_id", flat=True)) == ["i-1", "i-2"]
