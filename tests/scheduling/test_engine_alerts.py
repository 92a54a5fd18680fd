"""Conditional-alert schedules in the engine: offsets and timed events, starts from when the case matched
or from a date property, times read from a property or picked in a window, the case / owner / parent
recipients, recomputation, and one case's coming sends (schedule_for_case). Instants are explicit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from casemsg.cases.models import Case
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.scheduling import lifecycle, queries, services, tick
from casemsg.scheduling.models import ConditionalAlert, ScheduleInstance
from casemsg.workers.services import WorkerChange, create_worker
from tests.conftest import sandbox_gateway
from tests.scheduling.engine_helpers import (
    NAIROBI,
    NEW_YORK,
    broadcast,
    cases,
    due_times,
    instances_of,
    messages,
    run_ticks,
    utc,
)

NOW = utc(2027, 7, 1, 12)
HIGH = [{"property": "risk", "operator": "equal", "value": "high"}]


def alert(project, schedule: dict, recipients=("case",), **body) -> ConditionalAlert:
    data = {
        "name": body.pop("name", "Visit reminder"),
        "case_type": "mother",
        "criteria": HIGH,
        "content": body.pop("content", {"text": "Visit {case.name}"}),
        "schedule": schedule,
        "recipients": list(recipients),
        **body,
    }
    return services.create_alert(project, data, NOW)


def set_props(case: Case, **props: str) -> None:
    """Set properties without the hook (the test then recomputes at its own instant)."""
    Case.objects.filter(pk=case.pk).update(properties={**case.properties, **props})
    case.refresh_from_db()


def test_offsets_from_when_the_case_matched_to_the_case_its_owner_and_its_parent(project):
    worker = create_worker(project, WorkerChange(username="chw-1", phone_numbers=["254711000001"]))
    (household,) = cases(project, {"name": "Household 7"}, case_type="household")
    (mother,) = cases(project, {"risk": "high", "name": "Amina"}, owner_id="chw-1", parent_id=household.case_id)
    a = alert(project, {"type": "offsets", "unit": "hours", "offsets": [0, 2, 24]}, ("case", "owner", "parent"))
    assert lifecycle.start_for_cases(a, [mother], NOW, NOW) == 3
    assert lifecycle.start_for_cases(a, [mother], NOW, NOW) == 0  # already running
    run_ticks(NOW, NOW + timedelta(days=2), timedelta(minutes=30))
    got = messages(a)
    assert len(got) == 9 and len({m.send_key for m in got}) == 9
    by_role = {}
    for m in got:
        role = "owner" if m.worker_id else ("parent" if m.case_id == household.pk else "case")
        by_role.setdefault(role, []).append(m.next_attempt_on)
    expected = [NOW, NOW + timedelta(hours=2), NOW + timedelta(hours=24)]
    assert by_role == {"case": expected, "owner": expected, "parent": expected}
    assert {m.worker_id for m in got if m.worker_id} == {worker.pk}
    assert all(not i.active and i.end_reason == lifecycle.COMPLETED for i in instances_of(a))
    # a completed schedule does not restart while the case keeps matching
    assert lifecycle.start_for_cases(a, [mother], NOW + timedelta(days=3), NOW) == 0


def test_offsets_repeat_every_count_times(project):
    (c,) = cases(project, {"risk": "high"})
    a = alert(project, {"type": "offsets", "unit": "minutes", "offsets": [0, 30], "repeat_every": 1440, "count": 2})
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    run_ticks(NOW, NOW + timedelta(days=3), timedelta(minutes=15))
    day = timedelta(days=1)
    half = timedelta(minutes=30)
    assert due_times(messages(a)) == [NOW, NOW + half, NOW + day, NOW + day + half]


def test_timed_from_a_date_property_and_its_change(project):
    (c,) = cases(project, {"risk": "high", "time_zone": NAIROBI, "edd": "2027-07-10"})
    a = alert(
        project,
        {"type": "daily", "time": "09:00", "count": 3, "start": {"from": "property", "property": "edd", "days": -2}},
    )
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    (inst,) = instances_of(a)
    assert (inst.next_due_utc, inst.next_local) == (utc(2027, 7, 8, 6), "2027-07-08T09:00:00")
    tick.tick(utc(2027, 7, 8, 6))
    # the date moves: the events still to come follow it (the count already sent is kept)
    set_props(c, edd="2027-07-20")
    assert lifecycle.recompute_for_cases([c.pk], utc(2027, 7, 8, 7), changed={c.pk: {"edd"}}) == 1
    inst.refresh_from_db()
    assert (inst.iteration, inst.next_due_utc) == (1, utc(2027, 7, 19, 6))
    run_ticks(utc(2027, 7, 19, 0), utc(2027, 7, 22, 0), timedelta(hours=1))
    assert due_times(messages(a)) == [utc(2027, 7, 8, 6), utc(2027, 7, 19, 6), utc(2027, 7, 20, 6)]


def test_a_missing_date_property_waits_until_it_is_set(project):
    (c,) = cases(project, {"risk": "high"})
    a = alert(
        project,
        {
            "type": "offsets",
            "unit": "days",
            "offsets": [0],
            "start": {"from": "property", "property": "edd", "days": -1, "time": "08:00"},
        },
    )
    assert lifecycle.start_for_cases(a, [c], NOW, NOW) == 1
    (inst,) = instances_of(a)
    assert (inst.active, inst.next_due_utc, inst.last_event["outcome"]) == (True, None, "waiting")
    set_props(c, edd="2027-07-05")
    lifecycle.recompute_for_cases([c.pk], NOW, changed={c.pk: {"edd"}})
    inst.refresh_from_db()
    assert inst.next_due_utc == utc(2027, 7, 4, 8) and inst.last_event == {}  # the project's zone: UTC


def test_a_time_read_from_a_case_property(project):
    (c,) = cases(project, {"risk": "high", "time_zone": NAIROBI, "visit_time": "14:30"})
    a = alert(project, {"type": "daily", "time_property": "visit_time", "count": 2})
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    run_ticks(NOW, NOW + timedelta(days=3), timedelta(minutes=30))
    # matched on 1 July at 15:00 Nairobi: 14:30 has passed that day, so the 2nd and the 3rd (the count
    # starts at the first event after the match)
    assert due_times(messages(a)) == [utc(2027, 7, 2, 11, 30), utc(2027, 7, 3, 11, 30)]


def test_a_random_time_in_a_window_is_inside_it_and_stable(project):
    cs = cases(project, *({"risk": "high", "time_zone": NEW_YORK} for _ in range(5)))
    a = alert(project, {"type": "daily", "random_window": {"start": "09:00", "end": "12:00"}, "count": 2})
    lifecycle.start_for_cases(a, cs, NOW, NOW)
    first = {i.pk: i.next_due_utc for i in instances_of(a)}
    for due in first.values():
        local = due.astimezone(ZoneInfo(NEW_YORK))
        assert local.date() == datetime(2027, 7, 1).date() or local.date() == datetime(2027, 7, 2).date()
        assert 9 <= local.hour < 12
    assert len(set(first.values())) > 1  # recipients are spread over the window
    lifecycle.recompute_for_cases([c.pk for c in cs], NOW + timedelta(minutes=1))
    assert {i.pk: i.next_due_utc for i in instances_of(a)} == first  # recomputing picks the same minute


def test_the_owner_time_zone_is_the_workers(project):
    create_worker(project, WorkerChange(username="chw-9", time_zone=NEW_YORK))
    (c,) = cases(project, {"risk": "high", "time_zone": NAIROBI}, owner_id="chw-9")
    a = alert(project, {"type": "daily", "time": "09:00", "count": 1}, ("case", "owner"))
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    got = {i.role: (i.time_zone, i.next_due_utc) for i in instances_of(a)}
    # matched at 12:00 UTC: 09:00 has passed in Nairobi (06:00 UTC), not yet in New York (13:00 UTC); a
    # count of 1 is one message either way
    assert got == {"case": (NAIROBI, utc(2027, 7, 2, 6)), "owner": (NEW_YORK, utc(2027, 7, 1, 13))}


def test_ending_and_matching_again_starts_a_new_instance_with_new_send_keys(project):
    (c,) = cases(project, {"risk": "high"})
    a = alert(project, {"type": "offsets", "unit": "hours", "offsets": [0, 1]})
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    tick.tick(NOW)
    assert lifecycle.end_for_cases(a, [c.pk], "no_longer_matches", NOW) == 1
    assert tick.tick(NOW + timedelta(hours=1)) == 0
    assert lifecycle.start_for_cases(a, [c], NOW + timedelta(hours=2), NOW + timedelta(hours=2)) == 1
    tick.tick(NOW + timedelta(hours=2))
    old, new = instances_of(a)
    assert (old.end_reason, new.active) == ("no_longer_matches", True)
    assert [m.send_key for m in messages(a)] == [f"si:{old.pk}:0", f"si:{new.pk}:0"]


def test_alert_edits_content_only_keeps_the_schedule_a_schedule_edit_restarts_it(project):
    (c,) = cases(project, {"risk": "high"})
    a = alert(project, {"type": "offsets", "unit": "hours", "offsets": [0, 5]})
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    tick.tick(NOW)
    services.update_alert(a, {"content": {"text": "New words"}}, NOW + timedelta(minutes=1))
    assert a.revision == 1 and len(instances_of(a)) == 1
    services.update_alert(
        a, {"schedule": {"type": "offsets", "unit": "hours", "offsets": [0, 3, 6]}}, NOW + timedelta(hours=1)
    )
    assert a.revision == 2
    old, new = instances_of(a)
    # counted from when the case matched; events from the change on
    assert (old.end_reason, new.anchor_utc, new.iteration, new.next_due_utc) == (
        lifecycle.SCHEDULE_CHANGED,
        NOW,
        1,
        NOW + timedelta(hours=3),
    )
    a.refresh_from_db()
    assert a.run_status == ConditionalAlert.RUNNING  # the rules re-run over the cases


def test_alert_recipients_edit_ends_removed_roles_and_starts_added_ones(project):
    create_worker(project, WorkerChange(username="chw-1"))
    (c,) = cases(project, {"risk": "high"}, owner_id="chw-1")
    a = alert(project, {"type": "offsets", "unit": "hours", "offsets": [0, 5]}, ("case",))
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    services.update_alert(a, {"recipients": ["owner"]}, NOW + timedelta(minutes=1))
    got = {(i.role, i.active) for i in instances_of(a)}
    assert got == {("case", False), ("owner", True)}


def test_pause_and_resume_an_alert(project):
    (c,) = cases(project, {"risk": "high"})
    a = alert(project, {"type": "offsets", "unit": "hours", "offsets": [0, 1, 2, 50]})
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    services.pause_alert(a, NOW - timedelta(minutes=1))
    assert tick.tick(NOW + timedelta(hours=3)) == 0
    services.resume_alert(a, NOW + timedelta(hours=3))
    tick.tick(NOW + timedelta(hours=3))
    # the 0 h and 1 h events are superseded by the 2 h one (all within the lateness): one message
    assert [m.send_key.rsplit(":", 1)[1] for m in messages(a)] == ["2"]
    (inst,) = instances_of(a)
    assert inst.next_due_utc == NOW + timedelta(hours=50)


def test_schedule_for_case_lists_the_next_sends_across_alerts_and_broadcasts(project):
    (c,) = cases(project, {"risk": "high", "time_zone": NAIROBI, "language_code": "sw", "name": "Amina"})
    a = alert(
        project,
        {"type": "offsets", "unit": "hours", "offsets": [1, 30]},
        content={"translations": {"en": "Visit {case.name}", "sw": "Tembelea {case.name}"}},
    )
    lifecycle.start_for_cases(a, [c], NOW, NOW)
    b = broadcast(
        project,
        NOW,
        {"type": "daily", "time": "09:00", "start_date": "2027-07-02"},
        {"case_ids": [c.case_id]},
        name="Daily tip",
    )
    items = queries.schedule_for_case(c, 4, NOW)
    assert [(i["source"], i["due_utc"]) for i in items] == [
        ("alert", NOW + timedelta(hours=1)),
        ("broadcast", utc(2027, 7, 2, 6)),
        ("alert", NOW + timedelta(hours=30)),
        ("broadcast", utc(2027, 7, 3, 6)),
    ]
    first = items[0]
    assert (first["id"], first["name"], first["language"], first["text"], first["time_zone"]) == (
        a.pk,
        "Visit reminder",
        "sw",
        "Tembelea Amina",
        NAIROBI,
    )
    assert items[1]["local_time"] == "2027-07-02T09:00:00" and items[1]["id"] == b.pk
    assert items[1]["text"] == "Hello Amina"
    assert len(queries.schedule_for_case(c, 2, NOW)) == 2


@pytest.mark.parametrize("start_role", ["case"])
def test_instances_of_an_alert_per_role_are_unique_while_active(project, start_role):
    (c,) = cases(project, {"risk": "high"})
    a = alert(project, {"type": "offsets", "unit": "hours", "offsets": [0, 5]})
    lifecycle.start_for_cases(a, [c, c], NOW, NOW)  # the same case twice in one call
    assert ScheduleInstance.objects.filter(alert=a, role=start_role, active=True).count() == 1


def test_a_message_to_the_owner_renders_the_case_it_is_about(project):
    sandbox_gateway()
    create_worker(project, WorkerChange(username="chw-5", name="Juma", phone_numbers=["254711000005"]))
    (household,) = cases(project, {"name": "Household 9", "village": "Kisumu"}, case_type="household")
    (mother,) = cases(
        project, {"risk": "high", "name": "Amina", "edd": "2027-08-01"}, owner_id="chw-5", parent_id=household.case_id
    )
    text = "{recipient.name}: visit {case.name} (due {case.edd}) in {case.parent.village}"
    a = alert(project, {"type": "offsets", "unit": "hours", "offsets": [0]}, ("case", "owner"), content={"text": text})
    lifecycle.start_for_cases(a, [mother], NOW, NOW)
    tick.tick(NOW)
    # the alert's instants are in 2027: make its messages due on the real clock, then send them
    Message.objects.update(next_attempt_on=datetime.now(UTC) - timedelta(minutes=1))
    pipeline.deliver_due()
    sent = {("owner" if m.worker_id else "case"): m for m in messages(a)}
    assert sent["owner"].text == "Juma: visit Amina (due 2027-08-01) in Kisumu"
    assert sent["owner"].case_id is None and sent["owner"].status == "sent"
    assert sent["case"].text == "Amina: visit Amina (due 2027-08-01) in Kisumu"
