"""Reports on a project's messages: the messaging history by source (broadcast, alert, survey, keyword, API, a
person by name, the messages received) with counts by status and error per day, and the delivery report of one
broadcast or alert (per day it sent on). The pages, the API and their CSVs read them here.

Counting a million messages on every page view costs seconds, so the counts come from a **roll-up**: `roll_up`
counts each calendar day of the project (in its time zone) once into `MessageCount` (one row per source, person
or broadcast, direction, channel, status and error) and records it as a `CountedDay` — a past day whole, today
(and yesterday, just after midnight) up to the last whole hour that ended `SETTLE` ago, counted again as further
hours settle. A report sums the counted rows in the database and adds a live count of what they do not hold — the
last hours, a day counted under another time zone, a day not reached yet —, so it always equals the message log:

- a message of a counted span that is created, changes status or error, or is deleted afterwards (a late delivery
  report, a stale message expired, the simulator's reset) fires a database trigger that marks the day `stale`
  (casemsg.messaging.triggers): the reports count it live until the next roll-up counts it again;
- on PostgreSQL a day is counted under a table lock the trigger also needs, so a change either is in the count or
  marks the day after it (SQLite's transactions take the write lock up front: the same by construction);
- the roll-up runs in every worker's ticker once a minute (`roll_up_all`, a few days per project per beat).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, F, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from casemsg.core import timezones
from casemsg.messaging import triggers
from casemsg.messaging.models import CountedDay, Message, MessageCount, MessagingEvent
from casemsg.projects.models import Project

# What is counted ended this long ago, to the whole hour (the trigger looks only at messages older than half).
SETTLE = timedelta(hours=2)
# How far back the roll-up counts (older days are counted live when a report asks for them).
HISTORY_DAYS = 400
# Days one roll-up call counts per project (None: all), and per beat of a worker's ticker: a beat stays short
# (a day of 25,000 messages counts in a few tens of milliseconds on PostgreSQL); the next beat goes on.
ROLL_UP_DAYS = 31
DAYS_PER_BEAT = 7
# The longest range a history report covers (a year and a bit: a day per chart bar).
MAX_RANGE_DAYS = 400

INBOUND = "inbound"  # the source of a received message
PERSON, BROADCAST, ALERT = "person", "broadcast", "alert"
# the sources whose source_id is kept: who (a person's username), which broadcast or alert
NAMED = (PERSON, BROADCAST, ALERT)
# the order and words of the sources on pages and in CSVs ("" is a message that belongs to no event)
SOURCE_LABELS = {
    BROADCAST: "Broadcasts",
    ALERT: "Alerts",
    "survey": "Surveys",
    "keyword": "Keyword and compliance replies",
    "api": "API",
    PERSON: "People",
    "system": "casemsg (opt-in questions, verification, …)",
    INBOUND: "Received",
    "": "Other",
}
STATUSES = Message.STATUSES  # queued, sending, sent, delivered, failed, received

_SOURCE = Case(
    When(direction=Message.IN, then=Value(INBOUND)),
    default=Coalesce(F("event__source"), Value("")),
    output_field=CharField(),
)
_REF = Case(When(event__source__in=NAMED, then=F("event__source_id")), default=Value(""), output_field=CharField())


def zone_name(project: Project) -> str:
    """The project's zone, the one the reports' days are read in (UTC when it is not a valid name)."""
    zone = project.default_time_zone
    return zone if timezones.is_valid(zone) else "UTC"


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of a calendar day in `zone`."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def today(project: Project) -> date:
    return timezone.now().astimezone(ZoneInfo(zone_name(project))).date()


@dataclass(frozen=True)
class DayCount:
    """How many messages of one day had this source (and person, broadcast or alert), direction, channel,
    status and error."""

    day: date
    source: str
    ref: str
    direction: str
    channel: str
    status: str
    error: str
    n: int


# --- counting ----------------------------------------------------------------------------------------
def _live(
    project: Project, start: datetime, end: datetime, zone: ZoneInfo, only: Q | None = None, day: date | None = None
) -> list[DayCount]:
    """Count the project's messages created in [start, end), by local day (or all as `day`), in one query."""
    qs = Message.objects.filter(project=project, created_on__gte=start, created_on__lt=end)
    if only is not None:
        qs = qs.filter(only)
    keys = ["_source", "_ref", "direction", "channel", "status", "error"]
    qs = qs.annotate(_source=_SOURCE, _ref=_REF)
    if day is None:
        qs = qs.annotate(_day=TruncDate("created_on", tzinfo=zone))
        keys.append("_day")
    rows = qs.values(*keys).annotate(n=Count("pk")).order_by()
    return [
        DayCount(
            day=day if day is not None else r["_day"],
            source=r["_source"],
            ref=r["_ref"],
            direction=r["direction"],
            channel=r["channel"],
            status=r["status"],
            error=r["error"],
            n=r["n"],
        )
        for r in rows
    ]


def count_day(project: Project, day: date, now: datetime | None = None, until: datetime | None = None) -> int:
    """Count one day of the project's messages into the roll-up (replacing what it held), up to `until` (UTC,
    within the day: today's hours that have settled) or the whole day; returns the rows written. On PostgreSQL
    under a lock the trigger needs too: a message changed meanwhile is either counted or marks the day stale
    once the count is in."""
    name = zone_name(project)
    start, end = day_bounds(day, ZoneInfo(name))
    if until is not None:
        end = min(end, until)
    with transaction.atomic():
        if settings.IS_POSTGRES:
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {CountedDay._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        rows = _live(project, start, end, ZoneInfo(name), day=day)
        MessageCount.objects.filter(project=project, day=day).delete()
        MessageCount.objects.bulk_create(
            [
                MessageCount(
                    project=project,
                    day=day,
                    source=c.source,
                    ref=c.ref,
                    direction=c.direction,
                    channel=c.channel,
                    status=c.status,
                    error=c.error,
                    n=c.n,
                )
                for c in rows
            ],
            batch_size=1000,
        )
        CountedDay.objects.update_or_create(
            project=project,
            day=day,
            defaults={
                "zone": name,
                "start_utc": start,
                "end_utc": end,
                "counted_on": now or timezone.now(),
                "stale": False,
            },
        )
    return len(rows)


def settled_until(now: datetime | None = None) -> datetime:
    """Messages created before this time (UTC, a whole hour SETTLE or more ago) are counted by the roll-up:
    whole days, and the hours of today (and of yesterday) that ended SETTLE ago. Counted up to a whole hour, a
    day's count moves on once an hour, not at every beat."""
    return ((now or timezone.now()) - SETTLE).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def last_settled_day(project: Project, now: datetime | None = None) -> date:
    """The newest day of the project that ended at least SETTLE ago."""
    moment = (now or timezone.now()) - SETTLE
    return moment.astimezone(ZoneInfo(zone_name(project))).date() - timedelta(days=1)


def days_to_count(project: Project, now: datetime | None = None) -> list[tuple[date, datetime]]:
    """(day, count up to) for the days (newest first, HISTORY_DAYS back at most) whose count is missing, stale,
    made in another zone, or shorter than what has settled since (today's hours, a day that has just ended).
    Days before the project's first message need no count."""
    zone = ZoneInfo(zone_name(project))
    settled = settled_until(now)
    last = settled.astimezone(zone).date()
    first_on = (
        Message.objects.filter(project=project).order_by("created_on").values_list("created_on", flat=True).first()
    )
    if first_on is None:
        return []
    first = max(first_on.astimezone(zone).date(), last - timedelta(days=HISTORY_DAYS))
    if first > last:
        return []
    good = counted_days(project, first, last)
    out = []
    d = last
    while d >= first:
        start, end = day_bounds(d, zone)
        target = min(end, settled)
        if target > start and good.get(d, start) < target:
            out.append((d, target))
        d -= timedelta(days=1)
    return out


def roll_up(project: Project, now: datetime | None = None, max_days: int | None = ROLL_UP_DAYS) -> int:
    """Count the project's days that need it (`days_to_count`), newest first, at most `max_days` (None: all);
    returns how many days were counted."""
    todo = days_to_count(project, now)
    if max_days is not None:
        todo = todo[:max_days]
    for day, until in todo:
        count_day(project, day, now, until)
    return len(todo)


def roll_up_all(now: datetime | None = None, max_days: int | None = ROLL_UP_DAYS) -> int:
    """`roll_up` for every project (the worker's ticker calls it every minute), after checking that the message
    table's triggers are there (a migration that rebuilt the table on SQLite drops them: casemsg.messaging.triggers)."""
    triggers.ensure(connection)
    return sum(roll_up(p, now, max_days) for p in Project.objects.order_by("pk"))


def counted_days(project: Project, since: date, until: date) -> dict[date, datetime]:
    """{day: counted up to (UTC)} for the days since…until whose roll-up is good: counted in the project's zone
    and not stale since. A day counted up to its end is whole; today's count ends at a settled hour."""
    rows = CountedDay.objects.filter(
        project=project, day__gte=since, day__lte=until, zone=zone_name(project), stale=False
    ).values_list("day", "end_utc")
    return dict(rows)


def _gaps(project: Project, since: date, until: date, counted: dict[date, datetime]) -> list[tuple[datetime, datetime]]:
    """The UTC spans of since…until the roll-up does not hold — a day not counted, the rest of a day counted
    up to an hour —, adjacent ones joined."""
    zone = ZoneInfo(zone_name(project))
    spans: list[tuple[datetime, datetime]] = []
    d = since
    while d <= until:
        start, end = day_bounds(d, zone)
        upto = counted.get(d)
        gap = (start, end) if upto is None else (upto, end) if upto < end else None
        if gap is not None:
            if spans and spans[-1][1] == gap[0]:
                spans[-1] = (spans[-1][0], gap[1])
            else:
                spans.append(gap)
        d += timedelta(days=1)
    return spans


def _live_runs(
    project: Project, since: date, until: date, counted: dict[date, datetime], live: Q | None
) -> list[DayCount]:
    """A live count of what the roll-up does not hold of since…until, one query per span of consecutive time."""
    zone = ZoneInfo(zone_name(project))
    out: list[DayCount] = []
    for start, end in _gaps(project, since, until, counted):
        out.extend(_live(project, start, end, zone, live))
    return out


def _rolled(project: Project, counted: dict[date, datetime], rolled: Q | None) -> QuerySet[MessageCount]:
    qs = MessageCount.objects.filter(project=project, day__in=sorted(counted))
    return qs.filter(rolled) if rolled is not None else qs


def counts(
    project: Project,
    since: date,
    until: date,
    rolled: Q | None = None,
    live: Q | None = None,
) -> list[DayCount]:
    """Every count of the days since…until (both included, the project's zone): the counted days' roll-up rows
    (filtered by `rolled`, a Q on MessageCount) and a live count of the other days (filtered by `live`, a Q on
    Message) — the same numbers either way."""
    counted = counted_days(project, since, until)
    out: list[DayCount] = []
    if counted:
        fields = ("day", "source", "ref", "direction", "channel", "status", "error", "n")
        out.extend(DayCount(*row) for row in _rolled(project, counted, rolled).values_list(*fields))
    out.extend(_live_runs(project, since, until, counted, live))
    return out


# --- the history by source ------------------------------------------------------------------------------
@dataclass
class Tally:
    """Messages by status, and the failed ones by error code."""

    by_status: dict[str, int] = field(default_factory=dict)
    by_error: dict[str, int] = field(default_factory=dict)

    def add(self, status: str, error: str, n: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + n
        if error:
            self.by_error[error] = self.by_error.get(error, 0) + n

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def of(self, status: str) -> int:
        return self.by_status.get(status, 0)

    @property
    def queued(self) -> int:
        """Waiting: queued, or being handed to a gateway right now."""
        return self.of(Message.QUEUED) + self.of(Message.SENDING)

    @property
    def sent(self) -> int:
        """Taken by a gateway: sent, delivered ones included."""
        return self.of(Message.SENT) + self.of(Message.DELIVERED)

    @property
    def delivered(self) -> int:
        return self.of(Message.DELIVERED)

    @property
    def failed(self) -> int:
        return self.of(Message.FAILED)

    @property
    def received(self) -> int:
        return self.of(Message.RECEIVED)

    def errors(self) -> list[tuple[str, int]]:
        """The error codes, most frequent first."""
        return sorted(self.by_error.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass
class SourceRow:
    """One line of the history: a source, or one person, broadcast or alert within it."""

    source: str
    ref: str
    name: str
    tally: Tally = field(default_factory=Tally)


@dataclass
class History:
    since: date
    until: date
    zone: str
    channel: str | None
    days: list[date]
    by_day: dict[date, Tally]
    sources: list[SourceRow]  # one per source, in SOURCE_LABELS' order
    named: list[SourceRow]  # each person, broadcast and alert with messages in the range
    total: Tally


def checked_range(
    project: Project, since: date | None, until: date | None, default_days: int = 30
) -> tuple[date, date]:
    """The range a report covers: the days given, else the last `default_days` up to today (the project's
    zone); at most MAX_RANGE_DAYS (the start moves up)."""
    until = until or today(project)
    since = since or until - timedelta(days=default_days - 1)
    if since > until:
        since, until = until, since
    if (until - since).days >= MAX_RANGE_DAYS:
        since = until - timedelta(days=MAX_RANGE_DAYS - 1)
    return since, until


def history(project: Project, since: date, until: date, channel: str | None = None) -> History:
    """The messaging history of since…until (both included): per day, per source, per person, broadcast and
    alert, by status and error. The counted days are summed in the database (two GROUP BYs over the roll-up,
    whatever the number of messages); the other days are counted live and added here."""
    rolled = Q(channel=channel) if channel else None
    live = Q(channel=channel) if channel else None
    counted = counted_days(project, since, until)
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    by_day: dict[date, Tally] = {d: Tally() for d in days}
    by_source: dict[str, SourceRow] = {}
    by_named: dict[tuple[str, str], SourceRow] = {}
    total = Tally()

    def add_source(source: str, ref: str, status: str, error: str, n: int) -> None:
        total.add(status, error, n)
        row = by_source.setdefault(source, SourceRow(source, "", SOURCE_LABELS.get(source, source)))
        row.tally.add(status, error, n)
        if source in NAMED and ref:
            named = by_named.setdefault((source, ref), SourceRow(source, ref, ref))
            named.tally.add(status, error, n)

    if counted:
        qs = _rolled(project, counted, rolled)
        for day, status, error, n in qs.values_list("day", "status", "error").annotate(m=Sum("n")).order_by():
            by_day[day].add(status, error, n)
        grouped = qs.values_list("source", "ref", "status", "error").annotate(m=Sum("n")).order_by()
        for source, ref, status, error, n in grouped:
            add_source(source, ref, status, error, n)
    for c in _live_runs(project, since, until, counted, live):
        by_day.setdefault(c.day, Tally()).add(c.status, c.error, c.n)
        add_source(c.source, c.ref, c.status, c.error, c.n)
    for (source, ref), name in names(project, list(by_named)).items():
        by_named[(source, ref)].name = name
    order = list(SOURCE_LABELS)
    sources = sorted(by_source.values(), key=lambda r: order.index(r.source) if r.source in order else len(order))
    named_rows = sorted(by_named.values(), key=lambda r: (order.index(r.source), r.name.lower(), r.ref))
    return History(since, until, zone_name(project), channel, days, by_day, sources, named_rows, total)


def names(project: Project, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """{(source, ref): name} for people (their name when they last sent), broadcasts and alerts (their name
    when their event was made), from their messaging events: two queries whatever their number."""
    if not keys:
        return {}
    wanted = Q()
    for source in {s for s, _r in keys}:
        wanted |= Q(source=source, source_id__in=[r for s, r in keys if s == source])
    latest = (
        MessagingEvent.objects.filter(Q(project=project) & wanted)
        .values("source", "source_id")
        .annotate(last=Max("pk"))
        .values_list("last", flat=True)
    )
    rows = MessagingEvent.objects.filter(pk__in=list(latest)).values_list("source", "source_id", "description")
    out = {(s, r): (d or r) for s, r, d in rows}
    return {k: out.get(k, k[1]) for k in keys}


HISTORY_COLUMNS = ["day", "source", "ref", "name", "direction", "channel", "status", "error", "messages"]


_KEY = ("day", "source", "ref", "direction", "channel", "status", "error")
Row = tuple[date, str, str, str, str, str, str, int]  # a count as a row: the key's fields, then n


def history_rows(project: Project, since: date, until: date, channel: str | None = None) -> Iterator[Row]:
    """Every count of since…until as (day, source, ref, direction, channel, status, error, n), day by day: the
    roll-up's rows straight from the database (read in chunks) and what is counted live (days not counted, the
    hours after a day's count), added together per day."""
    rolled = Q(channel=channel) if channel else None
    counted = counted_days(project, since, until)
    live: dict[date, dict[tuple[str, ...], int]] = {}
    for c in _live_runs(project, since, until, counted, rolled):
        key = (c.source, c.ref, c.direction, c.channel, c.status, c.error)
        day = live.setdefault(c.day, {})
        day[key] = day.get(key, 0) + c.n
    waiting = sorted(live)  # the days counted live, not yet given

    def one_day(day: date, rows: dict[tuple[str, ...], int]) -> Iterator[Row]:
        for key, n in live.pop(day, {}).items():
            rows[key] = rows.get(key, 0) + n
        for key in sorted(rows):
            yield (day, *key, rows[key])  # type: ignore[misc]

    current: date | None = None
    rows: dict[tuple[str, ...], int] = {}
    if counted:
        qs = _rolled(project, counted, rolled).order_by(*_KEY).values_list(*_KEY, "n")
        for row in qs.iterator(chunk_size=5000):
            when: date = row[0]
            if when != current:
                if current is not None:
                    yield from one_day(current, rows)
                while waiting and waiting[0] < when:
                    yield from one_day(waiting.pop(0), {})
                current, rows = when, {}
            rows[tuple(row[1:7])] = row[7]
        if current is not None:
            yield from one_day(current, rows)
    for rest in waiting:
        if rest in live:
            yield from one_day(rest, {})


def history_csv_rows(project: Project, since: date, until: date, channel: str | None = None) -> Iterator[list[object]]:
    """The history's counts as CSV rows (HISTORY_COLUMNS), day by day; a person, broadcast or alert named."""
    named_keys = (
        MessageCount.objects.filter(project=project, day__gte=since, day__lte=until, source__in=NAMED)
        .exclude(ref="")
        .values_list("source", "ref")
        .distinct()
    )
    named = names(project, list(named_keys))
    labels = {source: SOURCE_LABELS.get(source, source) for source in SOURCE_LABELS}
    for day, source, ref, direction, channel_, status, error, n in history_rows(project, since, until, channel):
        if ref:
            if (source, ref) not in named:  # (a day counted live that the roll-up has not seen)
                named.update(names(project, [(source, ref)]))
            name = named.get((source, ref), ref)
        else:
            name = labels.get(source, source)
        yield [day.isoformat(), source, ref, name, direction, channel_, status, error, n]


# --- the delivery report of one broadcast or alert --------------------------------------------------------
@dataclass
class Delivery:
    """A broadcast's or an alert's messages per day it sent on (the project's zone), by status and error."""

    source: str
    ref: str
    since: date
    until: date
    days: list[tuple[date, Tally]]  # the days with messages, oldest first
    total: Tally
    error_codes: list[str]  # every failure code of the report, most frequent first


def delivery(project: Project, source: str, owner_id: int, since: date, until: date) -> Delivery:
    """The delivery report of broadcast or alert `owner_id` (source BROADCAST or ALERT) over since…until."""
    ref = str(owner_id)
    rolled = Q(source=source, ref=ref)
    # its events' messages (index event, created_on), not a join: a big broadcast's days are read alone
    events = list(
        MessagingEvent.objects.filter(project=project, source=source, source_id=ref).values_list("pk", flat=True)
    )
    live = Q(event_id__in=events, direction=Message.OUT)
    per_day: dict[date, Tally] = {}
    total = Tally()
    for c in counts(project, since, until, rolled, live):
        per_day.setdefault(c.day, Tally()).add(c.status, c.error, c.n)
        total.add(c.status, c.error, c.n)
    days = sorted(per_day.items())
    return Delivery(source, ref, since, until, days, total, [code for code, _n in total.errors()])


def first_day(project: Project, source: str, owner_id: int) -> date | None:
    """The day of a broadcast's or an alert's first messaging event (where its delivery report starts)."""
    first = (
        MessagingEvent.objects.filter(project=project, source=source, source_id=str(owner_id))
        .order_by("created_on")
        .values_list("created_on", flat=True)
        .first()
    )
    return first.astimezone(ZoneInfo(zone_name(project))).date() if first else None


DELIVERY_COLUMNS = ["day", "messages", "queued", "sent", "delivered", "failed"]


def delivery_csv(d: Delivery) -> tuple[list[str], Iterator[list[object]]]:
    """The delivery report as CSV: one row per day, then one column per failure code."""
    header = [*DELIVERY_COLUMNS, *(f"failed {code}" for code in d.error_codes)]

    def rows() -> Iterator[list[object]]:
        for day, t in d.days:
            yield [day.isoformat(), t.total, t.queued, t.sent, t.delivered, t.failed] + [
                t.by_error.get(code, 0) for code in d.error_codes
            ]
        t = d.total
        yield ["total", t.total, t.queued, t.sent, t.delivered, t.failed] + [
            t.by_error.get(code, 0) for code in d.error_codes
        ]

    return header, rows()


def message_source(m: Message) -> tuple[str, str]:
    """(source, name) of one message of the log, its event loaded: `inbound` for a received message; a
    person's name, a broadcast's or an alert's name (as its event recorded them); "" for a message of no
    event."""
    if m.direction == Message.IN:
        return INBOUND, ""
    event = m.event
    if event is None:
        return "", ""
    return event.source, event.description if event.source in NAMED else ""
