"""An alert whose first send is already past when a case matches says why on its page ("the first send
(2020-01-01 09:00 EAT) was already past when the schedule started …: nothing was due") rather than a bare
"1 ended, 0 sent"; the reason is recorded on the schedule (`last_event.reason`, `first_due_utc`), and the
other reasons a schedule ends are said in words too."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from casemsg.cases.services import CaseChange, bulk_upsert, update_case
from casemsg.scheduling import queries, runner, services
from casemsg.scheduling.models import ScheduleInstance


def make(project, visits: dict[str, str]):
    project.default_time_zone = "Africa/Nairobi"
    project.save(update_fields=["default_time_zone"])
    cases = bulk_upsert(
        project,
        [
            CaseChange(
                case_id=cid,
                case_type="mother",
                name=cid,
                properties={"contact_phone_number": f"25471100000{i}", "visit": visit},
            )
            for i, (cid, visit) in enumerate(visits.items(), start=1)
        ],
    )
    a = services.create_alert(
        project,
        {
            "name": "Visit reminder",
            "case_type": "mother",
            "criteria": [{"property": "visit", "operator": "has_value"}],
            "content": {"text": "Your visit"},
            "recipients": ["case"],
            "schedule": {
                "type": "daily",
                "time": "09:00",
                "count": 1,
                "start": {"from": "property", "property": "visit", "days": 0},
            },
        },
    )
    runner.run(a)
    return a, {c.case_id: c for c in cases}


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_first_send_in_the_past_says_why(project, staff):
    a, _cases = make(project, {"past": "2020-01-01"})
    (inst,) = ScheduleInstance.objects.filter(alert=a)
    assert not inst.active and inst.end_reason == "completed"
    assert inst.last_event["reason"] == "first_send_past"
    assert inst.last_event["first_due_utc"] == datetime(2020, 1, 1, 6, 0, tzinfo=UTC).isoformat()

    page = text(staff.get(f"/projects/{project.slug}/alerts/{a.pk}/").content.decode())
    assert "1 ended: why" in page
    m = re.search(r"Ended schedules 1 : (.*?) Failures", page)
    assert m is not None, page
    assert m.group(1).startswith(
        "the first send (2020-01-01 09:00 EAT) was already past when the schedule started (2"
    ), m.group(1)
    assert m.group(1).endswith("EAT): nothing was due")


def test_each_reason_in_words(project):
    a, cases = make(project, {"past": "2020-01-01", "soon": "2099-01-01", "gone": "2099-02-01"})
    update_case(project, cases["gone"], CaseChange(properties={"visit": ""}))  # no longer matches
    runner.run(a)
    got = {(e.reason, e.count): e.text for e in queries.ended(a, "Africa/Nairobi")}
    assert got[("no_longer_matches", 1)] == "the case no longer matched"
    assert got[("completed", 1)].startswith("the first send (2020-01-01 09:00 EAT)")
    assert ScheduleInstance.objects.filter(alert=a, active=True).count() == 1  # "soon" waits for 2099
