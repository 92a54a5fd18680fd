"""Time arithmetic for scheduled messages (broadcasts and conditional alerts).

Pure Python on purpose (no Django, no database) so it can be unit-tested in milliseconds.

Rules
-----
* Every stored instant is an aware UTC ``datetime``. Functions accept any aware datetime and always
  return UTC (``datetime.UTC``); naive datetimes are rejected wherever an instant is expected, because
  a naive value cannot say which instant it means.
* "Local" means the recipient's wall clock. Recurrences are expanded with ``dateutil.rrule`` over NAIVE
  local wall-clock datetimes and only then turned into instants with ``zoneinfo``. Expanding over aware
  datetimes would add 24 h of absolute time per day and drift by an hour across every DST change;
  the wall clock is what the recipient sees. ``pytz`` is never used (its ``localize`` API is a trap).
* :func:`to_utc` resolves the two DST anomalies:

  - Gap (spring forward, the wall time never happens): the message moves to the first instant that
    exists after the gap, e.g. 02:30 on a US spring-forward day fires at 03:00 local. A gap is found by
    round-tripping through zoneinfo (local -> UTC -> local); if the wall time changes it was in the gap.
  - Overlap (autumn, the wall time happens twice): the first occurrence (``fold=0``) is used and the
    message fires once, never twice.

  Shifts need not be whole hours: Australia/Lord_Howe moves by 30 minutes, so nothing here assumes 1 h.
* Two planned wall times that a gap maps onto the same instant (02:15 and 02:45 on a spring-forward day
  both become 03:00) produce a single occurrence.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, available_timezones

from dateutil.rrule import DAILY, MO, MONTHLY, WEEKLY, rrule

from casemsg.core import errors

# One home for the wall-clock rules (DST gaps, quiet hours): the send pipeline, below this layer, uses them too.
from casemsg.core.wallclock import quiet_until, to_utc

__all__ = [
    "INVALID_TIME_ZONE",
    "Frequency",
    "Occurrence",
    "Recurrence",
    "at_local_time",
    "local_date",
    "occurrences",
    "offset_events",
    "quiet_until",
    "random_time_in_window",
    "to_utc",
    "zone_for",
]

Frequency = Literal["once", "daily", "weekly", "monthly"]
_FREQUENCIES: frozenset[str] = frozenset(get_args(Frequency))
_RRULE_FREQ: dict[str, Literal[1, 2, 3]] = {"once": DAILY, "daily": DAILY, "weekly": WEEKLY, "monthly": MONTHLY}

#: Problem code returned by :func:`zone_for` when a configured zone name is not an IANA zone.
INVALID_TIME_ZONE = errors.INVALID_TIME_ZONE

_UTC_ZONE = ZoneInfo("UTC")
# Names that exist as files in a tz database but are not IANA zones: "localtime" is the host's zone
# (it would make behaviour depend on the server), "posixrules" is a template file.
_NOT_IANA = frozenset({"localtime", "posixrules"})


# --------------------------------------------------------------------------------------------------
# Instants and wall clocks
# --------------------------------------------------------------------------------------------------


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got a naive one: {value!r}.")


def _require_naive_time(value: time, name: str) -> None:
    if value.tzinfo is not None:
        raise ValueError(f"{name} must be a naive local time of day without tzinfo, got {value!r}.")


def at_local_time(day: date, t: time, tz: ZoneInfo) -> datetime:
    """UTC instant of wall time ``t`` on local ``day`` in ``tz`` ("3 days before due_date at 09:00 her time")."""
    _require_naive_time(t, "t")
    if isinstance(day, datetime):
        raise ValueError("at_local_time expects a date, not a datetime.")
    return to_utc(datetime.combine(day, t), tz)


def local_date(now_utc: datetime, tz: ZoneInfo) -> date:
    """Today's date on the wall calendar of ``tz`` (for days_before / days_after criteria)."""
    _require_aware(now_utc, "now_utc")
    return now_utc.astimezone(tz).date()


def offset_events(anchor_utc: datetime, offsets: Sequence[timedelta]) -> list[datetime]:
    """Instants at ``anchor_utc + offset`` for each offset, in the order given.

    This is elapsed-time arithmetic ("events 30 minutes apart"), so it is done in UTC: adding a
    timedelta to a zoneinfo-aware datetime would do wall-clock arithmetic and be off by the DST shift.
    """
    _require_aware(anchor_utc, "anchor_utc")
    anchor = anchor_utc.astimezone(UTC)
    return [anchor + offset for offset in offsets]


def random_time_in_window(day: date, start: time, end: time, tz: ZoneInfo, seed: str) -> datetime:
    """A deterministic pseudo-random UTC instant within the local window [start, end) on ``day``.

    The minute is derived from a SHA-256 of ``seed`` so that recomputing (after a restart, on another
    worker) gives the same instant; include the recipient, schedule and day in the seed to spread
    recipients and days. A window with ``end < start`` crosses midnight and ends on the next day. A pick
    that lands in a DST gap moves to the gap end like any other wall time (see :func:`to_utc`).
    """
    _require_naive_time(start, "start")
    _require_naive_time(end, "end")
    if start == end:
        raise ValueError("The random window is empty: start and end are the same time.")
    window_start = datetime.combine(day, start)
    window_end = datetime.combine(day if end > start else day + timedelta(days=1), end)
    minutes = int((window_end - window_start).total_seconds() // 60)
    if minutes < 1:
        raise ValueError("The random window must be at least one minute long.")
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    # 64 bits modulo at most 1440 minutes: the bias is far below anything observable.
    pick = int.from_bytes(digest[:8], "big") % minutes
    return to_utc(window_start + timedelta(minutes=pick), tz)


# --------------------------------------------------------------------------------------------------
# Time zones
# --------------------------------------------------------------------------------------------------


@functools.cache
def _iana_zone_names() -> frozenset[str]:
    # available_timezones() walks the tz database on disk, so compute it once per process.
    names = available_timezones() - _NOT_IANA
    # Some system tz databases also ship "posix/..." and "right/..." copies; they are not IANA names.
    return frozenset(name for name in names if not name.startswith(("posix/", "right/")))


def zone_for(contact_tz: str | None, project_tz: str | None) -> tuple[ZoneInfo, str | None]:
    """Pick the zone for a recipient: contact ``time_zone``, then the project's, then UTC.

    Returns ``(zone, problem)``. Unset values (None or "") are skipped silently; a set value that is not
    an IANA zone name is skipped and reported as ``problem == INVALID_TIME_ZONE``. Only names from the
    IANA list are loaded, so a stored value can never make ZoneInfo open an arbitrary file path.
    """
    problem: str | None = None
    for name in (contact_tz, project_tz):
        if not name:
            continue
        if name in _iana_zone_names():
            return ZoneInfo(name), problem
        problem = INVALID_TIME_ZONE
    return _UTC_ZONE, problem


# --------------------------------------------------------------------------------------------------
# Recurrences
# --------------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    # bool is a subclass of int; True as "interval" or "weekday" is a bug upstream, not a number.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class Recurrence:
    """Timed repeats, a subset of RFC 5545 RRULE evaluated on the recipient's wall clock.

    Sequences are normalised to sorted, de-duplicated tuples so instances are hashable and comparable.
    ``month_days`` uses 1..31 and -1 (last day of the month); a positive day that a month does not have
    (Feb 30, Apr 31) is skipped for that month, not moved. ``until`` is an inclusive local date.
    ``count`` is the total number of planned occurrences, across all ``times``.
    """

    frequency: Frequency
    start: date
    times: Sequence[time]
    weekdays: Sequence[int] = ()
    month_days: Sequence[int] = ()
    interval: int = 1
    count: int | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        self.validate()
        object.__setattr__(self, "times", tuple(sorted(set(self.times))))
        object.__setattr__(self, "weekdays", tuple(sorted(set(self.weekdays))))
        object.__setattr__(self, "month_days", tuple(sorted(set(self.month_days))))

    def validate(self) -> None:
        """Raise ValueError with a readable sentence if the recurrence cannot be scheduled."""
        freq = self.frequency
        if freq not in _FREQUENCIES:
            raise ValueError(f"Unknown frequency {freq!r}; expected one of: once, daily, weekly, monthly.")
        if not isinstance(self.start, date) or isinstance(self.start, datetime):
            raise ValueError("start must be a local date (not a datetime).")
        if self.until is not None and (not isinstance(self.until, date) or isinstance(self.until, datetime)):
            raise ValueError("until must be a local date (not a datetime).")
        if isinstance(self.times, str | bytes) or len(self.times) == 0:
            raise ValueError("A recurrence needs at least one local time of day in times.")
        for t in self.times:
            if not isinstance(t, time):
                raise ValueError(f"times must contain datetime.time values, got {t!r}.")
            _require_naive_time(t, "Each time in times")
            if t.microsecond:
                raise ValueError(f"Times are scheduled to the second; {t.isoformat()} has microseconds.")
        if not _is_int(self.interval) or self.interval < 1:
            raise ValueError(f"interval must be a whole number of at least 1, got {self.interval!r}.")
        if self.count is not None and (not _is_int(self.count) or self.count < 1):
            raise ValueError(f"count must be at least 1 when given, got {self.count!r}.")
        if self.until is not None and self.until < self.start:
            raise ValueError(f"until ({self.until}) is before start ({self.start}); the series would be empty.")
        for wd in self.weekdays:
            if not _is_int(wd) or not 0 <= wd <= 6:
                raise ValueError(f"Weekdays are 0 (Monday) to 6 (Sunday), got {wd!r}.")
        for md in self.month_days:
            if not _is_int(md) or not (1 <= md <= 31 or md == -1):
                raise ValueError(f"Month days are 1 to 31, or -1 for the last day of the month, got {md!r}.")
        if freq == "weekly" and not self.weekdays:
            raise ValueError("A weekly recurrence needs at least one weekday.")
        if freq != "weekly" and self.weekdays:
            raise ValueError(f"weekdays only apply to weekly recurrences, not {freq}.")
        if freq == "monthly" and not self.month_days:
            raise ValueError("A monthly recurrence needs at least one day of the month.")
        if freq != "monthly" and self.month_days:
            raise ValueError(f"month_days only apply to monthly recurrences, not {freq}.")
        if freq == "once" and self.interval != 1:
            raise ValueError("interval does not apply to a one-off (once) schedule.")
        if freq == "monthly" and self.interval % 12 == 0 and -1 not in self.month_days:
            # Every occurrence falls in the start month; if it never has any of the days, nothing fires.
            longest = 29 if self.start.month == 2 else (30 if self.start.month in (4, 6, 9, 11) else 31)
            if min(self.month_days) > longest:
                raise ValueError(
                    f"This monthly recurrence never occurs: month {self.start.month} never has day "
                    f"{min(self.month_days)}."
                )


@dataclass(frozen=True)
class Occurrence:
    """One planned firing: ``local`` is the naive wall time as planned, ``utc`` when it actually fires."""

    local: datetime
    utc: datetime
    index: int  # 0-based position in the planned series (what ``count`` counts)


def _rule(rec: Recurrence, t: time, from_date: date) -> rrule:
    """The rrule for one time of day, starting at ``from_date`` (a phase-aligned date >= rec.start).

    One rule per time of day because rrule's byhour x byminute is a cartesian product: 09:00 and 17:30
    as one rule would also produce 09:30 and 17:00.
    """
    until = datetime.combine(rec.until, t) if rec.until is not None else None
    return rrule(
        _RRULE_FREQ[rec.frequency],
        dtstart=datetime.combine(from_date, t),
        interval=rec.interval,
        wkst=MO,  # fixed, so week-based intervals do not depend on calendar.firstweekday()
        count=1 if rec.frequency == "once" else None,
        until=until,
        byweekday=tuple(rec.weekdays) or None,
        bymonthday=tuple(rec.month_days) or None,
        byhour=t.hour,
        byminute=t.minute,
        bysecond=t.second,
    )


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _count_dates(rec: Recurrence, first: date, stop: date) -> int:
    """How many dates of the series starting at ``first`` fall before ``stop`` (exclusive)."""
    end = datetime.combine(stop, time(0))
    return sum(1 for _ in itertools.takewhile(lambda d: d < end, _rule(rec, time(0), first)))


def _fast_forward(rec: Recurrence, near: date) -> tuple[date, int]:
    """Return ``(from_date, skipped)``: a date <= ``near`` where expansion can start, and how many planned
    occurrences lie before it. ``from_date`` keeps the interval phase of the series (whole periods from
    ``start``) so the rule from there yields exactly the tail of the full series, and ``skipped`` keeps
    ``Occurrence.index`` (and therefore ``count``) exact without walking years of history.
    """
    start = rec.start
    if rec.frequency == "once" or near <= start:
        return start, 0
    per_date = len(rec.times)
    if rec.frequency in ("daily", "weekly"):
        period_days = rec.interval * (7 if rec.frequency == "weekly" else 1)
        periods = (near - start).days // period_days
        if periods == 0:
            return start, 0
        # Daily and weekly series are periodic with period_days from start, so every whole period
        # holds as many dates as the first one (which may be a partial week).
        dates_per_period = _count_dates(rec, start, start + timedelta(days=period_days))
        return start + timedelta(days=periods * period_days), periods * dates_per_period * per_date
    # Monthly: months have different lengths, so count the skipped dates; rrule steps month by month
    # here (a dozen steps per year), which is cheap, unlike walking day by day.
    months = (_month_index(near) - _month_index(start)) // rec.interval * rec.interval
    if months == 0:
        return start, 0
    target = _month_index(start) + months
    from_date = date(target // 12, target % 12 + 1, 1)
    return from_date, _count_dates(rec, start, from_date) * per_date


def _planned(rec: Recurrence, from_date: date) -> Iterator[datetime]:
    """Naive local wall times of the series from ``from_date`` on, in order (all times of day merged)."""
    return heapq.merge(*(iter(_rule(rec, t, from_date)) for t in rec.times))


def occurrences(rec: Recurrence, tz: ZoneInfo, after_utc: datetime, limit: int) -> list[Occurrence]:
    """The next ``limit`` occurrences of ``rec`` in ``tz`` strictly after ``after_utc``.

    Wall times come from rrule on naive local datetimes and become instants via :func:`to_utc` (gap ->
    gap end, overlap -> first pass, so an ambiguous time fires once). If a gap maps several planned times
    onto one instant, only the first is kept; the others still consume their ``index``. Passing the last
    fired ``utc`` as ``after_utc`` continues the series without repeats.
    """
    _require_aware(after_utc, "after_utc")
    if not _is_int(limit) or limit < 0:
        raise ValueError(f"limit must be a non-negative whole number, got {limit!r}.")
    if limit == 0:
        return []
    # Start a day before after_utc's local date: DST can move a planned wall time by a few hours, so a
    # day of slack guarantees nothing that fires after after_utc is skipped; the UTC filter drops the rest.
    near = after_utc.astimezone(tz).date() - timedelta(days=1)
    from_date, index = _fast_forward(rec, near)
    if rec.until is not None and from_date > rec.until:
        return []
    result: list[Occurrence] = []
    last_utc: datetime | None = None
    for local in _planned(rec, from_date):
        if rec.count is not None and index >= rec.count:
            break
        utc = to_utc(local, tz)
        # to_utc is monotonic in wall time, so gap collisions are always adjacent.
        if utc > after_utc and utc != last_utc:
            result.append(Occurrence(local=local, utc=utc, index=index))
            if len(result) >= limit:
                break
        last_utc = utc
        index += 1
    return result
