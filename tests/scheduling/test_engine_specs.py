"""Broadcast and alert bodies (casemsg.scheduling.specs): what is refused, with which catalogue code and a
sentence naming the field, and the normalised JSON that is stored (and read back unchanged)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.scheduling import contents, recipients, schedules, services, specs
from casemsg.scheduling.models import Broadcast

NOW = datetime(2027, 1, 4, 12, tzinfo=UTC)


def body(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "Reminder",
        "content": {"text": "Hello {case.name}"},
        "recipients": {"case_type": "mother"},
        "schedule": {"type": "daily", "time": "09:00"},
    }
    out.update(changes)
    return out


def refused(project, data: dict[str, Any]) -> InputError:
    with pytest.raises(InputError) as e:
        specs.parse_broadcast(data, project, NOW)
    return e.value


@pytest.mark.parametrize(
    ("schedule", "code", "words"),
    [
        ({"type": "hourly", "time": "09:00"}, errors.VALIDATION_ERROR, "schedule.type"),
        ({"type": "daily", "time": "25:00"}, errors.VALIDATION_ERROR, "schedule.time: '25:00' is not a time of day"),
        ({"type": "daily", "time": "9.30"}, errors.VALIDATION_ERROR, "schedule.time"),
        (
            {"type": "daily", "time": "09:00", "time_zone": "Mars/Olympus"},
            errors.INVALID_TIME_ZONE,
            "schedule.time_zone",
        ),
        ({"type": "daily", "time": "09:00", "time_zone": "localtime"}, errors.INVALID_TIME_ZONE, "schedule.time_zone"),
        ({"type": "weekly", "time": "09:00"}, errors.VALIDATION_ERROR, "weekdays"),
        ({"type": "weekly", "time": "09:00", "weekdays": ["someday"]}, errors.VALIDATION_ERROR, "schedule.weekdays[0]"),
        ({"type": "monthly", "time": "09:00", "month_days": [0]}, errors.VALIDATION_ERROR, "schedule.month_days[0]"),
        ({"type": "monthly", "time": "09:00", "month_days": [32]}, errors.VALIDATION_ERROR, "schedule.month_days[0]"),
        ({"type": "monthly", "time": "09:00"}, errors.VALIDATION_ERROR, "month_days"),
        ({"type": "daily", "time": "09:00", "count": 0}, errors.VALIDATION_ERROR, "schedule.count"),
        (
            {"type": "daily", "time": "09:00", "until": "2026-01-01", "start_date": "2027-01-01"},
            errors.VALIDATION_ERROR,
            "until",
        ),
        ({"type": "daily"}, errors.VALIDATION_ERROR, "exactly one of time"),
        ({"type": "daily", "time": "09:00", "every": 3}, errors.VALIDATION_ERROR, "unknown field(s) every"),
        ({"type": "once", "time": "09:00"}, errors.VALIDATION_ERROR, "schedule.date"),
        (
            {"type": "once", "date": "2027-01-03", "time": "09:00", "time_zone": "UTC"},
            errors.VALIDATION_ERROR,
            "already passed",
        ),
        ({"type": "now", "time": "09:00"}, errors.VALIDATION_ERROR, "unknown field(s) time"),
    ],
)
def test_bad_schedules_are_refused_with_a_code_and_the_field(project, schedule, code, words):
    e = refused(project, body(schedule=schedule))
    assert e.code == code and e.status == 422, e.message
    assert words in e.message


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        ({"text": "  "}, errors.MESSAGE_BLANK, "content"),
        ({}, errors.MESSAGE_BLANK, "content"),
        ({"text": "Hello {case.name"}, errors.CANNOT_RENDER_MESSAGE, "content.text"),
        ({"translations": {"en": "Hi {case}"}}, errors.CANNOT_RENDER_MESSAGE, "content.translations.en"),
        (
            {"translations": {"fr": "Bonjour"}},
            errors.UNKNOWN_LANGUAGE_CODE,
            "'fr' is not one of the project's languages",
        ),
        ({"translations": {"sw": "Habari"}}, errors.VALIDATION_ERROR, "default language"),
        ({"channel": "fax", "text": "x"}, errors.VALIDATION_ERROR, "content.channel"),
        ({"channel": "email", "text": "x"}, errors.VALIDATION_ERROR, "content.subject is required"),
        (
            {"channel": "email", "text": "x", "subject": {"en": "{oops"}},
            errors.CANNOT_RENDER_MESSAGE,
            "content.subject.en",
        ),
        ({"channel": "sms", "text": "x", "subject": "s"}, errors.VALIDATION_ERROR, "unknown field(s) subject"),
    ],
)
def test_bad_contents_are_refused(project, content, code, words):
    e = refused(project, body(content=content))
    assert e.code == code, e.message
    assert words in e.message


@pytest.mark.parametrize(
    ("recipients", "words"),
    [
        ({}, "recipients must name someone"),
        ({"filters": {"district": "North"}}, "recipients.case_type"),
        ({"case_type": "mother", "filters": {"district": ["North"]}}, "recipients.filters.district"),
        ({"case_ids": "abc"}, "recipients.case_ids must be a list"),
        ({"mobile_workers": [True]}, "recipients.mobile_workers[0]"),
        ({"owners_of": {"filters": {}}}, "recipients.owners_of.case_type"),
        ({"groups": ["x"]}, "unknown field(s) groups"),
    ],
)
def test_bad_recipients_are_refused(project, recipients, words):
    e = refused(project, body(recipients=recipients))
    assert e.code == errors.VALIDATION_ERROR and words in e.message


def test_other_fields(project):
    assert refused(project, body(default_language="fr")).code == errors.UNKNOWN_LANGUAGE_CODE
    assert "max_lateness_minutes" in refused(project, body(max_lateness_minutes=0)).message
    assert "unknown field(s) colour" in refused(project, body(colour="red")).message
    assert "name is required" in refused(project, {**body(), "name": None}).message


def test_alert_schedules(project):
    ok = schedules.parse_alert_schedule(
        {
            "type": "offsets",
            "unit": "hours",
            "offsets": [0, 2, 24],
            "start": {"from": "property", "property": "edd", "days": -7, "time": "08:00"},
        }
    )
    assert ok.reads == {"edd"} and ok.count == 1
    for bad, words in [
        ({"type": "offsets", "offsets": [30, 10]}, "increasing order"),
        ({"type": "offsets", "offsets": [0], "count": 3}, "repeat_every"),
        ({"type": "offsets", "offsets": [0, 60], "repeat_every": 30, "count": 3}, "longer than the span"),
        ({"type": "offsets", "unit": "weeks", "offsets": [1]}, "schedule.unit"),
        ({"type": "daily", "time": "09:00", "start": {"from": "yesterday"}}, "schedule.start.from"),
        ({"type": "daily", "time": "09:00", "start": {"from": "property"}}, "schedule.start.property"),
        ({"type": "daily", "time_property": "bad name!"}, "schedule.time_property"),
        ({"type": "once", "date": "2027-01-01", "time": "09:00"}, "schedule.type"),
        ({"type": "daily", "random_window": {"start": "10:00", "end": "10:00"}}, "empty"),
    ]:
        with pytest.raises(InputError) as e:
            schedules.parse_alert_schedule(bad)
        assert e.value.code == errors.VALIDATION_ERROR and words in e.value.message, (bad, e.value.message)
    with pytest.raises(InputError) as e:
        recipients.parse_alert_recipients(["case", "neighbour"])
    assert "recipients[1]" in e.value.message


@pytest.mark.parametrize(
    "schedule",
    [
        {"type": "now"},
        {"type": "once", "date": "2027-02-01", "time": "09:00", "time_zone": "Africa/Nairobi"},
        {"type": "daily", "times": ["17:30", "09:00"], "count": 10},
        {"type": "weekly", "weekdays": ["thursday", 0], "time": "08:00", "interval": 2, "until": "2027-12-31"},
        {"type": "monthly", "month_days": ["last", 31, 15], "time": "07:15:30", "time_zone": "recipient"},
    ],
)
def test_broadcast_schedules_are_stored_normalised_and_read_back_unchanged(project, schedule):
    s = specs.parse_broadcast(body(schedule=schedule), project, NOW).schedule
    stored = s.as_json()
    assert schedules.schedule_from_json(stored, "broadcast") == s
    assert schedules.schedule_from_json(stored, "broadcast").as_json() == stored


def test_normalised_forms(project):
    s = specs.parse_broadcast(
        body(schedule={"type": "weekly", "weekdays": ["thu", "mon"], "time": "8:05"}), project, NOW
    )
    # the default start date is today in the project's zone
    assert s.schedule.as_json() == {
        "type": "weekly",
        "times": ["08:05"],
        "weekdays": [0, 3],
        "start_date": "2027-01-04",
        "time_zone": "recipient",
    }
    a = schedules.parse_alert_schedule({"type": "offsets", "unit": "minutes", "every": 120, "count": 3})
    assert a.as_json() == {
        "type": "offsets",
        "unit": "hours",
        "offsets": [0],
        "repeat_every": 2,
        "count": 3,
        "start": {"from": "matched"},
        "time_zone": "recipient",
    }
    assert schedules.schedule_from_json(a.as_json(), "alert") == a
    content = contents.parse_content({"channel": "email", "subject": "Visit", "translations": {"en": "Hi"}}, project)
    assert content.as_json() == {"channel": "email", "translations": {"en": "Hi"}, "subject": "Visit"}
    assert contents.content_from_json(content.as_json()) == content


def test_the_service_refuses_bad_bodies_before_writing(project):
    with pytest.raises(InputError) as e:
        services.create_broadcast(project, body(schedule={"type": "fortnightly"}), NOW)
    assert e.value.code == errors.VALIDATION_ERROR
    assert not Broadcast.objects.exists()
