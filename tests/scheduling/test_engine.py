"""The scheduling engine end to end: broadcasts through the service, instances, the tick with explicit
instants (a frozen clock), messages queued through the pipeline with their send keys.

Expected instants are worked out by hand:
  Africa/Nairobi      UTC+3 all year
  Asia/Kolkata        UTC+5:30 all year
  America/New_York    UTC-5 / UTC-4; 2027: forward Sun 14 Mar 02:00->03:00, back Sun 7 Nov 02:00->01:00
  Australia/Lord_Howe UTC+10:30 / UTC+11; 2027: back Sun 4 Apr 02:00->01:30, forward Sun 3 Oct 02:00->02:30
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casemsg.cases.models import Case
from casemsg.cases.services import CaseChange, update_case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.scheduling import lifecycle, occurrences, services, tick
from casemsg.scheduling.models import Broadcast, ScheduleInstance
from casemsg.workers.models import MobileWorker
from casemsg.workers.services import WorkerChange, create_worker
from tests.conftest import sandbox_gateway
from tests.messaging.conftest import use_smtp
from tests.scheduling.engine_helpers import (
    KOLKATA,
    LORD_HOWE,
    NAIROBI,
    NEW_YORK,
    broadcast,
    cases,
    due_times,
    instances_of,
    messages,
    run_ticks,
    utc,
    zone_of,
)

FOUR_ZONES = [NAIROBI, NEW_YORK, KOLKATA, LORD_HOWE]


# --- local times, DST -----------------------------------------------------------------------------
def test_daily_at_nine_lands_at_each_zones_instant_across_the_new_york_spring_change(project):
    cases(project, *({"time_zone": z, "name": z} for z in FOUR_ZONES))
    b = broadcast(
        project,
        utc(2027, 3, 11, 0, 0),
        {"type": "daily", "time": "09:00", "start_date": "2027-03-12", "until": "2027-03-16"},
    )
    run_ticks(utc(2027, 3, 11, 0, 0), utc(2027, 3, 17, 0, 0))
    got: dict[str, list[datetime]] = {}
    for m in messages(b):
        got.setdefault(zone_of(m), []).append(m.next_attempt_on)
    assert got[NAIROBI] == [utc(2027, 3, d, 6, 0) for d in range(12, 17)]
    assert got[KOLKATA] == [utc(2027, 3, d, 3, 30) for d in range(12, 17)]
    # EST (UTC-5) until the 13th, EDT (UTC-4) from the 14th: 09:00 stays 09:00 on the wall clock
    assert got[NEW_YORK] == [utc(2027, 3, 12, 14), utc(2027, 3, 13, 14)] + [utc(2027, 3, d, 13) for d in (14, 15, 16)]
    # Lord Howe daylight time (UTC+11): 09:00 is 22:00 UTC the day before
    assert got[LORD_HOWE] == [utc(2027, 3, d, 22, 0) for d in range(11, 16)]
    assert all(not i.active and i.end_reason == lifecycle.COMPLETED for i in instances_of(b))
    b.refresh_from_db()
    assert b.status == Broadcast.DONE


def test_daily_at_nine_across_the_lord_howe_half_hour_autumn_change(project):
    cases(project, *({"time_zone": z, "name": z} for z in FOUR_ZONES))
    b = broadcast(
        project,
        utc(2027, 4, 1, 0, 0),
        {"type": "daily", "time": "09:00", "start_date": "2027-04-02", "until": "2027-04-06"},
    )
    run_ticks(utc(2027, 4, 1, 0, 0), utc(2027, 4, 7, 0, 0))
    got: dict[str, list[datetime]] = {}
    for m in messages(b):
        got.setdefault(zone_of(m), []).append(m.next_attempt_on)
    # +11 until 02:00 on the 4th, then +10:30: 22:00 UTC becomes 22:30 UTC
    assert got[LORD_HOWE] == [utc(2027, 4, 1, 22), utc(2027, 4, 2, 22)] + [utc(2027, 4, d, 22, 30) for d in (3, 4, 5)]
    assert got[NEW_YORK] == [utc(2027, 4, d, 13) for d in range(2, 7)]
    assert got[NAIROBI] == [utc(2027, 4, d, 6) for d in range(2, 7)]
    assert got[KOLKATA] == [utc(2027, 4, d, 3, 30) for d in range(2, 7)]
    assert len({m.send_key for m in messages(b)}) == 20


@pytest.mark.parametrize(
    ("zone", "at", "start", "until", "expected"),
    [
        # spring gap: 02:30 does not exist on the 14th -> 03:00 EDT, the first minute that exists
        (
            NEW_YORK,
            "02:30",
            "2027-03-13",
            "2027-03-15",
            [utc(2027, 3, 13, 7, 30), utc(2027, 3, 14, 7), utc(2027, 3, 15, 6, 30)],
        ),
        # autumn overlap: 01:30 happens twice on 7 Nov -> once, at the first (EDT) pass
        (
            NEW_YORK,
            "01:30",
            "2027-11-06",
            "2027-11-08",
            [utc(2027, 11, 6, 5, 30), utc(2027, 11, 7, 5, 30), utc(2027, 11, 8, 6, 30)],
        ),
        # a half-hour gap: 02:15 on 3 Oct does not exist -> 02:30 LHDT (UTC+11)
        (
            LORD_HOWE,
            "02:15",
            "2027-10-02",
            "2027-10-04",
            [utc(2027, 10, 1, 15, 45), utc(2027, 10, 2, 15, 30), utc(2027, 10, 3, 15, 15)],
        ),
        # a half-hour overlap: 01:45 on 4 Apr happens twice -> the first pass (UTC+11)
        (
            LORD_HOWE,
            "01:45",
            "2027-04-03",
            "2027-04-05",
            [utc(2027, 4, 2, 14, 45), utc(2027, 4, 3, 14, 45), utc(2027, 4, 4, 15, 15)],
        ),
    ],
)
def test_wall_times_in_a_gap_or_an_overlap_fire_once(project, zone, at, start, until, expected):
    cases(project, {"time_zone": NAIROBI})  # the schedule's named zone wins over the contact's
    created = expected[0] - timedelta(days=1)
    b = broadcast(
        project, created, {"type": "daily", "time": at, "start_date": start, "until": until, "time_zone": zone}
    )
    run_ticks(created, expected[-1] + timedelta(hours=1), timedelta(minutes=15))
    assert due_times(messages(b)) == expected
    assert {i.time_zone for i in instances_of(b)} == {zone}


def test_a_time_zone_change_of_the_case_moves_the_next_event(project):
    (case,) = cases(project, {"time_zone": NAIROBI})
    start = (timezone.now() + timedelta(days=30)).date()
    b = broadcast(project, timezone.now(), {"type": "daily", "time": "09:00", "start_date": start.isoformat()})
    (inst,) = instances_of(b)
    nine = datetime.combine(start, datetime.min.time().replace(hour=9))
    assert inst.next_due_utc == nine.replace(tzinfo=ZoneInfo(NAIROBI)).astimezone(ZoneInfo("UTC"))
    update_case(project, case, CaseChange(properties={"time_zone": NEW_YORK}))  # the hook recomputes
    inst.refresh_from_db()
    assert inst.time_zone == NEW_YORK
    assert inst.next_due_utc == nine.replace(tzinfo=ZoneInfo(NEW_YORK)).astimezone(ZoneInfo("UTC"))
    assert (inst.iteration, inst.next_local) == (0, nine.isoformat())
    update_case(project, case, CaseChange(properties={"time_zone": "Mars/Olympus"}))  # invalid: the project's
    inst.refresh_from_db()
    assert inst.time_zone == "UTC" and inst.next_due_utc == nine.replace(tzinfo=ZoneInfo("UTC"))


def test_a_worker_time_zone_change_moves_its_next_event(project):
    w = create_worker(project, WorkerChange(username="chw-1", time_zone=NAIROBI))
    start = (timezone.now() + timedelta(days=10)).date()
    b = broadcast(
        project,
        timezone.now(),
        {"type": "daily", "time": "09:00", "start_date": start.isoformat()},
        {"mobile_workers": ["chw-1"]},
    )
    (inst,) = instances_of(b)
    assert inst.worker_id == w.pk and inst.time_zone == NAIROBI
    MobileWorker.objects.filter(pk=w.pk).update(time_zone=KOLKATA)
    lifecycle.recompute_for_workers([w.pk])
    inst.refresh_from_db()
    assert inst.time_zone == KOLKATA
    assert inst.next_due_utc.astimezone(ZoneInfo(KOLKATA)).time().hour == 9


# --- recurrences ----------------------------------------------------------------------------------
def test_monthly_on_the_31st_skips_the_months_without_one(project):
    cases(project, {})
    b = broadcast(
        project,
        utc(2027, 1, 1),
        {
            "type": "monthly",
            "month_days": [31],
            "time": "09:00",
            "start_date": "2027-01-01",
            "count": 4,
            "time_zone": "UTC",
        },
    )
    run_ticks(utc(2027, 1, 1, 10), utc(2027, 8, 1, 10), timedelta(days=1))
    assert due_times(messages(b)) == [
        utc(2027, 1, 31, 9),
        utc(2027, 3, 31, 9),
        utc(2027, 5, 31, 9),
        utc(2027, 7, 31, 9),
    ]
    assert [m.send_key.rsplit(":", 1)[1] for m in messages(b)] == ["0", "1", "2", "3"]


def test_monthly_on_the_last_day_and_weekly_on_chosen_days(project):
    cases(project, {})
    last = broadcast(
        project,
        utc(2027, 1, 1),
        {
            "type": "monthly",
            "month_days": ["last"],
            "time": "08:00",
            "start_date": "2027-01-01",
            "count": 3,
            "time_zone": "UTC",
        },
    )
    weekly = broadcast(
        project,
        utc(2027, 1, 1),
        {
            "type": "weekly",
            "weekdays": ["mon", "thu"],
            "time": "08:00",
            "start_date": "2027-01-01",
            "until": "2027-01-14",
            "time_zone": "UTC",
        },
    )
    run_ticks(utc(2027, 1, 1, 9), utc(2027, 4, 1, 9), timedelta(days=1))
    assert due_times(messages(last)) == [utc(2027, 1, 31, 8), utc(2027, 2, 28, 8), utc(2027, 3, 31, 8)]
    # 1 Jan 2027 is a Friday
    assert due_times(messages(weekly)) == [
        utc(2027, 1, 4, 8),
        utc(2027, 1, 7, 8),
        utc(2027, 1, 11, 8),
        utc(2027, 1, 14, 8),
    ]


# --- lateness --------------------------------------------------------------------------------------
def test_events_later_than_the_lateness_are_skipped_and_logged_not_sent_in_a_burst(project, caplog):
    cases(project, {})
    b = broadcast(
        project, utc(2027, 5, 1), {"type": "daily", "time": "09:00", "start_date": "2027-05-01", "time_zone": "UTC"}
    )
    caplog.set_level("INFO", logger="casemsg.scheduling.tick")
    # the worker was down for three days: the 1st and 2nd are too late (> 2 days), the 3rd is not but the
    # 4th is due too: only the 4th is sent
    assert tick.tick(utc(2027, 5, 4, 10)) == 1
    (m,) = messages(b)
    assert (m.next_attempt_on, m.send_key.endswith(":3")) == (utc(2027, 5, 4, 9), True)
    (inst,) = instances_of(b)
    assert inst.last_event["outcome"] == "queued" and inst.last_event["skipped"] == 3
    assert (inst.iteration, inst.next_due_utc) == (4, utc(2027, 5, 5, 9))
    assert "3 event(s) from #0" in caplog.text


def test_an_event_past_a_short_lateness_is_skipped_and_the_next_one_kept(project):
    cases(project, {})
    b = broadcast(
        project,
        utc(2027, 5, 1),
        {"type": "daily", "time": "09:00", "start_date": "2027-05-01", "time_zone": "UTC"},
        max_lateness_minutes=60,
    )
    tick.tick(utc(2027, 5, 1, 11))  # two hours late
    assert messages(b) == []
    (inst,) = instances_of(b)
    assert inst.last_event["outcome"] == "skipped_late" and inst.last_event["due_utc"] == "2027-05-01T09:00:00+00:00"
    assert (inst.iteration, inst.next_due_utc, inst.active) == (1, utc(2027, 5, 2, 9), True)
    tick.tick(utc(2027, 5, 2, 9, 30))
    assert due_times(messages(b)) == [utc(2027, 5, 2, 9)]


# --- content and languages -----------------------------------------------------------------------
def test_language_fallback_contact_then_broadcast_default_then_project_default(project, settings):
    sandbox_gateway()
    sw, fr, none = cases(project, {"language_code": "sw"}, {"language_code": "fr"}, {})
    content = {"translations": {"en": "Hello {case.name}", "sw": "Habari {case.name}"}}
    now = timezone.now()
    with_default = broadcast(
        project,
        now,
        {"type": "now"},
        {"case_ids": [sw.case_id, fr.case_id, none.case_id]},
        content={"text": "x", **content},
        default_language="sw",
        name="A",
    )
    without = broadcast(
        project, now, {"type": "now"}, {"case_ids": [fr.case_id, none.case_id]}, content=content, name="B"
    )
    tick.tick(now)
    pipeline.deliver_due()  # what a worker does next: the language is chosen at send time
    got = {(m.event_id, m.case_id): (m.language, m.text, m.status) for m in messages()}
    assert got[(with_default.event_id, sw.pk)] == ("sw", f"Habari {sw.name}", Message.SENT)
    assert got[(with_default.event_id, fr.pk)][0] == "sw"  # fr is not a project language: the broadcast's
    assert got[(with_default.event_id, none.pk)][0] == "sw"
    assert got[(without.event_id, fr.pk)][:2] == ("en", f"Hello {fr.name}")  # the project's default
    assert got[(without.event_id, none.pk)][0] == "en"


def test_email_content_chooses_the_subject_by_language(project, smtp_server, settings):
    use_smtp(settings, smtp_server.host, smtp_server.port)
    (c,) = cases(project, {"language_code": "sw", "commcare_email_address": "amina@example.org"})
    now = timezone.now()
    content = {
        "channel": "email",
        "subject": {"en": "Visit for {case.name}", "sw": "Ziara ya {case.name}"},
        "translations": {"en": "See you", "sw": "Tuonane"},
    }
    b = broadcast(project, now, {"type": "now"}, {"case_ids": [c.case_id]}, content=content)
    tick.tick(now)
    pipeline.deliver_due()
    (m,) = messages(b)
    assert (m.channel, m.subject, m.text, m.status) == ("email", f"Ziara ya {c.name}", "Tuonane", Message.SENT)


# --- recipients ------------------------------------------------------------------------------------
def test_a_broadcast_now_to_cases_by_type_and_filters_plus_listed_cases(project):
    north = cases(project, {"district": "North"}, {"district": "North"})
    cases(project, {"district": "South"})
    closed = cases(project, {"district": "North"})[0]
    update_case(project, closed, CaseChange(closed=True))
    (child,) = cases(project, {"district": "North"}, case_type="child")
    (listed,) = cases(project, {"district": "East"})
    now = utc(2030, 1, 1, 8)
    b = broadcast(
        project,
        now,
        {"type": "now"},
        {"case_type": "mother", "filters": {"district": "North"}, "case_ids": [listed.case_id]},
    )
    assert tick.tick(now) == 0  # a "now" broadcast queues its messages when it is created
    got = messages(b)
    assert {m.case_id for m in got} == {north[0].pk, north[1].pk, listed.pk}
    assert {m.next_attempt_on for m in got} == {now}
    assert all(m.content == {"text": "Hello {case.name}"} for m in got)
    assert child.pk not in {m.case_id for m in got}
    assert tick.tick(now + timedelta(minutes=1)) == 0
    b.refresh_from_db()
    assert b.status == Broadcast.DONE


def test_the_owners_of_matching_cases_by_username_or_id(project):
    w1 = create_worker(project, WorkerChange(username="chw-1", phone_numbers=["254711000001"]))
    w2 = create_worker(project, WorkerChange(username="chw-2", phone_numbers=["254711000002"]))
    create_worker(project, WorkerChange(username="chw-3", phone_numbers=["254711000003"]))
    cases(project, {"risk": "high"}, {"risk": "high"}, owner_id="chw-1")  # two cases, one owner: one message
    cases(project, {"risk": "high"}, owner_id=str(w2.pk))  # owner_id may be the worker's id
    cases(project, {"risk": "low"}, owner_id="chw-3")
    now = utc(2030, 1, 1, 8)
    b = broadcast(
        project,
        now,
        {"type": "now"},
        {"owners_of": {"case_type": "mother", "filters": {"risk": "high"}}},
        content={"text": "Visit your high-risk mothers, {recipient.name}"},
    )
    tick.tick(now)
    assert sorted(m.worker_id for m in messages(b)) == sorted([w1.pk, w2.pk])
    assert {i.role for i in instances_of(b)} == {ScheduleInstance.WORKER}


def test_all_mobile_workers(project):
    create_worker(project, WorkerChange(username="a"))
    create_worker(project, WorkerChange(username="b"))
    inactive = create_worker(project, WorkerChange(username="c"))
    MobileWorker.objects.filter(pk=inactive.pk).update(active=False)
    b = broadcast(project, utc(2030, 1, 1), {"type": "now"}, {"mobile_workers": "all"})
    assert len(instances_of(b)) == 2


# --- pause, resume, cancel, update ---------------------------------------------------------------------
def test_pause_resume_and_cancel(project):
    cases(project, {}, {})
    sched = {"type": "daily", "time": "09:00", "start_date": "2027-06-01", "time_zone": "UTC"}
    b = broadcast(project, utc(2027, 5, 31), sched)
    tick.tick(utc(2027, 6, 1, 9))
    assert len(messages(b)) == 2
    services.pause_broadcast(b, utc(2027, 6, 1, 12))
    assert b.status == Broadcast.PAUSED
    assert all(i.next_due_utc is None and i.active for i in instances_of(b))
    assert run_ticks(utc(2027, 6, 2, 9), utc(2027, 6, 3, 12), timedelta(hours=1)) == 0
    # resumed on the 3rd at noon: the 2nd is superseded by the 3rd (both within the lateness), sent once
    services.resume_broadcast(b, utc(2027, 6, 3, 12))
    assert tick.tick(utc(2027, 6, 3, 12)) == 2
    assert due_times(messages(b)) == [utc(2027, 6, 1, 9)] * 2 + [utc(2027, 6, 3, 9)] * 2
    assert {i.next_due_utc for i in instances_of(b)} == {utc(2027, 6, 4, 9)}
    services.cancel_broadcast(b, utc(2027, 6, 3, 13))
    assert all(not i.active and i.end_reason == lifecycle.CANCELLED for i in instances_of(b))
    assert run_ticks(utc(2027, 6, 4, 9), utc(2027, 6, 5, 9), timedelta(hours=6)) == 0
    assert len(messages(b)) == 4
    with pytest.raises(InputError) as e:
        services.resume_broadcast(b)
    assert (e.value.code, e.value.status) == (errors.SCHEDULE_ENDED, 409)


def test_a_content_only_edit_changes_no_schedule_a_schedule_edit_replaces_the_instances(project):
    cases(project, {})
    b = broadcast(
        project, utc(2027, 5, 31), {"type": "daily", "time": "09:00", "start_date": "2027-06-01", "time_zone": "UTC"}
    )
    tick.tick(utc(2027, 6, 1, 9))
    (first,) = instances_of(b)
    services.update_broadcast(b, {"content": {"text": "Changed"}}, utc(2027, 6, 1, 10))
    assert b.revision == 1 and instances_of(b) == [first]
    tick.tick(utc(2027, 6, 2, 9))
    assert messages(b)[-1].content == {"text": "Changed"}
    services.update_broadcast(
        b,
        {"schedule": {"type": "daily", "time": "18:00", "start_date": "2027-06-01", "time_zone": "UTC"}},
        utc(2027, 6, 2, 10),
    )
    assert b.revision == 2
    old, new = instances_of(b)
    assert (old.active, old.end_reason, new.active, new.next_due_utc) == (
        False,
        lifecycle.SCHEDULE_CHANGED,
        True,
        utc(2027, 6, 2, 18),
    )
    tick.tick(utc(2027, 6, 2, 18))
    assert messages(b)[-1].send_key == f"si:{new.pk}:1"


def test_a_recipients_edit_ends_the_removed_and_starts_the_added(project):
    a, c = cases(project, {"district": "North"}, {"district": "South"})
    b = broadcast(
        project,
        utc(2027, 5, 31),
        {"type": "daily", "time": "09:00", "start_date": "2027-06-01", "time_zone": "UTC"},
        {"case_type": "mother", "filters": {"district": "North"}},
    )
    tick.tick(utc(2027, 6, 1, 9))
    services.update_broadcast(
        b, {"recipients": {"case_type": "mother", "filters": {"district": "South"}}}, utc(2027, 6, 1, 10)
    )
    assert b.revision == 2
    got = {i.case_id: i for i in instances_of(b)}
    assert (got[a.pk].active, got[a.pk].end_reason) == (False, lifecycle.RECIPIENT_REMOVED)
    # the newcomer joins the series: its next event is the broadcast's next one (index 1)
    assert (got[c.pk].active, got[c.pk].iteration, got[c.pk].next_due_utc) == (True, 1, utc(2027, 6, 2, 9))


# --- exactly once ------------------------------------------------------------------------------------
def test_a_second_tick_for_the_same_instant_sends_nothing_new(project):
    cases(project, {}, {}, {})
    b = broadcast(
        project, utc(2027, 5, 31), {"type": "daily", "time": "09:00", "start_date": "2027-06-01", "time_zone": "UTC"}
    )
    assert tick.tick(utc(2027, 6, 1, 9, 5)) == 3
    assert tick.tick(utc(2027, 6, 1, 9, 5)) == 0
    assert len(messages(b)) == 3


def test_an_occurrence_queued_by_an_earlier_crashed_tick_is_skipped_by_its_send_key(project):
    cases(project, {}, {})
    b = broadcast(
        project, utc(2027, 5, 31), {"type": "daily", "time": "09:00", "start_date": "2027-06-01", "time_zone": "UTC"}
    )
    first, second = instances_of(b)
    # an earlier tick queued the first instance's occurrence and died before advancing the instance
    Message.objects.create(
        project=project,
        case_id=first.case_id,
        content={"text": "earlier"},
        send_key=occurrences.send_key(first.pk, 0),
        created_on=utc(2027, 6, 1, 9),
        next_attempt_on=utc(2027, 6, 1, 9),
    )
    assert tick.tick(utc(2027, 6, 1, 9)) == 2
    keys = Counter(Message.objects.exclude(send_key="").values_list("send_key", flat=True))
    assert keys == {occurrences.send_key(first.pk, 0): 1, occurrences.send_key(second.pk, 0): 1}
    assert Message.objects.get(send_key=occurrences.send_key(first.pk, 0)).content == {"text": "earlier"}
    assert {i.iteration for i in instances_of(b)} == {1}


def test_a_closed_case_gets_a_failed_message_through_the_pipeline(project):
    sandbox_gateway()
    (c,) = cases(project, {})
    now = timezone.now()
    b = broadcast(project, now, {"type": "now"}, {"case_ids": [c.case_id]})
    update_case(project, c, CaseChange(closed=True))
    tick.tick(now)
    pipeline.deliver_due()
    (m,) = messages(b)
    assert (m.status, m.error) == (Message.FAILED, errors.CONTACT_IS_INACTIVE)


def test_the_tick_costs_a_fixed_number_of_queries_per_batch(project):
    cases(project, *({} for _ in range(30)))
    cases(project, *({} for _ in range(90)), case_type="child")
    day = {"type": "daily", "start_date": "2027-06-01", "time_zone": "UTC"}
    broadcast(project, utc(2027, 5, 31), {**day, "time": "09:00"})
    broadcast(project, utc(2027, 5, 31), {**day, "time": "10:00"}, {"case_type": "child"})
    counts, refreshes = [], []
    for at, due in ((utc(2027, 6, 1, 9), 30), (utc(2027, 6, 1, 10), 90)):
        # each broadcast reads its recipients (a case type) again at its occurrence: a fixed number of
        # queries too, whatever the number of cases
        with CaptureQueriesContext(connection) as ctx:
            assert tick.refresh_broadcasts(at) == 1
        refreshes.append(len(ctx))
        with CaptureQueriesContext(connection) as ctx:
            assert tick.tick(at) == due
        counts.append(len(ctx))
    assert counts[0] == counts[1] <= 17, counts
    assert refreshes[0] == refreshes[1] <= 24, refreshes
    with CaptureQueriesContext(connection) as ctx:
        assert tick.tick(utc(2027, 6, 1, 10, 30)) == 0
    # is a refresh due, and the claim (and, in a test's transaction, a savepoint and its release)
    assert len(ctx) <= 4


def test_every_case_id_instance_is_deleted_with_its_case(project):
    (c,) = cases(project, {})
    b = broadcast(
        project, utc(2027, 5, 31), {"type": "daily", "time": "09:00", "start_date": "2027-06-01", "time_zone": "UTC"}
    )
    Case.objects.filter(pk=c.pk).delete()
    assert instances_of(b) == []


def test_a_broadcast_with_nobody_to_send_to_is_done_at_once(project):
    cases(project, {})
    b = broadcast(project, utc(2027, 5, 31), {"type": "now"}, {"case_type": "nobody"})
    assert (b.status, instances_of(b)) == (Broadcast.DONE, [])
