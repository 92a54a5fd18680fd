"""Regression tests: far-future dates, broadcasts not sent twice, a run of a deleted alert, restarting a
completed alert schedule when something changed, the project's default zone, cancelling queued messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.core import errors
from casemsg.messaging.models import Message
from casemsg.scheduling import runner, services, tick
from casemsg.scheduling.models import Broadcast, ConditionalAlert, ScheduleInstance
from tests.scheduling.engine_helpers import cases, instances_of, messages


def _now() -> datetime:
    return datetime.now(UTC)


def test_dates_whose_utc_instant_overflows_are_refused_with_a_sentence(api):
    once = {"type": "once", "date": "9999-12-31", "time": "23:59", "time_zone": "Etc/GMT+12"}
    body = {"name": "Far", "content": {"text": "Hi"}, "recipients": {"case_type": "mother"}, "schedule": once}
    r = api.post("broadcasts", body)
    assert r.status_code == 422, r.content
    assert r.json()["error"]["code"] == errors.VALIDATION_ERROR
    assert "2200-12-31" in r.json()["error"]["message"]
    window = {"type": "daily", "start_date": "9999-12-31", "random_window": {"start": "09:00", "end": "12:00"}}
    r = api.post("broadcasts", {**body, "schedule": window})
    assert r.status_code == 422 and "schedule.start_date" in r.json()["error"]["message"]
    r = api.post("broadcasts", {**body, "schedule": {**once, "date": "2201-01-01"}})
    assert r.status_code == 422


def test_a_completed_recipient_does_not_get_a_now_broadcast_again(project):
    first, second = cases(project, {"name": "Asha"}, {"name": "Bahati"})
    now = _now()
    b = services.create_broadcast(
        project,
        {"name": "Now", "content": {"text": "Hi"}, "recipients": {"case_type": "mother"}, "schedule": {"type": "now"}},
        now,
    )
    # as while it was being sent: the first recipient's instance completed, the second's still runs
    done = ScheduleInstance.objects.filter(broadcast=b, case=first)
    ScheduleInstance.objects.filter(broadcast=b, case=second).update(
        active=True, end_reason="", ended_on=None, next_due_utc=now
    )
    Message.objects.filter(case=second).delete()
    Broadcast.objects.filter(pk=b.pk).update(status=Broadcast.ACTIVE)
    b.refresh_from_db()
    assert services.start_new_recipients(b) == 0  # `casemsg broadcasts run`
    (third,) = cases(project, {"name": "Chiku"})
    assert services.start_new_recipients(b) == 1  # a new case still starts
    services.update_broadcast(b, {"recipients": {"case_type": "mother", "case_ids": [first.case_id]}})
    assert done.count() == 1
    assert ScheduleInstance.objects.filter(broadcast=b, active=True).count() == 2
    tick.tick(_now() + timedelta(seconds=2))
    assert sorted(m.case_id for m in messages(b)) == sorted([first.pk, second.pk, third.pk])


def test_a_run_of_an_alert_deleted_meanwhile_stops(project):
    cases(project, {"risk": "high"}, {"risk": "high"})
    a = services.create_alert(
        project,
        {
            "name": "A",
            "case_type": "mother",
            "criteria": [{"property": "risk", "operator": "equal", "value": "high"}],
            "content": {"text": "Hi"},
            "schedule": {"type": "offsets", "unit": "hours", "offsets": [0]},
            "recipients": ["case"],
        },
    )
    stale = ConditionalAlert.objects.get(pk=a.pk)
    services.delete_alert(a)
    result = runner.run(stale)
    assert result.finished and result.evaluated == 0
    assert runner.continue_runs(0.5) == 0


def _alert(project, **over) -> ConditionalAlert:
    return services.create_alert(
        project,
        {
            "name": "Visit",
            "case_type": "mother",
            "criteria": [{"property": "risk", "operator": "equal", "value": "high"}],
            "content": {"text": "Visit"},
            "schedule": {"type": "offsets", "unit": "hours", "offsets": [0]},
            "recipients": ["case"],
            **over,
        },
    )


def _set(project, case: Case, **props: str) -> None:
    bulk_upsert(project, [CaseChange(case_id=case.case_id, properties=props)])


def _complete(a: ConditionalAlert) -> None:
    tick.tick(_now() + timedelta(seconds=1))
    assert all(not i.active and i.end_reason == "completed" for i in instances_of(a))


def test_a_completed_schedule_restarts_on_a_reset_value_change_only(project):
    (c,) = cases(project, {"risk": "low", "pregnancy": "1"})
    a = _alert(project, reset_property="pregnancy")
    _set(project, c, risk="high")
    assert len(instances_of(a)) == 1
    _complete(a)
    _set(project, c, note="x")  # still matching, same reset value: no restart
    assert len(instances_of(a)) == 1
    _set(project, c, pregnancy="2")
    assert [i.active for i in instances_of(a)] == [False, True]


def test_a_completed_schedule_restarts_when_the_case_matches_again(project):
    (c,) = cases(project, {"risk": "low"})
    a = _alert(project)
    _set(project, c, risk="high")
    _complete(a)
    _set(project, c, risk="high")  # re-evaluated, nothing changed
    _set(project, c, note="y")
    assert len(instances_of(a)) == 1
    _set(project, c, risk="low")
    _set(project, c, risk="high")
    assert [i.active for i in instances_of(a)] == [False, True]


def test_the_project_default_time_zone_change_moves_instances_of_contacts_without_a_zone(api, project):
    (plain,) = cases(project, {"name": "Plain"})
    (own,) = cases(project, {"name": "Own", "time_zone": "Asia/Kolkata"})
    day = (_now() + timedelta(days=3)).date().isoformat()
    b = services.create_broadcast(
        project,
        {
            "name": "D",
            "content": {"text": "Hi"},
            "recipients": {"case_type": "mother"},
            "schedule": {"type": "daily", "time": "09:00", "start_date": day, "count": 2},
        },
    )
    before = {i.case_id: i.next_due_utc for i in instances_of(b)}
    r = api.patch("settings", {"default_time_zone": "America/New_York"})
    assert r.status_code == 200, r.content
    after = {i.case_id: (i.next_due_utc, i.time_zone) for i in instances_of(b)}
    assert after[own.pk] == (before[own.pk], "Asia/Kolkata")
    assert after[plain.pk][1] == "America/New_York" and after[plain.pk][0] != before[plain.pk]
    assert after[plain.pk][0] is not None and after[plain.pk][0].hour in (13, 14)  # 09:00 New York


def test_cancelling_a_broadcast_fails_its_queued_messages(project):
    cases(project, {"name": "A"}, {"name": "B"})
    now = _now()
    at = now + timedelta(minutes=2)
    schedule = {
        "type": "daily",
        "time": at.strftime("%H:%M"),
        "start_date": at.date().isoformat(),
        "count": 2,
        "time_zone": "UTC",
    }
    b = services.create_broadcast(
        project,
        {"name": "D", "content": {"text": "Hi"}, "recipients": {"case_type": "mother"}, "schedule": {**schedule}},
        now,
    )
    tick.tick(now + timedelta(minutes=3))
    queued = messages(b)
    assert len(queued) == 2 and all(m.status == Message.QUEUED for m in queued)
    services.cancel_broadcast(b)
    assert {(m.status, m.error) for m in messages(b)} == {(Message.FAILED, errors.BROADCAST_CANCELLED)}
