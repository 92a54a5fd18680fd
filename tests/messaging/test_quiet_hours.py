"""Quiet hours: a project window (21:00-08:00) read on each recipient's own clock at send time. A scheduled
SMS (a broadcast's or alert's occurrence) or an opt-in question due inside waits for the end — queued, delay
QUIET_HOURS — and then goes; replies in a conversation the person started, opt-out confirmations, API
one-off sends and email go at once.

The clock is Django's `timezone.now` (patched: the pipeline reads it once per batch, in `process()`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from itertools import product
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest

from casemsg.cases.models import Case
from casemsg.core import wallclock
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.projects import services as project_services
from casemsg.scheduling import timing
from tests.inbound.conftest import OPT_OUT_CONFIRMATION, QUESTION, case_row, outbox, sms_in
from tests.messaging.conftest import KE, KE2, US, deliver, msg, send
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db

# 16:30 UTC on 15 January 2027: 22:00 in Kolkata (UTC+5:30, quiet), 11:30 in New York (EST, morning).
LATE_IN_KOLKATA = datetime(2027, 1, 15, 16, 30, tzinfo=UTC)
# 08:00 in Kolkata on the 16th.
KOLKATA_MORNING = datetime(2027, 1, 16, 2, 30, tzinfo=UTC)


@contextmanager
def clock(at: datetime) -> Iterator[None]:
    with patch("django.utils.timezone.now", return_value=at):
        yield


def quiet(project, start: str | None = "21:00", end: str = "08:00") -> None:
    project_services.update_settings(project, {"quiet_hours": {"start": start, "end": end} if start else None})


def case(api, number: str = KE, zone: str = "Asia/Kolkata", **props: str) -> Case:
    """A case made through the API (so the phone registry and consent follow, as in production)."""
    return case_row(api, {"contact_phone_number": number, "time_zone": zone, **props})


def scheduled(project, c: Case, key: str, channel: str = "sms") -> Message:
    """A broadcast's occurrence, queued the way the scheduler queues it (bulk path, with a send key)."""
    event = MessagingEvent.objects.create(project=project, source="broadcast")
    spec = pipeline.MessageSpec(channel=channel, case=c, text="Clinic day tomorrow", subject="Clinic", send_key=key)
    pipeline.queue(project, [spec], event, precheck=False)
    return Message.objects.get(send_key=key)


# --- scheduled SMS ---------------------------------------------------------------------------------
def test_a_scheduled_sms_inside_quiet_hours_waits_for_their_end_in_the_recipients_zone(api, project, sandbox):
    quiet(project)
    kolkata = case(api, KE, "Asia/Kolkata")
    new_york = case(api, KE2, "America/New_York")
    with clock(LATE_IN_KOLKATA):
        held = scheduled(project, kolkata, "si:1:0")
        goes = scheduled(project, new_york, "si:1:1")
        deliver()

    row = msg(held.pk)
    assert (row.status, row.delay_reason, row.error, row.attempts, row.claim) == ("queued", "QUIET_HOURS", "", 0, "")
    assert row.next_attempt_on == KOLKATA_MORNING  # 08:00 IST on the 16th
    shown = api.get(f"messages/{row.pk}").json()
    assert (shown["status"], shown["delay_reason"], shown["error"]) == ("queued", "QUIET_HOURS", None)
    assert msg(goes.pk).status == "sent"  # 11:30 in New York at the same instant

    with clock(KOLKATA_MORNING - timedelta(minutes=1)):
        assert deliver() == 0  # not due yet
    with clock(KOLKATA_MORNING):
        deliver()
    row = msg(held.pk)
    assert (row.status, row.delay_reason, row.attempts) == ("sent", "", 1)
    assert row.sent_on == KOLKATA_MORNING


def test_early_morning_part_of_a_window_crossing_midnight(api, project, sandbox):
    quiet(project)
    c = case(api)
    at = datetime(2027, 1, 15, 0, 0, tzinfo=UTC)  # 05:30 IST
    with clock(at):
        m = scheduled(project, c, "si:2:0")
        deliver()
    assert (msg(m.pk).delay_reason, msg(m.pk).next_attempt_on) == (
        "QUIET_HOURS",
        datetime(2027, 1, 15, 2, 30, tzinfo=UTC),
    )
    with clock(datetime(2027, 1, 15, 15, 29, tzinfo=UTC)):  # 20:59 IST: outside the window
        n = scheduled(project, c, "si:2:1")
        deliver()
    assert msg(n.pk).status == "sent"


def test_a_window_that_does_not_cross_midnight(api, project, sandbox):
    quiet(project, "12:00", "14:00")
    c = case(api, zone="Africa/Nairobi")
    with clock(datetime(2027, 1, 15, 10, 30, tzinfo=UTC)):  # 13:30 EAT
        m = scheduled(project, c, "si:3:0")
        deliver()
    row = msg(m.pk)
    assert (row.status, row.delay_reason, row.next_attempt_on) == (
        "queued",
        "QUIET_HOURS",
        datetime(2027, 1, 15, 11, 0, tzinfo=UTC),  # 14:00 EAT
    )
    with clock(datetime(2027, 1, 15, 19, 0, tzinfo=UTC)):  # 22:00 EAT: a daytime window is not quiet at night
        n = scheduled(project, c, "si:3:1")
        deliver()
        assert msg(n.pk).status == "sent"
        assert msg(m.pk).status == "sent"  # the held one went with it, its end long past


def test_no_quiet_hours_when_none_are_set(api, project, sandbox):
    c = case(api)
    with clock(LATE_IN_KOLKATA):
        m = scheduled(project, c, "si:4:0")
        deliver()
    assert (msg(m.pk).status, msg(m.pk).delay_reason) == ("sent", "")


def test_a_contact_without_a_zone_uses_the_projects(api, project, sandbox):
    quiet(project)
    project_services.update_settings(project, {"default_time_zone": "Asia/Kolkata"})
    c = case(api, zone="")
    with clock(LATE_IN_KOLKATA):
        m = scheduled(project, c, "si:5:0")
        deliver()
    assert (msg(m.pk).delay_reason, msg(m.pk).next_attempt_on) == ("QUIET_HOURS", KOLKATA_MORNING)


# --- what goes at once -----------------------------------------------------------------------------
def test_replies_in_a_conversation_the_person_started_go_at_once(api, project, sandbox):
    quiet(project)
    c = case(api)
    r = api.post("keywords", {"keyword": "clinic", "reply": {"en": "Open 8-5"}})
    assert r.status_code == 201, r.content
    with clock(LATE_IN_KOLKATA):
        held = scheduled(project, c, "si:6:0")
        sms_in(api, KE, "CLINIC")  # a keyword reply
        sms_in(api, KE, "STOP")  # the opt-out confirmation
    assert outbox(api) == ["Open 8-5", OPT_OUT_CONFIRMATION]
    assert msg(held.pk).delay_reason == "QUIET_HOURS"  # the same contact, the same minute
    replies = Message.objects.filter(direction=Message.OUT, send_key="")
    assert {(m.kind, m.status, m.delay_reason) for m in replies} == {("normal", "sent", ""), ("compliance", "sent", "")}


def test_an_api_one_off_send_goes_at_once(api, project, sandbox):
    quiet(project)
    c = case(api)
    with clock(LATE_IN_KOLKATA):
        m = send(api, c.case_id)
        deliver()
    assert (msg(m).status, msg(m).delay_reason) == ("sent", "")


def test_the_consent_question_waits(api, project, sandbox):
    quiet(project)
    c = case(api, US, "America/New_York")
    late_in_new_york = datetime(2027, 1, 15, 3, 0, tzinfo=UTC)  # 22:00 EST
    with clock(late_in_new_york):
        r = api.post(f"cases/{c.case_id}/opt-in-request")
        assert r.status_code in (200, 201, 202), r.content
        deliver()
    row = Message.objects.get(kind=Message.OPT_IN_REQUEST)
    assert (row.status, row.delay_reason, row.next_attempt_on) == (
        "queued",
        "QUIET_HOURS",
        datetime(2027, 1, 15, 13, 0, tzinfo=UTC),  # 08:00 EST
    )
    with clock(datetime(2027, 1, 15, 13, 0, tzinfo=UTC)):
        deliver()
    assert (msg(row.pk).status, msg(row.pk).text) == ("sent", QUESTION)


def test_email_is_not_held(api, project, smtp: SmtpServer):
    quiet(project)
    c = case(api, commcare_email_address="asha@example.org")
    with clock(LATE_IN_KOLKATA):
        m = scheduled(project, c, "si:7:0", channel="email")
        deliver()
    assert (msg(m.pk).status, msg(m.pk).delay_reason) == ("sent", "")
    smtp.wait_for(1)


def test_which_messages_are_subject() -> None:
    def m(**kw: str) -> Message:
        return Message(**kw)

    assert pipeline.subject_to_quiet_hours(m(send_key="si:1:0"))
    assert pipeline.subject_to_quiet_hours(m(kind=Message.OPT_IN_REQUEST))
    assert not pipeline.subject_to_quiet_hours(m())  # an API one-off, a keyword or survey reply
    assert not pipeline.subject_to_quiet_hours(m(kind=Message.COMPLIANCE))
    assert not pipeline.subject_to_quiet_hours(m(send_key="si:1:0", channel="email"))


# --- the core copy of the window arithmetic --------------------------------------------------------
def test_the_cores_quiet_until_equals_the_schedulers() -> None:
    """messaging cannot import scheduling (a higher layer): the core holds the same function. Compared
    every 10 minutes over DST days of zones with 1-hour and 30-minute shifts."""
    zones = [ZoneInfo(z) for z in ("Asia/Kolkata", "America/New_York", "Australia/Lord_Howe", "Africa/Nairobi")]
    windows = [
        (time(21), time(8)),
        (time(12), time(14)),
        (time(22), time(1, 30)),
        (time(1), time(3)),
        (time(8), time(8)),
    ]
    days = [datetime(2027, 3, 13, tzinfo=UTC), datetime(2027, 11, 6, tzinfo=UTC), datetime(2027, 10, 2, tzinfo=UTC)]
    instants = [d + timedelta(minutes=10 * i) for d in days for i in range(2 * 24 * 6)]
    for tz, (start, end), now in product(zones, windows, instants):
        assert wallclock.quiet_until(now, tz, start, end) == timing.quiet_until(now, tz, start, end), (tz, start, now)
