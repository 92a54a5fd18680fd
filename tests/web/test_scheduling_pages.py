"""The broadcast and alert pages, through Django's test client: access, the form with its pre-flight,
create and edit through the form, pause / resume / cancel, sends with failure reasons, escaping, and the
case page's coming messages."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors
from casemsg.messaging import pipeline
from casemsg.projects.services import add_member, create_project
from casemsg.scheduling import runner, services, tick
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from tests.conftest import sandbox_gateway

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def in_days(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


@pytest.fixture
def mothers(project):
    return bulk_upsert(
        project,
        [
            CaseChange(
                case_id="m-1",
                case_type="mother",
                name="Asha",
                properties={"contact_phone_number": "254711000001", "time_zone": "Africa/Nairobi", "status": "due"},
            ),
            CaseChange(case_id="m-2", case_type="mother", name="Bad", properties={"contact_phone_number": "12"}),
        ],
    )


def make_broadcast(project, **over: Any) -> Broadcast:
    body = {
        "name": "Clinic day",
        "content": {"text": "Hello {case.name}"},
        "recipients": {"case_type": "mother"},
        "schedule": {"type": "daily", "time": "09:00", "start_date": in_days(2), "count": 2},
        **over,
    }
    return services.create_broadcast(project, body)


def make_alert(project) -> ConditionalAlert:
    a = services.create_alert(
        project,
        {
            "name": "Due soon",
            "case_type": "mother",
            "criteria": [{"property": "status", "operator": "equal", "value": "due"}],
            "content": {"text": "Your visit, {case.name}"},
            "recipients": ["case"],
            "schedule": {"type": "offsets", "unit": "days", "offsets": [1]},
        },
    )
    runner.run(a)
    return a


def form_data(**over: str) -> dict[str, Any]:
    return {
        "name": "Vaccination day",
        "channel": "sms",
        "text": "Hello {case.name}, vaccination on Friday",
        "text_sw": "Habari {case.name}",
        "case_type": "mother",
        "schedule_type": "once",
        "date": in_days(3),
        "time": "09:00",
        "time_zone": "recipient",
        **over,
    }


def urls(slug: str, broadcast: int, alert: int) -> list[str]:
    return [
        f"/projects/{slug}/broadcasts/",
        f"/projects/{slug}/broadcasts/?status=paused",
        f"/projects/{slug}/broadcasts/new/",
        f"/projects/{slug}/broadcasts/{broadcast}/",
        f"/projects/{slug}/broadcasts/{broadcast}/?status=failed",
        f"/projects/{slug}/broadcasts/{broadcast}/edit/",
        f"/projects/{slug}/alerts/",
        f"/projects/{slug}/alerts/{alert}/",
        f"/projects/{slug}/cases/m-1/",
    ]


def test_pages_need_staff_and_answer_200(client, staff, project, mothers):
    b, a = make_broadcast(project), make_alert(project)
    for url in urls(project.slug, b.pk, a.pk):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), url
        assert staff.get(url).status_code == 200, url
    r = client.post(f"/projects/{project.slug}/broadcasts/{b.pk}/", {"action": "cancel"})
    assert r.status_code == 302 and Broadcast.objects.get(pk=b.pk).status == Broadcast.ACTIVE
    assert staff.get(f"/projects/{project.slug}/broadcasts/999/").status_code == 404
    assert staff.get(f"/projects/{project.slug}/broadcasts/preflight/").status_code == 405
    nav = staff.get(f"/projects/{project.slug}/").content.decode()
    assert f'href="/projects/{project.slug}/broadcasts/"' in nav and f'href="/projects/{project.slug}/alerts/"' in nav


def test_create_through_the_form_with_its_preflight(staff, project, mothers):
    new = f"/projects/{project.slug}/broadcasts/new/"
    r = staff.post(f"/projects/{project.slug}/broadcasts/preflight/", form_data(), HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    page = r.content.decode()
    assert '<td class="recipients">2</td>' in page and '<td class="sendable ok">1</td>' in page
    assert errors.INVALID_PHONE_NUMBER in page
    assert "Hello Asha, vaccination on Friday" in page and "Africa/Nairobi" in page
    assert "<html" not in page  # a fragment for htmx
    assert not Broadcast.objects.exists()

    # the Preview button without JavaScript: the whole page, with the pre-flight, still nothing saved
    r = staff.post(new, {**form_data(), "action": "preview"})
    assert r.status_code == 200 and '<td class="recipients">2</td>' in r.content.decode()
    assert not Broadcast.objects.exists()

    r = staff.post(new, {**form_data(), "action": "save"})
    assert r.status_code == 302
    b = Broadcast.objects.get()
    assert r["Location"] == f"/projects/{project.slug}/broadcasts/{b.pk}/"
    assert b.content == {"channel": "sms", "text": form_data()["text"], "translations": {"sw": "Habari {case.name}"}}
    assert b.recipients == {"case_type": "mother", "filters": {}}
    assert b.schedule == {"type": "once", "times": ["09:00"], "date": in_days(3), "time_zone": "recipient"}
    listing = staff.get(f"/projects/{project.slug}/broadcasts/").content.decode()
    assert "Vaccination day" in listing and f"once on {in_days(3)} at 09:00" in listing


def test_the_form_shows_why_a_body_is_refused(staff, project, mothers):
    new = f"/projects/{project.slug}/broadcasts/new/"
    r = staff.post(new, {**form_data(time="25:00"), "action": "save"})
    assert r.status_code == 200 and not Broadcast.objects.exists()
    assert "VALIDATION_ERROR" in r.content.decode() and "25:00" in r.content.decode()
    r = staff.post(f"/projects/{project.slug}/broadcasts/preflight/", form_data(schedule_type="weekly"))
    assert "weekdays" in r.content.decode()
    r = staff.post(f"/projects/{project.slug}/broadcasts/preflight/", form_data(filters="no equals sign"))
    assert "write property=value" in r.content.decode()


def test_every_schedule_kind_and_the_recipient_choices_make_a_valid_body(staff, project, mothers):
    cases = [
        ({"schedule_type": "now"}, {"type": "now"}),
        (
            {"schedule_type": "daily", "date": in_days(1), "time": "08:00, 17:30", "count": "4"},
            {"type": "daily", "times": ["08:00", "17:30"], "count": 4, "start_date": in_days(1)},
        ),
        (
            {"schedule_type": "weekly", "weekdays": ["mon", "thu"], "interval": "2", "until": in_days(60)},
            {"type": "weekly", "weekdays": [0, 3], "interval": 2, "until": in_days(60)},
        ),
        ({"schedule_type": "monthly", "month_days": "1, last"}, {"type": "monthly", "month_days": [-1, 1]}),
    ]
    for fields, expected in cases:
        data = {**form_data(**fields), "case_ids": "m-1, m-2", "all_workers": "on", "action": "save"}
        if "date" not in fields:
            del data["date"]  # a repeating schedule starts today by default
        r = staff.post(f"/projects/{project.slug}/broadcasts/new/", {**data, "time_zone": "Asia/Kolkata"})
        assert r.status_code == 302, r.content.decode()[:3000]
        b = Broadcast.objects.latest("pk")
        assert {k: b.schedule[k] for k in expected} == expected
        assert b.recipients["case_ids"] == ["m-1", "m-2"] and b.recipients["mobile_workers"] == "all"
        if expected["type"] != "now":
            assert b.schedule["time_zone"] == "Asia/Kolkata"


def test_edit_pause_resume_cancel(staff, project, mothers):
    b = make_broadcast(project, recipients={"case_type": "mother", "filters": {"status": "due"}})
    page = f"/projects/{project.slug}/broadcasts/{b.pk}/"
    edit = staff.get(page + "edit/").content.decode()
    assert 'value="Clinic day"' in edit and "status=due" in edit and 'value="09:00"' in edit

    r = staff.post(
        page + "edit/",
        {
            **form_data(name="Clinic day", text="Changed {case.name}", filters="status=due"),
            "schedule_type": "daily",
            "date": in_days(2),
            "count": "2",
            "action": "save",
        },
    )
    assert r.status_code == 302
    b.refresh_from_db()
    assert b.content["text"] == "Changed {case.name}" and b.revision == 1  # same schedule, same recipients

    assert staff.post(page, {"action": "pause"}).status_code == 302
    b.refresh_from_db()
    assert b.status == Broadcast.PAUSED
    assert "Resume" in staff.get(page).content.decode()
    staff.post(page, {"action": "resume"})
    b.refresh_from_db()
    assert b.status == Broadcast.ACTIVE
    staff.post(page, {"action": "cancel"})
    b.refresh_from_db()
    assert b.status == Broadcast.CANCELLED
    r = staff.get(page + "edit/")
    assert r.status_code == 302 and r["Location"] == page
    r = staff.post(page, {"action": "resume"}, follow=True)
    assert errors.SCHEDULE_ENDED in r.content.decode()


def test_sends_with_failures_and_reasons(staff, project, mothers):
    sandbox_gateway()
    b = make_broadcast(project, schedule={"type": "now"})
    tick.tick()
    pipeline.deliver_due()
    page = staff.get(f"/projects/{project.slug}/broadcasts/{b.pk}/").content.decode()
    assert errors.INVALID_PHONE_NUMBER in page and "Invalid phone number" in page
    assert "Hello Asha" in page and "failed 1" in page
    failed = staff.get(f"/projects/{project.slug}/broadcasts/{b.pk}/?status=failed").content.decode()
    assert "Hello Asha" not in failed and 'id="message-' in failed
    listing = staff.get(f"/projects/{project.slug}/broadcasts/").content.decode()
    assert f'href="/projects/{project.slug}/broadcasts/{b.pk}/?status=failed">1</a>' in listing


def test_user_text_is_escaped(staff, project, mothers):
    b = make_broadcast(project, name=XSS, content={"text": XSS + " {case.name}"})
    for url in (f"/projects/{project.slug}/broadcasts/", f"/projects/{project.slug}/broadcasts/{b.pk}/"):
        page = staff.get(url).content.decode()
        assert XSS not in page and XSS_ESCAPED in page, url
    r = staff.post(f"/projects/{project.slug}/broadcasts/preflight/", form_data(text=XSS))
    assert XSS not in r.content.decode() and XSS_ESCAPED in r.content.decode()


def test_alert_pages_show_the_run_and_pause_resume(staff, project, mothers):
    a = make_alert(project)
    listing = staff.get(f"/projects/{project.slug}/alerts/").content.decode()
    assert "Due soon" in listing and "up to date" in listing and "open mother cases where status is due" in listing
    page = f"/projects/{project.slug}/alerts/{a.pk}/"
    staff.post(page, {"action": "pause"})
    a.refresh_from_db()
    assert a.status == ConditionalAlert.PAUSED
    staff.post(page, {"action": "resume"})
    a.refresh_from_db()
    assert a.status == ConditionalAlert.ACTIVE
    assert "running" in staff.get(page).content.decode()  # resuming starts a run over the cases


def test_case_page_lists_its_coming_messages(staff, project, mothers):
    make_alert(project)
    make_broadcast(project)
    page = staff.get(f"/projects/{project.slug}/cases/m-1/").content.decode()
    assert "Coming messages" in page
    assert "Your visit, Asha" in page and "Hello Asha" in page
    assert page.index("Your visit, Asha") < page.index("Hello Asha")  # the alert's comes first (tomorrow)
    assert f"{in_days(2)} 09:00" in page and "Africa/Nairobi" in page
    other = staff.get(f"/projects/{project.slug}/cases/m-2/").content.decode()
    assert "Hello Bad" in other and "Your visit" not in other  # the broadcast's, not the alert's (no match)


# --- one real browser run (skipped without Debian's Chromium; see tests/web/test_browser.py) --------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
@pytest.mark.django_db(transaction=True)
def test_broadcast_form_preflight_and_save_in_a_real_browser(live_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # The ORM before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project("browser", "Browser test")
    bulk_upsert(
        project,
        [
            CaseChange(
                case_id="ke-1", case_type="mother", name="Asha", properties={"contact_phone_number": "254711000001"}
            ),
            CaseChange(case_id="bad-1", case_type="mother", name="Bad", properties={"contact_phone_number": "12"}),
        ],
    )
    add_member(project, get_user_model().objects.create_user("operator", password="pw-operator-1"), "editor")
    shots = os.environ.get("CASEMSG_SCREENSHOTS", "")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(15_000)
            page.goto(f"{live_server.url}/projects/browser/broadcasts/new/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", "pw-operator-1")
            page.click("form#login button[type=submit]")
            page.wait_for_url("**/projects/browser/broadcasts/new/")

            page.fill("#id_name", "Browser <b>broadcast</b>")
            page.fill("#id_text", "Hello {case.name}")
            page.select_option("#id_case_type", "mother")
            page.check("input[name=schedule_type][value=once]")
            page.fill("#id_date", in_days(3))
            page.fill("#id_time", "10:30")
            page.evaluate("window.__noReload = true")
            page.click("#preview")
            page.wait_for_selector("#preflight td.recipients")
            assert page.evaluate("window.__noReload === true")  # swapped in by htmx, no page load
            assert page.inner_text("#preflight td.recipients") == "2"
            assert page.inner_text("#preflight td.sendable") == "1"
            assert "INVALID_PHONE_NUMBER" in page.inner_text("#preflight td.blocked")
            assert "Hello Asha" in page.inner_text("#preflight table.first-sends")
            if shots:
                page.screenshot(path=str(Path(shots) / "casemsg-broadcast-form.png"), full_page=True)

            page.click("#save")
            page.wait_for_url("**/projects/browser/broadcasts/*/")
            page.click("nav.project >> text=Broadcasts")
            page.wait_for_selector("#broadcasts")
            row = page.locator("#broadcasts tr", has_text="Browser <b>broadcast</b>")
            assert row.count() == 1 and "active" in row.inner_text()
            assert page.locator("#broadcasts b").count() == 0  # the name stays text
        finally:
            browser.close()
    assert Broadcast.objects.get().schedule["times"] == ["10:30"]
