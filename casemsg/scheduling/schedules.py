"""A broadcast's or an alert's schedule: its declaration, its rules, its normalised form and its recurrence.

The declarations (`BroadcastScheduleIn`, `AlertScheduleIn` and their parts) are the shape a schedule comes
in (see `casemsg.scheduling.fields`); `parse_schedule` checks the rest — an impossible time such as 25:00,
an unknown type, a weekly schedule without weekdays, day 0 or 32, a field of another kind of schedule —
and returns a `Schedule`, whose `as_json()` is what is stored (`schedule_from_json` reads it back).
`recurrence` turns a timed schedule into the `timing` arithmetic. The shapes, with examples, are
documented in docs/scheduling.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any, Final, Literal, cast

from pydantic import Field

from casemsg.core import errors, timezones
from casemsg.core.errors import InputError
from casemsg.scheduling.fields import (
    MAX_DATE,
    MAX_EVENTS,
    MAX_PROPERTY,
    MAX_TIME,
    MAX_ZONE,
    Declaration,
    declared,
    fail,
    listed,
    mapping,
    only,
    whole,
)
from casemsg.scheduling.timing import Frequency, Recurrence

ScheduleKind = Literal["now", "offsets", "timed"]
StartFrom = Literal["fixed", "matched", "property"]

_FREQUENCIES = ("once", "daily", "weekly", "monthly")
BROADCAST_TYPES: Final = ("now", *_FREQUENCIES)
ALERT_TYPES: Final = ("offsets", *_FREQUENCIES[1:])
UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
RECIPIENT_ZONE: Final = "recipient"
MAX_INTERVAL: Final = 1000  # every N days / weeks / months
MAX_OFFSET: Final = 1_000_000  # an offset, every, repeat_every (in units)
MAX_START_DAYS: Final = 3650  # a start date property ± days
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_PROPERTY = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")


# --------------------------------------------------------------------------------------------------
# The declarations
# --------------------------------------------------------------------------------------------------


class WindowIn(Declaration):
    start: str = Field(max_length=MAX_TIME, examples=["09:00"])
    end: str = Field(max_length=MAX_TIME, examples=["11:00"])


class BroadcastScheduleIn(Declaration):
    """`now`; `once` on `date` at `time`; `daily`, `weekly` (`weekdays`) or `monthly` (`month_days`) at
    `time`/`times`/`random_window` from `start_date` (default today) until `until` or for `count`
    events, every `interval` days/weeks/months. Times are read in `time_zone`: an IANA zone, or
    "recipient" (the default) for each recipient's own."""

    type: str = Field(max_length=16, description=" | ".join(BROADCAST_TYPES), examples=["daily"])
    date: str | None = Field(None, max_length=MAX_DATE, description="once: YYYY-MM-DD", examples=["2030-01-15"])
    start_date: str | None = Field(None, max_length=MAX_DATE, description="YYYY-MM-DD (default: today)")
    time: str | None = Field(None, max_length=MAX_TIME, description="HH:MM, 24-hour", examples=["09:00"])
    times: list[str] | None = Field(None, description="several times a day", examples=[["09:00", "17:00"]])
    random_window: WindowIn | None = Field(None, description="a random minute of this window each day")
    weekdays: list[str | int] | None = Field(None, description="weekly: mon … sun", examples=[["mon", "thu"]])
    month_days: list[int | str] | None = Field(None, description='monthly: 1 … 31 or "last"', examples=[[1, 15]])
    interval: int | None = Field(None, description="every N days / weeks / months", examples=[1])
    count: int | None = Field(None, description="how many events (timed schedules)", examples=[5])
    until: str | None = Field(None, max_length=MAX_DATE, description="YYYY-MM-DD, the last day")
    time_zone: str | None = Field(
        None, max_length=MAX_ZONE, description='an IANA zone, or "recipient"', examples=["recipient"]
    )


class StartIn(Declaration):
    from_: str = Field("matched", alias="from", max_length=16, description="matched | property")
    property: str | None = Field(None, max_length=MAX_PROPERTY, description="a date property (YYYY-MM-DD)")
    days: int | None = Field(None, description="days after (negative: before) the property's date")
    time: str | None = Field(None, max_length=MAX_TIME, description="offsets schedules: the start's time of day")


class AlertScheduleIn(Declaration):
    """`offsets` (`offsets` or `every`, in `unit`, optionally repeated `repeat_every` `count` times) or
    `daily`/`weekly`/`monthly` at `time`/`times`/`random_window`/`time_property`, counted from when the
    case matched or from a date property (`start`)."""

    type: str = Field(max_length=16, description=" | ".join(ALERT_TYPES), examples=["offsets"])
    unit: str | None = Field(None, max_length=8, description=" | ".join(UNITS), examples=["days"])
    offsets: list[int] | None = Field(None, examples=[[0, 7]])
    every: int | None = None
    repeat_every: int | None = None
    count: int | None = None
    start: StartIn | None = None
    time: str | None = Field(None, max_length=MAX_TIME, examples=["09:00"])
    times: list[str] | None = None
    random_window: WindowIn | None = None
    time_property: str | None = Field(None, max_length=MAX_PROPERTY)
    weekdays: list[str | int] | None = None
    month_days: list[int | str] | None = None
    interval: int | None = None
    time_zone: str | None = Field(None, max_length=MAX_ZONE, examples=["recipient"])


# --------------------------------------------------------------------------------------------------
# The normalised schedule, and its rules
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When the events of a broadcast or an alert happen, for one recipient.

    - ``now``: one event when the broadcast starts;
    - ``offsets``: events at ``start + offset`` (elapsed time, so "2 hours" is two hours whatever DST
      does), the list repeated ``count`` times ``repeat_every`` apart;
    - ``timed``: a recurrence (once / daily / weekly / monthly) at fixed local times, at a random minute
      of a local window, or at the local time a case property holds, from a start date.

    ``count`` is the number of events of a timed schedule and the number of repetitions of an offsets
    list (None: no end). ``time_zone`` is a named zone, or "" for each recipient's own.
    """

    kind: ScheduleKind
    offsets: tuple[timedelta, ...] = ()
    repeat_every: timedelta | None = None
    frequency: Frequency = "once"
    times: tuple[time, ...] = ()
    window: tuple[time, time] | None = None
    time_property: str = ""
    weekdays: tuple[int, ...] = ()
    month_days: tuple[int, ...] = ()
    interval: int = 1
    count: int | None = None
    until: date | None = None
    start_from: StartFrom = "fixed"
    start_date: date | None = None  # start_from == "fixed" (broadcasts)
    start_property: str = ""  # start_from == "property"
    start_days: int = 0
    start_time: time | None = None  # offsets from a property date: the anchor's time of day (else 00:00)
    time_zone: str = ""

    @property
    def reads(self) -> frozenset[str]:
        """The case properties this schedule reads: a change of one of them recomputes the instances."""
        return frozenset(p for p in (self.start_property, self.time_property) if p)

    @property
    def per_recipient(self) -> bool:
        """Whether two recipients in the same zone can have different events (a random pick, a property)."""
        return self.window is not None or bool(self.reads) or self.start_from == "matched"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind if self.kind != "timed" else self.frequency}
        if self.kind == "offsets":
            unit, factor = _best_unit([*self.offsets, *([self.repeat_every] if self.repeat_every else [])])
            out["unit"] = unit
            out["offsets"] = [int(o / factor) for o in self.offsets]
            if self.repeat_every is not None:
                out["repeat_every"] = int(self.repeat_every / factor)
        if self.kind == "timed":
            if self.window is not None:
                out["random_window"] = {"start": hhmm(self.window[0]), "end": hhmm(self.window[1])}
            elif self.time_property:
                out["time_property"] = self.time_property
            else:
                out["times"] = [hhmm(t) for t in self.times]
            if self.weekdays:
                out["weekdays"] = list(self.weekdays)
            if self.month_days:
                out["month_days"] = list(self.month_days)
            if self.interval != 1:
                out["interval"] = self.interval
            if self.until is not None:
                out["until"] = self.until.isoformat()
        if self.count is not None and (self.kind == "offsets" or (self.kind == "timed" and self.frequency != "once")):
            out["count"] = self.count
        if self.start_from == "fixed" and self.start_date is not None:
            out["date" if self.frequency == "once" else "start_date"] = self.start_date.isoformat()
        elif self.start_from == "matched":
            out["start"] = {"from": "matched"}
        elif self.start_from == "property":
            start: dict[str, Any] = {"from": "property", "property": self.start_property, "days": self.start_days}
            if self.start_time is not None:
                start["time"] = hhmm(self.start_time)
            out["start"] = start
        if self.kind != "now":
            out["time_zone"] = self.time_zone or RECIPIENT_ZONE
        return out


def _best_unit(values: Sequence[timedelta]) -> tuple[str, timedelta]:
    for unit in ("days", "hours"):
        if all(v % UNITS[unit] == timedelta(0) for v in values):
            return unit, UNITS[unit]
    return "minutes", UNITS["minutes"]


def hhmm(t: time) -> str:
    return t.strftime("%H:%M:%S") if t.second else t.strftime("%H:%M")


def parse_time(value: object, where: str) -> time:
    """'HH:MM' or 'HH:MM:SS', 24-hour: '25:00' or '9.30' is refused with a sentence naming the field."""
    m = _TIME.match(value) if isinstance(value, str) else None
    if m is None:
        raise fail(f"{where}: {value!r} is not a time of day; use 24-hour HH:MM, e.g. 09:30.")
    hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise fail(f"{where}: {value!r} is not a time of day (00:00 to 23:59).")
    return time(hour, minute, second)


LAST_DATE = date(2200, 12, 31)  # later dates are refused: their UTC instants may not exist (year 10000)


def parse_date(value: object, where: str) -> date:
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if day > LAST_DATE:
                raise fail(f"{where}: {value!r} is too far ahead; the last date a schedule can use is {LAST_DATE}.")
            return day
    raise fail(f"{where}: {value!r} is not a date; use YYYY-MM-DD.")


def _property_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _PROPERTY.match(value):
        raise fail(f"{where} must be a case property name (letters, digits, '_' and '-'), not {value!r}.")
    return value


def _zone(value: object, where: str) -> str:
    if value in (None, "", RECIPIENT_ZONE):
        return ""
    if not isinstance(value, str) or not timezones.is_valid(value):
        raise InputError(
            errors.INVALID_TIME_ZONE,
            f"{where}: {value!r} is not an IANA time zone (e.g. Africa/Nairobi), nor '{RECIPIENT_ZONE}'.",
        )
    return value


def _weekday(value: object, where: str) -> int:
    if isinstance(value, str) and value[:3].lower() in WEEKDAYS and value.lower() in _WEEKDAY_NAMES:
        return WEEKDAYS[value[:3].lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    raise fail(f"{where}: {value!r} is not a weekday; use mon … sun (or 0 = Monday … 6 = Sunday).")


_WEEKDAY_NAMES = {*WEEKDAYS, "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def _month_day(value: object, where: str) -> int:
    if value == "last" or value == -1:
        return -1
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 31:
        return value
    raise fail(f"{where}: {value!r} is not a day of the month; use 1 to 31, or 'last'.")


# the fields of one kind of schedule only (the declarations list them all)
_OFFSETS_ONLY = frozenset({"unit", "offsets", "every", "repeat_every"})
_TIMED_ONLY = frozenset(
    {"time", "times", "random_window", "time_property", "weekdays", "month_days", "interval", "until"}
)


def parse_schedule(data: object, owner: Literal["broadcast", "alert"], today: date) -> Schedule:
    """Validate a broadcast's or an alert's schedule. `today`: the default start date of a broadcast."""
    d = mapping(data, "schedule")
    kind = d.get("type")
    kinds = BROADCAST_TYPES if owner == "broadcast" else ALERT_TYPES
    if kind not in kinds:
        raise fail(f"schedule.type must be one of {', '.join(kinds)}, not {kind!r}.")
    if kind == "now":
        only(d, {"type"}, "A schedule of type now")
        return Schedule(kind="now", count=1)
    if owner == "broadcast":  # a once schedule's day is its date; a repeating one starts on its start_date
        declared_fields = declared(BroadcastScheduleIn) - {"start_date" if kind == "once" else "date"}
    else:
        declared_fields = declared(AlertScheduleIn)
    allowed = declared_fields - (_TIMED_ONLY if kind == "offsets" else _OFFSETS_ONLY)
    only(d, allowed, "An offsets schedule" if kind == "offsets" else f"A {kind} schedule")
    zone = _zone(d.get("time_zone"), "schedule.time_zone")
    count = None if d.get("count") is None else whole(d["count"], "schedule.count", 1, MAX_EVENTS)

    # where the events are counted from
    start_from: StartFrom = "fixed"
    start_date: date | None = None
    start_property, start_days, start_time = "", 0, None
    if owner == "broadcast":
        raw_start = d.get("date") if kind == "once" else d.get("start_date")
        if kind == "once" and raw_start is None:
            raise fail("A once schedule needs schedule.date (YYYY-MM-DD) and schedule.time.")
        start_date = (
            parse_date(raw_start, "schedule.date" if kind == "once" else "schedule.start_date")
            if (raw_start is not None)
            else today
        )
    else:
        start = mapping(d.get("start", {"from": "matched"}), "schedule.start")
        only(start, declared(StartIn), "schedule.start")
        if start.get("from", "matched") == "matched":
            start_from = "matched"
            if set(start) - {"from"}:
                raise fail("schedule.start from 'matched' takes no property, days or time.")
        elif start.get("from") == "property":
            start_from = "property"
            start_property = _property_name(start.get("property"), "schedule.start.property")
            start_days = whole(start.get("days", 0), "schedule.start.days", -MAX_START_DAYS, MAX_START_DAYS)
            if start.get("time") is not None:
                if kind != "offsets":
                    raise fail("schedule.start.time only applies to offsets schedules; give times instead.")
                start_time = parse_time(start["time"], "schedule.start.time")
        else:
            raise fail(f"schedule.start.from must be 'matched' or 'property', not {start.get('from')!r}.")

    if kind == "offsets":
        unit = d.get("unit", "minutes")
        if unit not in UNITS:
            raise fail(f"schedule.unit must be minutes, hours or days, not {unit!r}.")
        step = UNITS[unit]
        if ("offsets" in d) == ("every" in d):
            raise fail("An offsets schedule needs either offsets (a list) or every (a number), not both.")
        if "every" in d:
            every = whole(d["every"], "schedule.every", 1, MAX_OFFSET) * step
            if "repeat_every" in d:
                raise fail("schedule.every is the repeat interval already; remove repeat_every.")
            return Schedule(
                kind="offsets",
                offsets=(timedelta(0),),
                repeat_every=every,
                count=count,
                start_from=start_from,
                start_property=start_property,
                start_days=start_days,
                start_time=start_time,
                time_zone=zone,
            )
        raw = listed(d["offsets"], "schedule.offsets")
        if not raw:
            raise fail("schedule.offsets needs at least one offset.")
        offsets = tuple(whole(v, f"schedule.offsets[{i}]", 0, MAX_OFFSET) * step for i, v in enumerate(raw))
        if any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
            raise fail("schedule.offsets must be in increasing order, each later than the one before.")
        repeat_every = None
        if d.get("repeat_every") is not None:
            repeat_every = whole(d["repeat_every"], "schedule.repeat_every", 1, MAX_OFFSET) * step
            if repeat_every <= offsets[-1] - offsets[0]:
                raise fail(
                    "schedule.repeat_every must be longer than the span of the offsets, so events stay in order."
                )
        elif count is not None and count > 1:
            raise fail("schedule.count repeats the offsets: give repeat_every (how far apart the repetitions are).")
        return Schedule(
            kind="offsets",
            offsets=offsets,
            repeat_every=repeat_every,
            count=count if repeat_every is not None else 1,
            start_from=start_from,
            start_property=start_property,
            start_days=start_days,
            start_time=start_time,
            time_zone=zone,
        )

    # timed
    ways = [k for k in ("time", "times", "random_window", "time_property") if d.get(k) is not None]
    if len(ways) != 1:
        raise fail("A timed schedule needs exactly one of time, times, random_window or time_property.")
    times: tuple[time, ...] = ()
    window: tuple[time, time] | None = None
    time_property = ""
    if ways[0] == "time":
        times = (parse_time(d["time"], "schedule.time"),)
    elif ways[0] == "times":
        raw_times = listed(d["times"], "schedule.times", 24 * 60)
        if not raw_times:
            raise fail("schedule.times needs at least one time of day.")
        times = tuple(sorted({parse_time(t, f"schedule.times[{i}]") for i, t in enumerate(raw_times)}))
    elif ways[0] == "random_window":
        w = mapping(d["random_window"], "schedule.random_window")
        only(w, declared(WindowIn), "schedule.random_window")
        window = (
            parse_time(w.get("start"), "schedule.random_window.start"),
            parse_time(w.get("end"), "schedule.random_window.end"),
        )
        if window[0] == window[1]:
            raise fail("schedule.random_window is empty: start and end are the same time.")
    else:
        time_property = _property_name(d["time_property"], "schedule.time_property")
    weekdays = tuple(
        sorted(
            {
                _weekday(v, f"schedule.weekdays[{i}]")
                for i, v in enumerate(listed(d.get("weekdays", []), "schedule.weekdays"))
            }
        )
    )
    month_days = tuple(
        sorted(
            {
                _month_day(v, f"schedule.month_days[{i}]")
                for i, v in enumerate(listed(d.get("month_days", []), "schedule.month_days"))
            }
        )
    )
    if kind == "weekly" and not weekdays:
        raise fail('A weekly schedule needs schedule.weekdays (e.g. ["mon", "thu"]).')
    if kind == "monthly" and not month_days:
        raise fail("A monthly schedule needs schedule.month_days (1 to 31, or 'last').")
    if kind != "weekly" and weekdays:
        raise fail(f"schedule.weekdays only applies to weekly schedules, not {kind}.")
    if kind != "monthly" and month_days:
        raise fail(f"schedule.month_days only applies to monthly schedules, not {kind}.")
    interval = whole(d.get("interval", 1), "schedule.interval", 1, MAX_INTERVAL)
    if kind == "once" and (interval != 1 or count not in (None, 1)):
        raise fail("A once schedule has one event: interval and count do not apply.")
    until = parse_date(d["until"], "schedule.until") if d.get("until") is not None else None
    sched = Schedule(
        kind="timed",
        frequency=cast(Frequency, kind),
        times=times,
        window=window,
        time_property=time_property,
        weekdays=weekdays,
        month_days=month_days,
        interval=interval,
        count=1 if kind == "once" else count,
        until=until,
        start_from=start_from,
        start_date=start_date,
        start_property=start_property,
        start_days=start_days,
        time_zone=zone,
    )
    # the remaining rules (until before start, a monthly day no month has, …) are the recurrence's own
    try:
        recurrence(sched, start_date or today, time(0))
    except ValueError as exc:
        raise fail(f"schedule: {exc}") from None
    return sched


def recurrence(s: Schedule, start: date, time_of_day: time | None = None, unbounded: bool = False) -> Recurrence:
    """The timing recurrence of a timed schedule from local date `start`; `time_of_day` replaces the
    schedule's own times (a random window's start, a time read from a case property); `unbounded` leaves
    the count out (the caller counts)."""
    times = (time_of_day,) if time_of_day is not None else s.times
    return Recurrence(
        frequency=s.frequency,
        start=start,
        times=times,
        weekdays=s.weekdays,
        month_days=s.month_days,
        interval=s.interval,
        count=None if unbounded else s.count,
        until=s.until,
    )


def schedule_from_json(data: Mapping[str, Any], owner: Literal["broadcast", "alert"]) -> Schedule:
    """Stored (normalised) schedule back to its dataclass. A stored schedule has its start date."""
    return parse_schedule(data, owner, date(1970, 1, 1))


def parse_alert_schedule(data: object) -> Schedule:
    """An alert's schedule: offsets, or daily / weekly / monthly, from when the case matched or from a
    date property (± days)."""
    return parse_schedule(data, "alert", date(1970, 1, 1))
