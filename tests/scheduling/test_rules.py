"""Conditional alerts over cases: the rule run (casemsg.scheduling.runner) and the case after-change hook
(casemsg.scheduling.hooks). The operators themselves are in test_rules_matching.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, bulk_upsert, delete_case, set_closed, update_case
from casemsg.messaging.models import Message
from casemsg.scheduling import contents, lifecycle, runner, schedules, services, tick
from casemsg.scheduling.models import ConditionalAlert, ScheduleInstance
from casemsg.scheduling.rules import Today, matches, parse_criteria

NOW = datetime(2024, 3, 20, 9, 0, tzinfo=UTC)
HIGH = [{"property": "risk", "operator": "equal", "value": "high"}]


OFFSETS = schedules.parse_alert_schedule({"type": "offsets", "unit": "days", "offsets": [1, 3]}).as_json()


def _alert(
    project, criteria=HIGH, reset_property: str = "", case_type: str = "mother", schedule=OFFSETS, **fields
) -> ConditionalAlert:
    now = timezone.now()
    return ConditionalAlert.objects.create(
        project=project,
        name="Visit reminder",
        case_type=case_type,
        criteria=criteria,
        content=contents.parse_content({"channel": "sms", "text": "Please visit the clinic"}, project).as_json(),
        schedule=schedule,
        recipients=["case"],
        reset_property=reset_property,
        created_on=now,
        modified_on=now,
        **fields,
    )


def _case(project, case_type: str = "mother", **props: Any) -> Case:
    return bulk_upsert(project, [CaseChange(case_type=case_type, properties=props)])[0]


def _edit(project, case: Case, **props: Any) -> Case:
    return update_case(project, Case.objects.get(pk=case.pk), CaseChange(properties=props))


def _active(alert: ConditionalAlert) -> list[int]:
    """The source cases of the alert's active instances (repeats kept: a duplicate would show)."""
    qs = ScheduleInstance.objects.filter(alert=alert, active=True)
    return sorted(qs.values_list("source_case_id", flat=True))


def _random_cases(project, n: int, seed: int = 3) -> list[Case]:
    rng = random.Random(seed)
    changes = []
    for i in range(n):
        props: dict[str, Any] = {"visits": str(rng.randrange(10))}
        if rng.random() < 0.7:
            props["risk"] = rng.choice(["high", "low", "HIGH", ""])
        if rng.random() < 0.8:
            props["edd"] = (NOW.date() + timedelta(days=rng.randrange(-20, 40))).isoformat()
        if rng.random() < 0.5:
            props["time_zone"] = rng.choice(["Asia/Kolkata", "America/Los_Angeles", "nowhere", ""])
        changes.append(
            CaseChange(
                case_type="mother" if i % 7 else "child",
                properties=props,
                closed=i % 11 == 0,
            )
        )
    return bulk_upsert(project, changes)


RICH = [
    {"property": "risk", "operator": "regex", "value": "^(high|HIGH)$"},
    {"property": "edd", "operator": "days_before", "value": 14},
    {"property": "visits", "operator": "not_equal", "value": "0"},
]


def _expected(project, raw: list[dict], now: datetime) -> list[int]:
    criteria, today = parse_criteria(raw), Today(now, project.default_time_zone)
    cases = Case.objects.filter(project=project, case_type="mother", closed=False)
    return sorted(c.pk for c in cases if matches(c, criteria, today))


# --- the rule run ------------------------------------------------------------------------------------


SCHEDULES = {
    # one INSERT … SELECT per chunk (the events depend on the zone alone)
    "offsets from matched": {"type": "offsets", "unit": "days", "offsets": [1, 3]},
    "daily at 09:00 local": {"type": "daily", "time": "09:00", "count": 3},
    # case by case through lifecycle.start_for_cases
    "from a date property": {
        "type": "offsets",
        "unit": "days",
        "offsets": [0],
        "start": {"from": "property", "property": "edd", "days": -7},
    },
}


@pytest.mark.parametrize("schedule", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_a_run_matches_exactly_what_python_says(project, schedule) -> None:
    _random_cases(project, 400)
    alert = _alert(project, RICH, schedule=schedules.parse_alert_schedule(schedule).as_json())
    assert _active(alert) == []
    seen: list[tuple[int, int]] = []
    result = runner.run(alert, chunk=64, on_progress=lambda done, total: seen.append((done, total)), now=NOW)
    expected = _expected(project, RICH, NOW)
    assert 20 < len(expected) < 300
    # one instance per matching case (one whose events from the date property are all past ends at once)
    assert sorted(ScheduleInstance.objects.filter(alert=alert).values_list("source_case_id", flat=True)) == expected
    assert set(_active(alert)) <= set(expected)
    assert result.finished and result.started == len(_active(alert))
    alert.refresh_from_db()
    open_mothers = Case.objects.filter(project=project, case_type="mother", closed=False).count()
    assert (alert.run_status, alert.run_done, alert.run_total) == ("idle", open_mothers, open_mothers)
    assert alert.run_revision == alert.revision and alert.run_finished_on == NOW
    assert seen[-1] == (open_mothers, open_mothers) and len(seen) == result.chunks
    assert runner.progress(alert).up_to_date


@pytest.mark.parametrize("schedule", list(SCHEDULES.values())[:2], ids=list(SCHEDULES)[:2])
def test_the_set_based_start_writes_the_rows_start_for_cases_writes(project, schedule) -> None:
    zones = ["Asia/Kolkata", "America/Los_Angeles", "Pacific/Kiritimati", "nowhere", "", None]
    rows = []
    for i in range(60):
        props = {"risk": "high"}
        if zones[i % 6] is not None:
            props["time_zone"] = zones[i % 6]
        if i % 4:
            props["visit_no"] = str(i % 3)
        rows.append(CaseChange(case_type="mother", properties=props))
    cases = bulk_upsert(project, rows)
    spec = schedules.parse_alert_schedule(schedule).as_json()
    by_sql = _alert(project, reset_property="visit_no", schedule=spec)
    by_python = _alert(project, reset_property="visit_no", schedule=spec)
    ScheduleInstance.objects.all().delete()  # (the hook started both already: start afresh)
    with transaction.atomic():
        assert runner._start_in_sql(by_sql, Case.objects.filter(project=project), NOW) == 60
        assert lifecycle.start_for_cases(by_python, cases, NOW, NOW) == 60

    def rows_of(alert: ConditionalAlert) -> list[dict[str, Any]]:
        out = []
        for r in ScheduleInstance.objects.filter(alert=alert).order_by("source_case_id").values():
            out.append({k: v for k, v in r.items() if k not in ("id", "alert_id")})
        return out

    assert rows_of(by_sql) == rows_of(by_python)
    assert {r["time_zone"] for r in rows_of(by_sql)} == {
        "Asia/Kolkata",
        "America/Los_Angeles",
        "Pacific/Kiritimati",
        "UTC",
    }


def _crashing(real: Any) -> Any:
    def crash(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("worker killed")

    return crash


def test_a_run_resumes_after_a_stop_or_a_crash_without_duplicates(project, monkeypatch) -> None:
    _random_cases(project, 300)
    alert = _alert(project, RICH)
    # one chunk, then the budget is spent: the run stays "running" where it stopped
    first = runner.run(alert, chunk=40, budget_seconds=0, now=NOW)
    alert.refresh_from_db()
    assert first.chunks == 1 and not first.finished
    assert alert.run_status == "running" and alert.run_done == 40 and alert.run_last_pk > 0
    stopped_at = alert.run_last_pk

    # a crash in the middle of the next chunk, after its instances were written: the chunk's transaction
    # rolls back and progress stays put
    with monkeypatch.context() as m:
        for module, name in ((lifecycle, "start_for_cases"), (runner, "_start_in_sql")):
            m.setattr(module, name, _crashing(getattr(module, name)))
        with pytest.raises(RuntimeError):
            runner.run(alert, chunk=40, now=NOW)
    alert.refresh_from_db()
    assert alert.run_last_pk == stopped_at and alert.run_done == 40

    # the ticker continues it to the end
    assert runner.continue_runs(now=NOW) > 0
    alert.refresh_from_db()
    assert alert.run_status == "idle"
    assert _active(alert) == _expected(project, RICH, NOW)  # every match once, no duplicates
    # running again changes nothing
    again = runner.run(alert, chunk=40, now=NOW)
    assert (again.started, again.ended) == (0, 0)
    assert _active(alert) == _expected(project, RICH, NOW)


def test_a_rerun_after_the_criteria_change_ends_and_starts(project) -> None:
    _random_cases(project, 200)
    alert = _alert(project, HIGH)
    runner.run(alert, chunk=50, now=NOW)
    before = set(_active(alert))
    alert.criteria = RICH
    alert.revision += 1
    alert.save()
    runner.request_run(alert, NOW)
    assert runner.progress(alert).status == "running" and not runner.progress(alert).up_to_date
    runner.run(alert, chunk=50, now=NOW)
    after = set(_active(alert))
    assert after == set(_expected(project, RICH, NOW))
    gone = before - after
    assert gone
    reasons = set(
        ScheduleInstance.objects.filter(alert=alert, source_case_id__in=gone).values_list("end_reason", flat=True)
    )
    assert reasons == {runner.NO_LONGER_MATCHES}


def test_a_paused_alert_is_not_run(project) -> None:
    _case(project, risk="high")
    alert = _alert(project, status=ConditionalAlert.PAUSED)
    result = runner.run(alert, now=NOW)
    assert result.evaluated == 0 and _active(alert) == []


def test_alerts_with_days_criteria_run_again_when_a_calendar_day_changes(project) -> None:
    days = [{"property": "edd", "operator": "days_before", "value": 2}]
    # Kolkata's 22 Mar begins at 21 Mar 18:30 UTC: the case matches from then on
    case = _case(project, edd="2024-03-24", time_zone="Asia/Kolkata")
    alert = _alert(project, days)
    t0 = datetime(2024, 3, 21, 18, 0, tzinfo=UTC)
    runner.run(alert, now=t0)
    assert _active(alert) == []
    assert runner.continue_runs(now=t0 + timedelta(seconds=20)) == 0  # nothing changed
    runner.continue_runs(now=datetime(2024, 3, 21, 18, 31, tzinfo=UTC))
    assert _active(alert) == [case.pk]


# --- the hook ----------------------------------------------------------------------------------------


def test_a_new_or_changed_case_starts_its_alert(project) -> None:
    _case(project)  # the case type must exist
    alert = _alert(project)
    case = _case(project, risk="high")
    assert _active(alert) == [case.pk]
    other = _case(project, risk="low")
    assert other.pk not in _active(alert)
    _edit(project, other, risk="high")
    assert _active(alert) == sorted([case.pk, other.pk])


def test_a_case_that_stops_matching_ends_at_once_and_nothing_more_is_due(project) -> None:
    alert = _alert(project)
    case = _case(project, risk="high")
    inst = ScheduleInstance.objects.get(alert=alert, source_case=case)
    assert inst.active and inst.next_due_utc is not None
    _edit(project, case, risk="low")
    inst.refresh_from_db()
    assert not inst.active and inst.end_reason == runner.NO_LONGER_MATCHES
    assert inst.next_due_utc is None  # the tick finds nothing due for it
    # the first event (a day after the match) comes and goes: nothing for this case
    soon = timezone.now() + timedelta(days=1, minutes=5)
    assert tick.tick(now=soon) == 0
    assert not Message.objects.filter(case=case).exists()
    # while a case that still matches gets its event
    other = _case(project, risk="high")
    assert tick.tick(now=soon + timedelta(minutes=5)) == 1
    assert Message.objects.filter(case=other).count() == 1
    ScheduleInstance.objects.filter(source_case=other).delete()
    # matching again starts a new schedule (a new row: new send keys)
    _edit(project, case, risk="high")
    assert ScheduleInstance.objects.filter(alert=alert, source_case=case).count() == 2
    assert _active(alert) == [case.pk]


def test_a_closed_case_ends_and_a_reopened_one_starts_again(project) -> None:
    alert = _alert(project)
    case = _case(project, risk="high")
    set_closed(project, Case.objects.get(pk=case.pk), True)
    assert _active(alert) == []
    assert ScheduleInstance.objects.get(alert=alert, source_case=case).end_reason == runner.CASE_CLOSED
    set_closed(project, Case.objects.get(pk=case.pk), False)
    assert _active(alert) == [case.pk]


def test_a_deleted_case_ends_its_instances(project, monkeypatch) -> None:
    alert = _alert(project)
    case = _case(project, risk="high")
    ended: list[tuple[int, list[int], str]] = []
    real_end = lifecycle.end_for_cases

    def spy(a: ConditionalAlert, pks: Any, reason: str, *args: Any, **kwargs: Any) -> int:
        pks = list(pks)
        ended.append((a.pk, pks, reason))
        return real_end(a, pks, reason, *args, **kwargs)

    monkeypatch.setattr(lifecycle, "end_for_cases", spy)
    delete_case(project, Case.objects.get(pk=case.pk))
    assert ended == [(alert.pk, [case.pk], "case_deleted")]
    assert not ScheduleInstance.objects.filter(alert=alert).exists()  # and the rows went with the case


def test_a_change_of_the_reset_property_restarts_the_schedule(project) -> None:
    alert = _alert(project, reset_property="visit_no")
    case = _case(project, risk="high", visit_no="1")
    first = ScheduleInstance.objects.get(alert=alert, source_case=case, active=True)
    assert first.reset_value == "1"
    _edit(project, case, visits="7")  # not the reset property: the same instance goes on
    assert ScheduleInstance.objects.get(alert=alert, source_case=case, active=True).pk == first.pk
    _edit(project, case, visit_no="2")
    first.refresh_from_db()
    assert not first.active and first.end_reason == "reset"
    second = ScheduleInstance.objects.get(alert=alert, source_case=case, active=True)
    assert second.pk != first.pk and second.reset_value == "2"
    assert second.anchor_utc >= first.anchor_utc and second.iteration == 0


def test_a_completed_schedule_is_not_started_again_while_the_case_keeps_matching(project) -> None:
    once = schedules.parse_alert_schedule({"type": "offsets", "unit": "minutes", "offsets": [0]}).as_json()
    alert = _alert(project, schedule=once)
    case = _case(project, risk="high")
    assert tick.tick(now=timezone.now() + timedelta(minutes=1)) == 1
    assert ScheduleInstance.objects.get(alert=alert, source_case=case).end_reason == lifecycle.COMPLETED
    _edit(project, case, visits="3")
    runner.run(alert)
    assert ScheduleInstance.objects.filter(alert=alert, source_case=case).count() == 1


def test_an_unrelated_edit_changes_no_instance(project) -> None:
    alert = _alert(project)
    case = _case(project, risk="high")
    before = ScheduleInstance.objects.get(alert=alert, source_case=case)
    _edit(project, case, name_of_clinic="Kibera")
    after = ScheduleInstance.objects.get(alert=alert, source_case=case)
    fields = ("pk", "active", "anchor_utc", "next_due_utc", "iteration", "revision")
    assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]


def test_a_content_only_edit_of_the_alert_changes_no_instance(project) -> None:
    alert = _alert(project)
    case = _case(project, risk="high")
    before = list(ScheduleInstance.objects.filter(alert=alert).values())
    services.update_alert(alert, {"content": {"channel": "sms", "text": "New words, same schedule"}})
    alert.refresh_from_db()
    assert alert.run_status == ConditionalAlert.IDLE  # no run requested
    _edit(project, case, note="x")  # the hook re-evaluates: nothing to start or end
    runner.continue_runs(now=NOW)
    assert list(ScheduleInstance.objects.filter(alert=alert).values()) == before


def test_creating_or_editing_the_criteria_through_the_service_runs_the_alert(project) -> None:
    high, low = _case(project, risk="high"), _case(project, risk="low")
    alert = services.create_alert(
        project,
        {
            "name": "High risk",
            "case_type": "mother",
            "criteria": HIGH,
            "content": {"channel": "sms", "text": "Please visit"},
            "schedule": {"type": "offsets", "unit": "days", "offsets": [1]},
            "recipients": ["case"],
        },
    )
    assert runner.progress(alert).status == ConditionalAlert.RUNNING
    runner.continue_runs()
    assert _active(alert) == [high.pk]
    services.update_alert(alert, {"criteria": [{"property": "risk", "operator": "equal", "value": "low"}]})
    runner.continue_runs()
    assert _active(alert) == [low.pk]
    alert.refresh_from_db()
    assert runner.progress(alert).up_to_date


def test_a_paused_alert_starts_nothing_but_a_closed_case_still_ends(project) -> None:
    alert = _alert(project)
    case = _case(project, risk="high")
    ConditionalAlert.objects.filter(pk=alert.pk).update(status=ConditionalAlert.PAUSED)
    newcomer = _case(project, risk="high")
    assert newcomer.pk not in _active(alert)
    set_closed(project, Case.objects.get(pk=case.pk), True)
    assert _active(alert) == []


def test_a_case_that_changes_type_ends(project) -> None:
    alert = _alert(project)
    case = _case(project, risk="high")
    update_case(project, Case.objects.get(pk=case.pk), CaseChange(case_type="child"))
    assert _active(alert) == []


def test_one_bulk_write_costs_the_same_queries_for_ten_or_a_thousand_cases(project) -> None:
    _alert(project)
    _alert(project, [{"property": "edd", "operator": "days_after", "value": 0}])
    _alert(project, case_type="child")

    def queries(n: int, offset: int) -> int:
        changes = [
            CaseChange(case_id=f"c{offset + i}", case_type="mother", properties={"risk": "high", "edd": "2024-01-01"})
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as ctx:
            bulk_upsert(project, changes)
        return len(ctx.captured_queries)

    small, large = queries(10, 0), queries(1000, 10_000)
    assert large <= small + 4, (small, large)
    assert ScheduleInstance.objects.filter(active=True).count() == 2 * 1010
