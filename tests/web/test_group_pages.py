"""The groups pages, through Django's test client: the list, the form with its condition builder and its
preview, a group's page (members now; a static group's add, import, remove; delete), a viewer who changes
nothing; a group as the cases page's filter and in its CSV export; the broadcast and alert forms' group;
the pre-flight's and the case page's words about recipients read at each send. And the form in Chromium."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.groups import services as group_services
from casemsg.groups.models import Group, GroupMember
from casemsg.projects.services import add_member, create_project
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from tests.web.browser import CHROMIUM_MISSING, PHONE, assert_no_overflow, browser_session, login, new_page


def in_days(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


@pytest.fixture
def mothers(project):
    return bulk_upsert(
        project,
        [
            CaseChange(
                case_id=f"m-{i}",
                case_type="mother",
                name=f"Mother {i}",
                properties={"contact_phone_number": f"25471100010{i}", "district": d, "edd": in_days(10 * i)},
            )
            for i, d in enumerate(["North", "South", "North", "North"])
        ],
    )


def group_form(**over: str) -> dict[str, str]:
    return {
        "name": "North, due soon",
        "kind": "dynamic",
        "case_type": "mother",
        "cond_property_0": "district",
        "cond_operator_0": "equals",
        "cond_value_0": "North",
        "cond_property_1": "edd",
        "cond_operator_1": "within_next_days",
        "cond_value_1": "25",
        "contact_can_receive_sms": "yes",
        **over,
    }


def test_create_a_dynamic_group_with_its_preview(staff, project, mothers):
    base = f"/projects/{project.slug}/groups/"
    r = staff.get(base)
    assert r.status_code == 200 and "No groups yet" in r.content.decode()
    r = staff.post(base + "preview/", group_form(), HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert r.status_code == 200 and '<strong class="count">2</strong>' in html
    assert "district is North and edd is a date within the next 25 days and can receive SMS" in html
    r = staff.post(base + "new/", {**group_form(), "action": "preview"})
    assert '<strong class="count">2</strong>' in r.content.decode() and not Group.objects.exists()
    r = staff.post(base + "new/", {**group_form(), "action": "save"})
    g = Group.objects.get()
    assert r.status_code == 302 and r["Location"] == f"{base}{g.pk}/"
    assert g.conditions == [
        {"property": "district", "operator": "equals", "value": "North"},
        {"property": "edd", "operator": "within_next_days", "value": 25},
        {"contact": "can_receive_sms", "value": True},
    ]
    page = staff.get(f"{base}{g.pk}/").content.decode()
    assert 'data-case="m-0"' in page and 'data-case="m-2"' in page and 'data-case="m-3"' not in page
    listed = staff.get(base).content.decode()
    assert "North, due soon" in listed and "can receive SMS" in listed
    # the edit form shows the stored conditions, in words, and saves changes
    edit = staff.get(f"{base}{g.pk}/edit/").content.decode()
    assert 'value="district"' in edit and '<option value="within_next_days" selected>' in edit
    r = staff.post(f"{base}{g.pk}/edit/", {**group_form(cond_value_1="45", group_id=str(g.pk)), "action": "save"})
    assert r.status_code == 302
    assert 'data-case="m-3"' in staff.get(f"{base}{g.pk}/").content.decode()


def test_the_form_shows_a_refused_condition(staff, project, mothers):
    r = staff.post(f"/projects/{project.slug}/groups/new/", {**group_form(cond_value_1="soon"), "action": "save"})
    html = r.content.decode()
    assert "INVALID_CONDITION" in html and "condition 2" in html and not Group.objects.exists()
    group_services.create_group(project, {"name": "Taken"})
    r = staff.post(f"/projects/{project.slug}/groups/new/", {**group_form(name="Taken"), "action": "save"})
    assert "GROUP_EXISTS" in r.content.decode()


def test_static_group_members_on_its_page(staff, viewer, project, mothers):
    g = group_services.create_group(project, {"name": "Pilot", "case_ids": ["m-0"]})
    page = f"/projects/{project.slug}/groups/{g.pk}/"
    r = staff.post(page, {"action": "add", "case_ids": "m-1, nobody"}, follow=True)
    assert "1 added" in r.content.decode() and "nobody" in r.content.decode()
    csv = SimpleUploadedFile("m.csv", b"case_id\nm-2\nm-3\n", content_type="text/csv")
    staff.post(page, {"action": "import", "file": csv})
    assert set(GroupMember.objects.values_list("case__case_id", flat=True)) == {"m-0", "m-1", "m-2", "m-3"}
    staff.post(page, {"action": "remove", "case_id": ["m-1", "m-3"]})
    assert set(GroupMember.objects.values_list("case__case_id", flat=True)) == {"m-0", "m-2"}
    # a message to the group now: a broadcast of type now to its open cases
    r = staff.post(page, {"action": "message", "text": "Hello {case.name}"})
    b = Broadcast.objects.get()
    assert r["Location"] == f"/projects/{project.slug}/broadcasts/{b.pk}/" and b.recipients == {"group": g.pk}
    assert b.instances.count() == 2 and b.schedule == {"type": "now"}
    # a viewer reads, and changes nothing
    assert viewer.get(page).status_code == 200
    assert viewer.post(page, {"action": "add", "case_ids": "m-1"}).status_code == 403
    assert 'name="case_id"' not in viewer.get(page).content.decode()
    # delete, with a confirmation
    r = staff.post(page, {"action": "delete"})
    assert r["Location"].endswith("?confirm=delete") and Group.objects.exists()
    staff.post(page, {"action": "delete", "confirm": "yes"})
    assert not Group.objects.exists()


def test_the_cases_page_and_its_export_filter_by_group(staff, project, mothers):
    g = group_services.create_group(project, {"name": "Pilot", "case_ids": ["m-1", "m-3"]})
    html = staff.get(f"/projects/{project.slug}/cases/", {"group": g.pk}).content.decode()
    assert "Mother 1" in html and "Mother 3" in html and "Mother 0" not in html
    assert f'<option value="{g.pk}" selected>Pilot</option>' in html
    csv = b"".join(staff.get(f"/projects/{project.slug}/cases.csv", {"group": g.pk}).streaming_content).decode()
    assert [line.split(",")[0] for line in csv.splitlines()[1:]] == ["m-1", "m-3"]


def test_broadcast_and_alert_forms_take_a_group(staff, project, mothers):
    g = group_services.create_group(
        project,
        {
            "name": "North",
            "kind": "dynamic",
            "case_type": "mother",
            "conditions": [{"property": "district", "operator": "equals", "value": "North"}],
        },
    )
    body = {
        "name": "Tips",
        "channel": "sms",
        "text": "Hello {case.name}",
        "group": str(g.pk),
        "schedule_type": "daily",
        "time": "09:00",
        "count": "3",
        "time_zone": "UTC",
    }
    r = staff.post(f"/projects/{project.slug}/broadcasts/preflight/", body, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert '<td class="recipients">3</td>' in html and "Recipients are read again at each send" in html
    r = staff.post(f"/projects/{project.slug}/broadcasts/new/", {**body, "action": "save"})
    b = Broadcast.objects.get()
    assert r.status_code == 302 and b.recipients == {"group": g.pk} and b.refresh_due_utc is not None
    page = staff.get(f"/projects/{project.slug}/broadcasts/{b.pk}/").content.decode()
    assert "group “North” (open mother cases where district is North)" in page and "Read again at each send" in page
    assert (
        f'<option value="{g.pk}" selected>'
        in staff.get(f"/projects/{project.slug}/broadcasts/{b.pk}/edit/").content.decode()
    )
    # a case created afterwards: its page says it joins at the next send
    bulk_upsert(
        project,
        [
            CaseChange(
                case_id="new-1",
                case_type="mother",
                name="New",
                properties={"contact_phone_number": "254711000200", "district": "North"},
            )
        ],
    )
    case_page = staff.get(f"/projects/{project.slug}/cases/new-1/").content.decode()
    assert "Joins at the next send" in case_page and "No alert or broadcast will message this case" not in case_page

    alert = {
        "name": "Welcome",
        "case_type": "mother",
        "schedule_type": "offsets",
        "unit": "hours",
        "offsets": "0",
        "start_from": "matched",
        "recipients": ["case"],
        "group": str(g.pk),
        "channel": "sms",
        "text": "Hi",
        "time_zone": "recipient",
    }
    r = staff.post(f"/projects/{project.slug}/alerts/new/", alert)
    a = ConditionalAlert.objects.get()
    assert r.status_code == 302 and (a.group_id, a.recipients) == (g.pk, ["case"])
    assert "for members of group “North”" in staff.get(f"/projects/{project.slug}/alerts/{a.pk}/").content.decode()


# --- in Chromium -----------------------------------------------------------------------------------
@CHROMIUM_MISSING
@pytest.mark.django_db(transaction=True)
def test_the_condition_builder_in_a_real_browser(live_server):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    # The ORM before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project("browser", "Browser test")
    bulk_upsert(
        project,
        [
            CaseChange(
                case_id=f"m-{i}",
                case_type="mother",
                name=f"Mother {i}",
                properties={"contact_phone_number": f"25471100030{i}", "district": d},
            )
            for i, d in enumerate(["North", "South", "North"])
        ],
    )
    add_member(project, get_user_model().objects.create_user("ann", password="pw-ann-1"), "editor")
    shots = os.environ.get("CASEMSG_SCREENSHOTS", "")
    with browser_session() as browser:
        for viewport in ({"width": 1280, "height": 900}, PHONE):
            page = new_page(browser, viewport)
            login(page, live_server, "ann", "pw-ann-1")
            page.goto(f"{live_server.url}/projects/browser/groups/new/")
            page.fill("#id_name", f"North {viewport['width']}")
            page.fill("#id_case_type", "mother")
            page.fill("#id_cond_property_0", "district")
            page.select_option("#id_cond_operator_0", "equals")
            page.fill("#id_cond_value_0", "North")
            page.evaluate("window.__noReload = true")
            page.click("#preview")
            page.wait_for_selector("#group-preview strong.count")
            assert page.evaluate("window.__noReload === true")  # swapped in by htmx, no page load
            assert page.inner_text("#group-preview strong.count") == "2"
            assert "district is North" in page.inner_text("#group-preview .summary")
            assert_no_overflow(page)
            if shots:
                page.screenshot(path=str(Path(shots) / f"casemsg-group-form-{viewport['width']}.png"), full_page=True)
            page.click("#save")
            page.wait_for_url("**/projects/browser/groups/*/")
            assert page.locator("table.members tr[data-case]").count() == 2
            assert_no_overflow(page)
            page.close()
    assert Group.objects.count() == 2
