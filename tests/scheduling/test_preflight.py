"""A broadcast's pre-flight (casemsg.scheduling.preflight): the recipients the broadcast would select,
who is blocked and why (the contact rules of the send pipeline), the segments, the first sends in each
recipient's zone and language — and nothing written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casemsg.cases.services import CaseChange, bulk_upsert, update_case
from casemsg.consent.optout import opt_out
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging.models import Message
from casemsg.scheduling import preflight, services, tick
from casemsg.scheduling.models import Broadcast, ScheduleInstance
from casemsg.workers.services import WorkerChange, create_worker

NOW = datetime(2030, 1, 10, 0, 0, tzinfo=UTC)
KE_OK, KE_NY, KE_OUT = "254711000001", "254711000002", "254711000003"
US = "12066171234"  # North America: no SMS without recorded consent


def body(**over: Any) -> dict[str, Any]:
    return {
        "name": "Reminder",
        "content": {"text": "Hello {case.name}", "translations": {"sw": "Habari {case.name}"}},
        "recipients": {"case_type": "mother"},
        "schedule": {"type": "daily", "time": "09:00", "start_date": "2030-01-11", "count": 3},
        **over,
    }


@pytest.fixture
def population(project):
    """Two sendable mothers in two zones (one speaks Swahili), and one of each blocked kind."""

    def mother(case_id: str, name: str, **props: str) -> CaseChange:
        return CaseChange(case_id=case_id, case_type="mother", name=name, properties=props)

    cases = bulk_upsert(
        project,
        [
            mother("asha", "Asha", contact_phone_number=KE_OK, time_zone="Africa/Nairobi"),
            mother("baraka", "Baraka", contact_phone_number=KE_NY, time_zone="America/New_York", language_code="sw"),
            mother("bad", "Bad", contact_phone_number="1-206-617-1234"),
            mother("us", "Maria", contact_phone_number=US),
            mother("stop", "Stopped", contact_phone_number=KE_OUT),
            mother("closed", "Closed", contact_phone_number="254711000009"),
            CaseChange(case_id="child", case_type="child", name="Kid", properties={"contact_phone_number": KE_OK}),
        ],
    )
    by_id = {c.case_id: c for c in cases}
    update_case(project, by_id["closed"], CaseChange(closed=True))
    opt_out(KE_OUT, project=project, source="keyword")
    return by_id


def test_counts_blocked_codes_segments_and_first_sends_in_two_zones(project, population):
    with CaptureQueriesContext(connection) as ctx:
        p = preflight.preflight(project, body(), NOW)
    written = [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert written == []  # nothing is saved, nothing is queued
    assert not Broadcast.objects.exists() and not ScheduleInstance.objects.exists() and not Message.objects.exists()

    assert p.recipients == 5  # the open mothers: not the closed one, not the child
    assert p.sendable == 2
    assert p.blocked == {errors.INVALID_PHONE_NUMBER: 1, errors.NO_CONSENT: 1, errors.PHONE_OPTED_OUT: 1}
    assert p.no_events == 0
    assert p.segments == 2  # one segment each

    first = [(f.case_id, f.due_utc, f.local_time, f.time_zone, f.language, f.text) for f in p.first_sends]
    assert first == [
        # 09:00 in Nairobi (UTC+3) comes before 09:00 in New York (UTC-5 in January)
        ("asha", datetime(2030, 1, 11, 6, 0, tzinfo=UTC), "2030-01-11T09:00:00", "Africa/Nairobi", "", "Hello Asha"),
        (
            "baraka",
            datetime(2030, 1, 11, 14, 0, tzinfo=UTC),
            "2030-01-11T09:00:00",
            "America/New_York",
            "sw",
            "Habari Baraka",
        ),
    ]


def test_agrees_with_what_the_broadcast_then_queues(project, population):
    p = preflight.preflight(project, body(), NOW)
    b = services.create_broadcast(project, body(), NOW)
    assert ScheduleInstance.objects.filter(broadcast=b).count() == p.recipients
    tick.tick(datetime(2030, 1, 11, 6, 0, tzinfo=UTC))
    queued = Message.objects.filter(event_id=b.event_id)
    assert [(m.case.case_id, m.next_attempt_on) for m in queued] == [("asha", p.first_sends[0].due_utc)]


def test_a_named_zone_and_a_limit(project, population):
    p = preflight.preflight(
        project,
        body(schedule={"type": "once", "date": "2030-01-11", "time": "10:00", "time_zone": "Asia/Kolkata"}),
        NOW,
        limit=1,
    )
    assert [(f.case_id, f.time_zone, f.local_time) for f in p.first_sends] == [
        ("asha", "Asia/Kolkata", "2030-01-11T10:00:00")
    ]
    assert p.first_sends[0].due_utc == datetime(2030, 1, 11, 4, 30, tzinfo=UTC)
    assert p.sendable == 2


def test_a_one_off_time_already_past_in_some_zones_has_no_event_there(project, population):
    # 09:00 on the 10th: past in Nairobi (06:00 UTC) at 07:00 UTC, still to come in New York (14:00 UTC)
    now = datetime(2030, 1, 10, 7, 0, tzinfo=UTC)
    p = preflight.preflight(project, body(schedule={"type": "once", "date": "2030-01-10", "time": "09:00"}), now)
    assert p.no_events == 1  # Asha; the others are in New York or in the project's zone (UTC)
    assert [f.case_id for f in p.first_sends] == ["baraka"]
    assert p.recipients == p.sendable + p.no_events + sum(p.blocked.values())


def test_the_same_numbers_in_pages_of_any_size(project, population, monkeypatch):
    whole = preflight.preflight(project, body(), NOW)
    monkeypatch.setattr(preflight, "CHUNK", 2)
    paged = preflight.preflight(project, body(), NOW)
    assert paged == whole


def test_segments_of_a_long_text_without_placeholders_and_without_a_translation(project, population):
    text = "x" * 200  # GSM-7: two segments of 153
    p = preflight.preflight(project, body(content={"translations": {"en": text}}), NOW)
    # Baraka reads Swahili: no Swahili text, so the chain falls back to the project's English
    assert p.sendable == 2 and p.segments == 4
    assert [f.language for f in p.first_sends] == ["en", "en"]


def test_mobile_workers_and_email(project, population):
    w = create_worker(
        project, WorkerChange(username="fw1", name="Field Worker", phone_numbers=["254722000001"], email="fw@x.org")
    )
    p = preflight.preflight(project, body(recipients={"mobile_workers": "all"}), NOW)
    assert p.recipients == p.sendable == 1
    assert (p.first_sends[0].mobile_worker_id, p.first_sends[0].case_id) == (w.pk, None)
    assert p.first_sends[0].text == "Hello (?)"  # a worker has no case: {case.name} is unknown

    mail = body(content={"channel": "email", "text": "Hi {recipient.name}", "subject": "For {recipient.name}"})
    p = preflight.preflight(project, {**mail, "recipients": {"mobile_workers": "all", "case_ids": ["asha"]}}, NOW)
    assert p.channel == "email" and p.segments == 0
    assert p.blocked == {errors.NO_EMAIL_ADDRESS: 1}  # Asha has no email address
    assert [(f.text, f.subject) for f in p.first_sends] == [("Hi Field Worker", "For Field Worker")]


def test_a_bad_body_is_refused_like_the_broadcast(project):
    with pytest.raises(InputError) as e:
        preflight.preflight(project, body(schedule={"type": "daily", "time": "25:00"}), NOW)
    assert e.value.code == errors.VALIDATION_ERROR and "schedule.time" in e.value.message
    with pytest.raises(InputError) as e:
        preflight.preflight(project, body(schedule={"type": "daily", "time": "09:00", "time_zone": "Mars/Olympus"}))
    assert e.value.code == errors.INVALID_TIME_ZONE
