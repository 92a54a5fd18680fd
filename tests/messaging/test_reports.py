"""The reports' counts equal the messages in the log: the messaging history by source and a broadcast's delivery
report, counted live, from the roll-up, and after messages of counted days changed status or were deleted (the
trigger marks their day stale), on the project's clock; the roll-up counts only days that have settled."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from casemsg.core import errors
from casemsg.inbound import conversations
from casemsg.messaging import queries, reports, triggers
from casemsg.messaging.models import CountedDay, Message, MessageCount
from casemsg.projects.models import Project
from casemsg.scheduling import services as scheduling
from tests.inbound.conftest import KE, KE2, US, send, sms_in, work

pytestmark = pytest.mark.django_db
TWO_WAY = {"contact_phone_number_is_verified": "1"}
NAIROBI = "Africa/Nairobi"


def keyword(api, word: str, reply: str) -> None:
    r = api.post("keywords", {"keyword": word, "reply": {"en": reply}})
    assert r.status_code == 201, r.content


def seed(api, project: Project) -> None:
    """Messages of every source: a broadcast, an API call, a person's reply, a keyword's reply, the messages
    received, the opt-in question (casemsg's own), and failures (no consent)."""
    Project.objects.filter(pk=project.pk).update(default_time_zone=NAIROBI)
    project.refresh_from_db()
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    api.case({"contact_phone_number": KE2, **TWO_WAY}, case_id="ben", name="Ben")
    api.case({"contact_phone_number": US}, case_id="maria", name="Maria")  # no consent: her messages fail
    keyword(api, "CLINIC", "Open 8-17")
    scheduling.create_broadcast(
        project,
        {
            "name": "Tip of the day",
            "content": {"text": "Drink clean water, {case.name}"},
            "recipients": {"case_type": "patient"},
            "schedule": {"type": "now"},
        },
        timezone.now(),
    )
    send(api, "amina", "Your visit is on Friday")
    send(api, "maria", "Your visit is on Friday")
    sms_in(api, KE, "CLINIC hours?")
    sms_in(api, KE2, "a question nothing answers")
    conversations.reply(project, conversations.contact(project, "ben"), "I will call you", person=("olga", "Olga N"))
    r = api.post("cases/maria/opt-in-request")
    assert r.status_code == 202, r.content
    work()


def backdate(project: Project, share: int, days: int) -> None:
    """Move every `share`-th of the project's messages `days` back (and a little into the night, so that the
    project's day differs from UTC's for some)."""
    ids = list(Message.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))[::share]
    for pk in ids:
        m = Message.objects.get(pk=pk)
        Message.objects.filter(pk=pk).update(created_on=m.created_on - timedelta(days=days, hours=2))


def log_tally(project: Project, since: date, until: date) -> Counter[tuple[str, str, str, str]]:
    """(source, ref, status, error) of every message the log lists for since…until in the project's zone."""
    zone = ZoneInfo(project.default_time_zone)
    f = queries.MessageFilter(
        since=datetime.combine(since, datetime.min.time(), tzinfo=zone),
        until=datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=zone),
    )
    out: Counter[tuple[str, str, str, str]] = Counter()
    for m in queries.messages(project, f).select_related("event"):
        source = "inbound" if m.direction == "in" else (m.event.source if m.event else "")
        ref = m.event.source_id if m.event and source in reports.NAMED else ""
        out[(source, ref, m.status, m.error)] += 1
    return out


def report_tally(project: Project, h: reports.History) -> Counter[tuple[str, str, str, str]]:
    """The history's counts, row by row (its CSV's rows); checked against the page's totals on the way."""
    out: Counter[tuple[str, str, str, str]] = Counter()
    for _day, source, ref, _direction, _channel, status, error, n in reports.history_rows(project, h.since, h.until):
        out[(source, ref, status, error)] += n
    by_source: Counter[str] = Counter()
    for (source, _ref, _status, _error), n in out.items():
        by_source[source] += n
    assert {r.source: r.tally.total for r in h.sources} == dict(by_source)
    assert h.total.total == sum(out.values()) == sum(t.total for t in h.by_day.values())
    named: Counter[tuple[str, str]] = Counter()
    for (source, ref, _status, _error), n in out.items():
        if source in reports.NAMED and ref:
            named[(source, ref)] += n
    assert {(r.source, r.ref): r.tally.total for r in h.named} == dict(named)
    return out


def test_the_history_equals_the_log_live_rolled_up_and_after_changes(api, project, sandbox):
    seed(api, project)
    backdate(project, 3, 3)
    backdate(project, 4, 10)
    today = reports.today(project)
    since, until = today - timedelta(days=20), today
    live = reports.history(project, since, until)
    assert report_tally(project, live) == log_tally(project, since, until)
    assert live.total.total == Message.objects.filter(project=project).count()
    sources = {r.source: r.tally.total for r in live.sources}
    assert set(sources) >= {"broadcast", "api", "person", "keyword", "inbound", "system"}
    named = {(r.source, r.name): r.tally.total for r in live.named}
    assert named[("person", "Olga N")] == 1 and named[("broadcast", "Tip of the day")] == 3
    assert live.total.by_error[errors.NO_CONSENT] >= 2  # the broadcast's and the API's message to Maria

    counted = reports.roll_up(project, max_days=None)
    assert counted >= 10  # every settled day since the first message, empty ones too
    assert not reports.days_to_count(project)
    # today is counted up to the last whole hour that ended two hours ago (the rest is counted live)
    assert all(d.end_utc <= reports.settled_until() for d in CountedDay.objects.all())
    rolled = reports.history(project, since, until)
    assert report_tally(project, rolled) == report_tally(project, live)
    assert MessageCount.objects.filter(project=project).exists()

    # a message of a counted day changes (a late delivery report), another is deleted: their days go stale
    old = Message.objects.filter(project=project, created_on__lt=timezone.now() - timedelta(days=5))
    late = old.filter(direction="out").first()
    gone = old.exclude(pk=late.pk).first()
    Message.objects.filter(pk=late.pk).update(status=Message.FAILED, error=errors.GATEWAY_ERROR)
    Message.objects.filter(pk=gone.pk).delete()
    assert CountedDay.objects.filter(stale=True).count() >= 1
    assert report_tally(project, reports.history(project, since, until)) == log_tally(project, since, until)
    assert reports.roll_up(project, max_days=None) >= 1
    assert not CountedDay.objects.filter(stale=True).exists()
    assert report_tally(project, reports.history(project, since, until)) == log_tally(project, since, until)

    # another zone: other days; nothing counted in the old zone is used
    Project.objects.filter(pk=project.pk).update(default_time_zone="America/New_York")
    project.refresh_from_db()
    today = reports.today(project)
    since, until = today - timedelta(days=13), today
    assert report_tally(project, reports.history(project, since, until)) == log_tally(project, since, until)
    reports.roll_up(project, max_days=None)
    assert report_tally(project, reports.history(project, since, until)) == log_tally(project, since, until)

    rows = list(reports.history_csv_rows(project, since, until))
    assert sum(int(r[-1]) for r in rows) == sum(log_tally(project, since, until).values())
    assert any(r[1] == "person" and r[3] == "Olga N" for r in rows)


def test_a_broadcasts_delivery_report(api, project, sandbox):
    seed(api, project)
    b = scheduling.create_broadcast(
        project,
        {
            "name": "Second tip",
            "content": {"text": "Wash your hands"},
            "recipients": {"case_type": "patient"},
            "schedule": {"type": "now"},
        },
        timezone.now(),
    )
    work()
    ids = list(
        Message.objects.filter(event__source="broadcast", event__source_id=str(b.pk)).values_list("pk", flat=True)
    )
    assert len(ids) == 3
    Message.objects.filter(pk=ids[0]).update(created_on=timezone.now() - timedelta(days=2))
    reports.roll_up(project, max_days=None)
    first = reports.first_day(project, "broadcast", b.pk)
    d = reports.delivery(project, "broadcast", b.pk, first - timedelta(days=3), reports.today(project))
    assert (d.total.total, d.total.sent, d.total.failed) == (3, 2, 1)
    assert d.error_codes == [errors.NO_CONSENT] and len(d.days) == 2
    header, rows = reports.delivery_csv(d)
    rows = list(rows)
    assert header == [*reports.DELIVERY_COLUMNS, "failed NO_CONSENT"]
    assert rows[-1] == ["total", 3, 0, 2, d.total.delivered, 1, 1]
    # the other broadcast of the project is not in it
    other = reports.delivery(project, "broadcast", b.pk - 1, first - timedelta(days=3), reports.today(project))
    assert other.total.total == 3 and other.total.total + d.total.total == 6


def test_only_settled_hours_are_counted_and_a_day_counted_in_part_adds_up(project):
    """The roll-up counts a day up to the last whole hour that ended SETTLE ago (today's hours, a day that has
    just ended) and the rest of the day is counted live: the same numbers; a late change in the counted part
    marks the day stale."""
    day = (timezone.now() - timedelta(days=10)).astimezone(UTC).date()  # the project's zone: UTC

    def at(hour: int, minute: int = 30) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour, minutes=minute)

    for hour in (0, 2, 5):
        Message.objects.create(project=project, direction="out", status="sent", created_on=at(hour))
    now = at(6, 10)
    assert reports.settled_until(now) == at(4, 0)
    assert reports.days_to_count(project, now) == [(day, at(4, 0))]
    assert reports.roll_up(project, now) == 1 and reports.days_to_count(project, now) == []
    assert CountedDay.objects.get().end_utc == at(4, 0)
    h = reports.history(project, day, day)
    assert report_tally(project, h) == log_tally(project, day, day) and h.total.total == 3
    assert [r[-1] for r in reports.history_csv_rows(project, day, day)] == [3]  # one row: the two parts added
    # an hour later, a further hour has settled: counted again; the next day ends the day's count
    assert reports.days_to_count(project, now + timedelta(hours=1)) == [(day, at(5, 0))]
    assert reports.days_to_count(project, at(26, 0))[-1] == (day, at(24, 0))
    # a late delivery report for the 02:30 message (counted): its day goes stale, the numbers stay right
    m = Message.objects.get(created_on=at(2))
    Message.objects.filter(pk=m.pk).update(status="failed", error=errors.GATEWAY_ERROR)
    assert CountedDay.objects.get().stale
    assert reports.history(project, day, day).total.failed == 1


def test_the_triggers_are_there_and_come_back(project):
    """A migration that rebuilds the message table on SQLite drops its triggers: the roll-up puts them back and
    trusts no day counted meanwhile."""
    assert triggers.present(connection) == set(triggers.NAMES)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    CountedDay.objects.create(
        project=project,
        day=start.date(),
        zone="UTC",
        start_utc=start,
        end_utc=start + timedelta(days=1),
        counted_on=start,
    )
    triggers.run(connection, triggers.DROP)  # as a rebuild of the table does
    assert triggers.present(connection) == set()
    reports.roll_up_all()
    assert triggers.present(connection) == set(triggers.NAMES) and CountedDay.objects.get().stale
    assert triggers.ensure(connection) is False
