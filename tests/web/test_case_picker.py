"""The searchable case picker (casemsg/web/views/picker.py): its search is the project's own (another
project's cases never show), finds a case by part of its name, its case id or its phone number, shows at most
10 and says when more match, escapes what it shows, and refuses a field name that is not one (400). In
Chromium: on a survey's page, type part of a name, pick the case, and the start form sends that case; on a
static group's page at 390 px, pick a case and add it."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.gateways import services as gateways
from casemsg.groups import services as group_services
from casemsg.groups.models import Group
from casemsg.projects.services import add_member, create_project
from casemsg.surveys import services as surveys
from casemsg.surveys.models import SurveySession
from tests.surveys.test_sessions import anc
from tests.web.browser import (
    CHROMIUM_MISSING,
    DESKTOP,
    PHONE,
    assert_every_field_labelled,
    assert_no_overflow,
    browser_session,
    csp_events,
    login,
    new_page,
    watch_csp_violations,
)


def mothers(project, n: int = 0, **named: str) -> None:
    rows = [
        CaseChange(case_id=f"m-{i}", case_type="mother", name=f"Mother {i}", properties={"district": "North"})
        for i in range(n)
    ]
    rows += [
        CaseChange(
            case_id=cid,
            case_type="mother",
            name=name,
            properties={"contact_phone_number": f"2547110000{i:02d}", "contact_phone_number_is_verified": "1"},
        )
        for i, (cid, name) in enumerate(named.items(), start=1)
    ]
    bulk_upsert(project, rows)


def pick_url(project, **params: str) -> str:
    return f"/projects/{project.slug}/case-picker/?{urlencode(params)}"


def test_search_is_scoped_bounded_and_escaped(staff, project, other_project):
    mothers(project, 15, asha="Asha <b>Wanjiru</b>")
    mothers(other_project, 0, theirs="Asha Other")
    html = staff.get(pick_url(project, field="case_id", pick_q="asha")).content.decode()
    assert 'data-case="asha"' in html and "Asha &lt;b&gt;Wanjiru&lt;/b&gt;" in html and "<b>" not in html
    assert "theirs" not in html  # another project's case
    html = staff.get(pick_url(project, field="case_id", pick_q="Mother")).content.decode()
    assert html.count('class="pick"') == 10 and "More cases match" in html
    html = staff.get(pick_url(project, field="case_id", pick_q="0711000001".lstrip("0"))).content.decode()
    assert 'data-case="asha"' in html  # by part of the phone number
    html = staff.get(pick_url(project, field="case_id", pick_q="nobody")).content.decode()
    assert "No case matches" in html
    assert staff.get(pick_url(project, field="case_id", pick_q="")).content.decode().strip() == ""


def test_picking_fills_the_field_and_bad_fields_are_refused(staff, project):
    mothers(project, 0, asha="Asha")
    html = staff.get(pick_url(project, field="case_id", key="case_id", pick="asha", label="Case id")).content.decode()
    assert 'name="case_id" id="id_case_id" value="asha"' in html and 'id="picked-case_id"' in html
    html = staff.get(pick_url(project, field="case_id", pick="nobody")).content.decode()
    assert "no such case" in html
    for bad in ("case id", 'x" onmouseover="alert(1)', "Case", "a" * 50):
        r = staff.get(pick_url(project, field=bad, pick_q="asha"))
        assert r.status_code == 400 and r.content.startswith(b"VALIDATION_ERROR"), bad


def test_a_viewer_may_search_and_a_stranger_may_not(viewer, project, client):
    mothers(project, 0, asha="Asha")
    assert 'data-case="asha"' in viewer.get(pick_url(project, field="case_id", pick_q="Asha")).content.decode()
    assert client.get(pick_url(project, field="case_id", pick_q="Asha")).status_code == 302  # to the login page


@CHROMIUM_MISSING
@pytest.mark.django_db(transaction=True)
def test_pick_a_case_by_part_of_its_name_and_start_the_survey(live_server):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    # Every ORM call before Playwright starts: its sync API runs an event loop in this thread.
    project, _key = create_project("pick", "Picker", time_zone="Africa/Nairobi")
    gateways.add_gateway("sandbox", "sandbox")
    gateways.map_prefix("*", "sandbox")
    mothers(project, 3, asha="Asha Wanjiru", bora="Bora Achieng")
    survey = surveys.create_survey(project, anc())
    group = group_services.create_group(project, {"name": "Pilot"})
    user = get_user_model().objects.create_user("pia", password="pw-pia-1")
    add_member(project, user, "editor")

    with browser_session() as browser:
        page = new_page(browser, DESKTOP)
        csp = watch_csp_violations(page)
        login(page, live_server, "pia", "pw-pia-1")
        page.goto(f"{live_server.url}/projects/pick/surveys/{survey.pk}/")
        page.fill("#id_case_id_q", "anjir")  # part of "Wanjiru"
        page.wait_for_selector("#picker-case_id-results button.pick")
        buttons = page.locator("#picker-case_id-results button.pick")
        assert buttons.count() == 1 and "Asha Wanjiru" in buttons.inner_text()
        buttons.click()
        page.wait_for_selector("#picked-case_id")
        assert page.input_value("#id_case_id") == "asha"
        assert "Asha Wanjiru" in page.inner_text("#picked-case_id")
        assert_every_field_labelled(page)
        page.click("#start")
        page.wait_for_url("**/survey-sessions/?case_id=asha*")
        assert csp == [] and csp_events(page) == []

        phone = new_page(browser, PHONE)
        login(phone, live_server, "pia", "pw-pia-1")
        phone.goto(f"{live_server.url}/projects/pick/groups/{group.pk}/")
        phone.fill("#id_pick_one_q", "Bora")
        phone.click("#picker-pick_one-results button.pick")
        phone.wait_for_selector("#picked-pick_one")
        assert_no_overflow(phone)
        phone.click("#add-one-button")
        phone.wait_for_load_state("load")
        assert csp_events(phone) == []

    session = SurveySession.objects.get(survey_version__survey=survey)
    assert session.case.case_id == "asha"
    assert list(Group.objects.get(pk=group.pk).members.values_list("case__case_id", flat=True)) == ["bora"]


def test_the_simulator_asks_for_a_case_with_the_picker(staff, project):
    mothers(project, 0, asha="Asha")
    html = staff.get(f"/projects/{project.slug}/simulator/").content.decode()
    assert 'id="picker-case"' in html and '<select name="case"' not in html  # no list of every case
    html = staff.get(f"/projects/{project.slug}/simulator/", {"case": "asha"}).content.decode()
    assert 'name="case" id="id_case" value="asha"' in html and 'id="picked-case"' in html
