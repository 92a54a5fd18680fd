"""A send's wall time is read from the instant it fires, never from the wall time planned: on the day New
York's clocks jump (2027-03-14, 02:00 → 03:00) a daily 02:30 send goes at 07:00Z, which is 03:00 EDT — the
case's coming sends, the broadcast's pre-flight, the API and the pages all say 03:00, not the 02:30 that did
not exist. On the day they go back (2027-11-07, 02:00 → 01:00) 01:30 happens twice: the label says which
(EDT, the first; EST, the second) and the API gives the offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from casemsg.cases.services import CaseChange, create_case
from casemsg.core import wallclock
from casemsg.scheduling import lifecycle, preflight, queries, services
from casemsg.scheduling.models import ScheduleInstance

NY = "America/New_York"
SPRING = datetime(2027, 3, 13, 12, 0, tzinfo=UTC)  # the day before the jump


def body(schedule: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "Pills",
        "content": {"text": "Take your pills"},
        "recipients": {"case_type": "mother"},
        "schedule": schedule,
    }


@pytest.fixture
def mother(project):
    return create_case(
        project,
        CaseChange(
            case_id="m-1",
            case_type="mother",
            name="Asha",
            properties={"contact_phone_number": "254711000001", "time_zone": NY},
        ),
    )


DAILY_0230 = {"type": "daily", "time": "02:30", "start_date": "2027-03-14", "count": 2}


def test_the_spring_forward_gap_is_labelled_with_the_time_it_fires(project, mother):
    b = services.create_broadcast(project, body(DAILY_0230), SPRING)
    inst = ScheduleInstance.objects.get(broadcast=b)
    assert inst.next_due_utc == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)  # 03:00 EDT: the send itself was right
    assert inst.next_local == "2027-03-14T03:00:00"  # and so is what is stored beside it now

    coming = queries.schedule_for_case(mother, 5, now=SPRING)
    assert [(c["due_utc"], c["local_time"], c["utc_offset"]) for c in coming] == [
        (datetime(2027, 3, 14, 7, 0, tzinfo=UTC), "2027-03-14T03:00:00", "-04:00"),
        (datetime(2027, 3, 15, 6, 30, tzinfo=UTC), "2027-03-15T02:30:00", "-04:00"),
    ]

    p = preflight.preflight(project, body(DAILY_0230), SPRING)
    first = p.first_sends[0]
    assert (first.due_utc, first.local_time, first.utc_offset) == (
        datetime(2027, 3, 14, 7, 0, tzinfo=UTC),
        "2027-03-14T03:00:00",
        "-04:00",
    )
    assert p.as_dict()["first_sends"][0]["local_time"] == "2027-03-14T03:00:00"


def test_the_fall_back_fold_says_which_0130(project, mother):
    # 05:00Z is 01:00 EDT: sends 30 and 90 minutes later are both 01:30 on New York's clock
    now = datetime(2027, 11, 7, 5, 0, tzinfo=UTC)
    alert = services.create_alert(
        project,
        {
            "name": "Check-in",
            "case_type": "mother",
            "criteria": [],
            "content": {"text": "How are you?"},
            "recipients": ["case"],
            "schedule": {"type": "offsets", "unit": "minutes", "offsets": [30, 90]},
        },
        now,
    )
    lifecycle.start_for_cases(alert, [mother], now, now)
    coming = queries.schedule_for_case(mother, 5, now=now)
    assert [(c["due_utc"], c["local_time"], c["utc_offset"]) for c in coming] == [
        (datetime(2027, 11, 7, 5, 30, tzinfo=UTC), "2027-11-07T01:30:00", "-04:00"),
        (datetime(2027, 11, 7, 6, 30, tzinfo=UTC), "2027-11-07T01:30:00", "-05:00"),
    ]
    assert [wallclock.shown(c["due_utc"], NY) for c in coming] == [
        "2027-11-07 01:30 EDT (the first 01:30)",
        "2027-11-07 01:30 EST (the second 01:30)",
    ]
    # a daily 01:30 that day is the first pass (the planned wall time's first occurrence)
    p = preflight.preflight(
        project, body({"type": "daily", "time": "01:30", "start_date": "2027-11-07", "count": 1}), now
    )
    assert (p.first_sends[0].due_utc, p.first_sends[0].utc_offset) == (
        datetime(2027, 11, 7, 5, 30, tzinfo=UTC),
        "-04:00",
    )


def test_labels_outside_a_transition_have_no_fold_note():
    assert wallclock.shown(datetime(2027, 3, 14, 6, 59, tzinfo=UTC), NY) == "2027-03-14 01:59 EST"
    assert wallclock.shown(datetime(2027, 3, 14, 7, 0, tzinfo=UTC), NY) == "2027-03-14 03:00 EDT"
    assert wallclock.shown(datetime(2026, 12, 7, 11, 5, tzinfo=UTC), "Africa/Nairobi") == "2026-12-07 14:05 EAT"
    assert wallclock.shown(datetime(2026, 12, 7, 11, 5, tzinfo=UTC), "Asia/Dubai") == "2026-12-07 15:05 UTC+04"
    assert wallclock.shown(None, NY) == "—"


def test_the_case_page_and_the_preflight_page_show_0300_edt(project, mother, editor):
    services.create_broadcast(project, body(DAILY_0230), SPRING)
    # the page reads the real clock: the instance's stored next event is what it lists first
    html = editor.get(f"/projects/{project.slug}/cases/m-1/").content.decode()
    assert "2027-03-14 03:00 EDT" in html
    assert "2027-03-14 02:30" not in html


def test_the_api_gives_the_wall_time_it_fires_and_its_offset(api, project, mother):
    # through the API the broadcast starts now (the real clock): a spring-forward day far ahead, 2099-03-08
    later = {**DAILY_0230, "start_date": "2099-03-08"}
    r = api.post("broadcasts", body(later))
    assert r.status_code == 201, r.content
    items = api.get("cases/m-1/schedule").json()["items"]
    assert [(i["due_utc"][:16], i["local_time"], i["utc_offset"]) for i in items] == [
        ("2099-03-08T07:00", "2099-03-08T03:00:00", "-04:00"),
        ("2099-03-09T06:30", "2099-03-09T02:30:00", "-04:00"),
    ]
    r = api.post("broadcasts/preflight", body(later))
    first = r.json()["first_sends"][0]
    assert (first["local_time"], first["utc_offset"]) == ("2099-03-08T03:00:00", "-04:00")
