"""The conditional alert form, through Django's test client: create, list with the run progress, edit,
and a refused criterion shown on the form."""

from __future__ import annotations

from typing import Any

import pytest

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.scheduling import runner
from casemsg.scheduling.models import ConditionalAlert


@pytest.fixture
def mothers(project):
    return bulk_upsert(
        project,
        [
            CaseChange(
                case_id=f"m-{i}",
                case_type="mother",
                name=f"Mother {i}",
                properties={"contact_phone_number": f"25471100000{i}", "risk": "high" if i % 2 else "low"},
            )
            for i in range(1, 5)
        ],
    )


def form_data(**over: Any) -> dict[str, Any]:
    return {
        "name": "High risk visit",
        "case_type": "mother",
        "crit_property_0": "risk",
        "crit_operator_0": "equal",
        "crit_value_0": "high",
        "schedule_type": "offsets",
        "unit": "hours",
        "offsets": "0, 2, 24",
        "timing": "time",
        "time_zone": "recipient",
        "start_from": "matched",
        "recipients": ["case", "owner"],
        "reset_property": "pregnancy",
        "channel": "sms",
        "text": "Visit {case.name}",
        "text_sw": "Tembelea {case.name}",
        **over,
    }


def test_create_list_edit_and_a_bad_criterion_through_the_form(staff, project, mothers):
    alerts_url = f"/projects/{project.slug}/alerts/"
    page = staff.get(alerts_url)
    assert page.status_code == 200 and f"{alerts_url}new/" in page.content.decode()
    assert staff.get(f"{alerts_url}new/").status_code == 200

    r = staff.post(f"{alerts_url}new/", form_data())
    assert r.status_code == 302, r.content.decode()[:2000]
    a = ConditionalAlert.objects.get(project=project)
    assert a.criteria == [{"property": "risk", "operator": "equal", "value": "high"}]
    assert a.recipients == ["case", "owner"] and a.reset_property == "pregnancy"
    assert a.schedule["offsets"] == [0, 2, 24] and a.content["translations"] == {"sw": "Tembelea {case.name}"}
    runner.run(a)
    listed = staff.get(alerts_url).content.decode()
    # its rule run, done ("100" matched only the old inline stylesheet's "100%")
    assert "High risk visit" in listed and "up to date" in listed

    edit_url = f"{alerts_url}{a.pk}/edit/"
    shown = staff.get(edit_url).content.decode()
    assert 'value="High risk visit"' in shown and 'value="0, 2, 24"' in shown
    timed = form_data(
        name="Morning visit",
        schedule_type="weekly",
        timing="window",
        window_start="09:00",
        window_end="12:00",
        weekdays=["tue"],
        start_from="property",
        start_property="edd",
        start_days="-7",
        count="4",
    )
    r = staff.post(edit_url, timed)
    assert r.status_code == 302, r.content.decode()[:2000]
    a.refresh_from_db()
    assert a.name == "Morning visit" and a.schedule["random_window"] == {"start": "09:00", "end": "12:00"}
    assert a.schedule["start"] == {"from": "property", "property": "edd", "days": -7}

    bad = staff.post(edit_url, form_data(crit_operator_0="days_before", crit_value_0="soon"))
    assert bad.status_code == 200
    assert "INVALID_CRITERION" in bad.content.decode()
    bad = staff.post(f"{alerts_url}new/", form_data(crit_operator_0="regex", crit_value_0="(unclosed"))
    assert bad.status_code == 200 and "INVALID_REGEX" in bad.content.decode()
    bad = staff.post(f"{alerts_url}new/", form_data(offsets="soon", case_type="nobody"))
    assert bad.status_code == 200 and "error" in bad.content.decode().lower()
    assert ConditionalAlert.objects.count() == 1
    detail = staff.get(f"{alerts_url}{a.pk}/").content.decode()
    assert f"{edit_url}" in detail
