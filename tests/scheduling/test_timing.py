"""Tests for casemsg.scheduling.timing: pure time arithmetic, frozen instants, no clock, no database.

Expected instants are worked out by hand in comments:
  Africa/Nairobi      UTC+3 all year
  Asia/Kolkata        UTC+5:30 all year
  America/New_York    UTC-5 (EST) / UTC-4 (EDT); 2027: forward Sun 14 Mar 02:00->03:00, back Sun 7 Nov 02:00->01:00
  Australia/Lord_Howe UTC+10:30 / UTC+11; 2027: back Sun 4 Apr 02:00->01:30, forward Sun 3 Oct 02:00->02:30
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemsg.scheduling.timing import (
    INVALID_TIME_ZONE,
    Occurrence,
    Recurrence,
    at_local_time,
    local_date,
    occurrences,
    offset_events,
    quiet_until,
    random_time_in_window,
    to_utc,
    zone_for,
)

NAIROBI = ZoneInfo("Africa/Nairobi")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
UTC_ZONE = ZoneInfo("UTC")
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(start: date, *times: time, **kw: Any) -> Recurrence:
    return Recurrence(frequency="daily", start=start, times=list(times), **kw)


def utcs(occs: list[Occurrence]) -> list[datetime]:
    return [o.utc for o in occs]


def local_dates(occs: list[Occurrence]) -> list[date]:
    return [o.local.date() for o in occs]


# --------------------------------------------------------------------------------------------------
# to_utc
# --------------------------------------------------------------------------------------------------


class TestToUtc:
    def test_ordinary_times(self) -> None:
        assert to_utc(datetime(2027, 1, 15, 9, 0), NEW_YORK) == utc(2027, 1, 15, 14, 0)  # EST
        assert to_utc(datetime(2027, 7, 15, 9, 0), NEW_YORK) == utc(2027, 7, 15, 13, 0)  # EDT
        assert to_utc(datetime(2027, 7, 15, 9, 0), KOLKATA) == utc(2027, 7, 15, 3, 30)

    def test_spring_gap_moves_to_first_existing_minute(self) -> None:
        # 02:30 does not exist on 2027-03-14 in New York; 03:00 EDT = 07:00 UTC.
        assert to_utc(datetime(2027, 3, 14, 2, 30), NEW_YORK) == utc(2027, 3, 14, 7, 0)
        assert to_utc(datetime(2027, 3, 14, 2, 0), NEW_YORK) == utc(2027, 3, 14, 7, 0)
        assert to_utc(datetime(2027, 3, 14, 2, 59, 59), NEW_YORK) == utc(2027, 3, 14, 7, 0)
        # The minutes either side of the gap are untouched.
        assert to_utc(datetime(2027, 3, 14, 1, 59), NEW_YORK) == utc(2027, 3, 14, 6, 59)
        assert to_utc(datetime(2027, 3, 14, 3, 0), NEW_YORK) == utc(2027, 3, 14, 7, 0)

    def test_autumn_overlap_uses_first_occurrence(self) -> None:
        # 01:30 happens twice on 2027-11-07; the first pass is EDT (UTC-4) = 05:30 UTC.
        assert to_utc(datetime(2027, 11, 7, 1, 30), NEW_YORK) == utc(2027, 11, 7, 5, 30)
        # A caller-supplied fold=1 is ignored: we always schedule the first pass.
        assert to_utc(datetime(2027, 11, 7, 1, 30, fold=1), NEW_YORK) == utc(2027, 11, 7, 5, 30)

    def test_lord_howe_half_hour_shift(self) -> None:
        # Gap: 02:15 on 2027-10-03 does not exist; 02:30 at UTC+11 = 15:30 UTC on the 2nd.
        moved = to_utc(datetime(2027, 10, 3, 2, 15), LORD_HOWE)
        assert moved == utc(2027, 10, 2, 15, 30)
        assert moved.astimezone(LORD_HOWE).replace(tzinfo=None) == datetime(2027, 10, 3, 2, 30)
        # Overlap: 01:45 on 2027-04-04 happens twice; first pass at UTC+11 = 14:45 UTC on the 3rd.
        assert to_utc(datetime(2027, 4, 4, 1, 45), LORD_HOWE) == utc(2027, 4, 3, 14, 45)

    def test_rejects_aware_input(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            to_utc(datetime(2027, 1, 1, 9, tzinfo=UTC), NEW_YORK)

    def test_result_is_utc(self) -> None:
        assert to_utc(datetime(2027, 1, 1, 9), KOLKATA).tzinfo is UTC


# --------------------------------------------------------------------------------------------------
# Daily 09:00 in four zones across the spring gap and the autumn overlap
# --------------------------------------------------------------------------------------------------

DAILY_0900_CASES = [
    # (zone, first local day, expected UTC instants for three consecutive days)
    (NAIROBI, date(2027, 3, 13), [utc(2027, 3, 13, 6), utc(2027, 3, 14, 6), utc(2027, 3, 15, 6)]),
    (KOLKATA, date(2027, 11, 6), [utc(2027, 11, 6, 3, 30), utc(2027, 11, 7, 3, 30), utc(2027, 11, 8, 3, 30)]),
    # New York spring: EST 14:00 UTC, then EDT 13:00 UTC from the 14th.
    (NEW_YORK, date(2027, 3, 13), [utc(2027, 3, 13, 14), utc(2027, 3, 14, 13), utc(2027, 3, 15, 13)]),
    # New York autumn: EDT 13:00 UTC, then EST 14:00 UTC from the 7th.
    (NEW_YORK, date(2027, 11, 6), [utc(2027, 11, 6, 13), utc(2027, 11, 7, 14), utc(2027, 11, 8, 14)]),
    # Lord Howe autumn (April): 09:00 at UTC+11 is 22:00 UTC the day before, then 22:30 at UTC+10:30.
    (LORD_HOWE, date(2027, 4, 3), [utc(2027, 4, 2, 22), utc(2027, 4, 3, 22, 30), utc(2027, 4, 4, 22, 30)]),
    # Lord Howe spring (October): 22:30 UTC the day before at UTC+10:30, then 22:00 at UTC+11.
    (LORD_HOWE, date(2027, 10, 2), [utc(2027, 10, 1, 22, 30), utc(2027, 10, 2, 22), utc(2027, 10, 3, 22)]),
]


@pytest.mark.parametrize(("tz", "first_day", "expected"), DAILY_0900_CASES)
def test_daily_0900_across_dst(tz: ZoneInfo, first_day: date, expected: list[datetime]) -> None:
    occs = occurrences(daily(first_day, time(9)), tz, LONG_AGO, 3)
    assert utcs(occs) == expected
    assert [o.local for o in occs] == [datetime.combine(first_day + timedelta(days=i), time(9)) for i in range(3)]
    assert [o.index for o in occs] == [0, 1, 2]


@pytest.mark.parametrize(("tz", "first_day", "expected"), DAILY_0900_CASES)
def test_daily_0900_resumed_from_long_running_series(tz: ZoneInfo, first_day: date, expected: list[datetime]) -> None:
    # Same instants when the series began years earlier and we resume just before the first one.
    start = date(2020, 1, 1)
    occs = occurrences(daily(start, time(9)), tz, expected[0] - timedelta(minutes=1), 3)
    assert utcs(occs) == expected
    assert occs[0].index == (first_day - start).days


def test_daily_gap_time_on_new_york_spring_forward_day() -> None:
    occs = occurrences(daily(date(2027, 3, 13), time(2, 30)), NEW_YORK, LONG_AGO, 3)
    # 13th: 02:30 EST = 07:30 UTC; 14th: moved to 03:00 EDT = 07:00 UTC; 15th: 02:30 EDT = 06:30 UTC.
    assert utcs(occs) == [utc(2027, 3, 13, 7, 30), utc(2027, 3, 14, 7, 0), utc(2027, 3, 15, 6, 30)]
    assert occs[1].local == datetime(2027, 3, 14, 2, 30)  # the plan is kept; only the instant moves
    assert occs[1].utc.astimezone(NEW_YORK).time() == time(3, 0)


def test_daily_ambiguous_time_on_new_york_autumn_day_fires_once() -> None:
    rec = daily(date(2027, 11, 6), time(1, 30))
    occs = occurrences(rec, NEW_YORK, LONG_AGO, 3)
    # 6th: 01:30 EDT = 05:30 UTC; 7th: first pass, EDT = 05:30 UTC; 8th: 01:30 EST = 06:30 UTC.
    assert utcs(occs) == [utc(2027, 11, 6, 5, 30), utc(2027, 11, 7, 5, 30), utc(2027, 11, 8, 6, 30)]
    assert local_dates(occs).count(date(2027, 11, 7)) == 1
    # Between the two passes of 01:30 (second pass is 06:30 UTC) the next firing is the following day.
    assert utcs(occurrences(rec, NEW_YORK, utc(2027, 11, 7, 5, 30), 1)) == [utc(2027, 11, 8, 6, 30)]
    assert utcs(occurrences(rec, NEW_YORK, utc(2027, 11, 7, 6, 0), 1)) == [utc(2027, 11, 8, 6, 30)]


def test_lord_howe_gap_time_moves_to_0230() -> None:
    occs = occurrences(daily(date(2027, 10, 2), time(2, 15)), LORD_HOWE, LONG_AGO, 3)
    # 2nd: 02:15 at +10:30 = 15:45 UTC on the 1st; 3rd: 02:30 at +11 = 15:30 UTC; 4th: 02:15 at +11 = 15:15 UTC.
    assert utcs(occs) == [utc(2027, 10, 1, 15, 45), utc(2027, 10, 2, 15, 30), utc(2027, 10, 3, 15, 15)]
    assert occs[1].utc.astimezone(LORD_HOWE).replace(tzinfo=None) == datetime(2027, 10, 3, 2, 30)


def test_gap_collision_keeps_one_occurrence() -> None:
    # 02:15 and 02:45 both map to 03:00 EDT (07:00 UTC) on the spring-forward day.
    rec = daily(date(2027, 3, 14), time(2, 15), time(2, 45))
    occs = occurrences(rec, NEW_YORK, LONG_AGO, 3)
    assert utcs(occs) == [utc(2027, 3, 14, 7, 0), utc(2027, 3, 15, 6, 15), utc(2027, 3, 15, 6, 45)]
    assert [o.index for o in occs] == [0, 2, 3]  # the swallowed 02:45 still counts as planned
    # Resuming from the collided instant does not fire it again.
    assert utcs(occurrences(rec, NEW_YORK, utc(2027, 3, 14, 7, 0), 1)) == [utc(2027, 3, 15, 6, 15)]


def test_several_times_a_day_in_order() -> None:
    rec = daily(date(2027, 1, 1), time(17, 30), time(9, 0))
    occs = occurrences(rec, UTC_ZONE, LONG_AGO, 4)
    assert utcs(occs) == [utc(2027, 1, 1, 9), utc(2027, 1, 1, 17, 30), utc(2027, 1, 2, 9), utc(2027, 1, 2, 17, 30)]


def test_strictly_after() -> None:
    rec = daily(date(2027, 1, 1), time(9))
    assert utcs(occurrences(rec, UTC_ZONE, utc(2027, 1, 1, 9), 1)) == [utc(2027, 1, 2, 9)]
    assert utcs(occurrences(rec, UTC_ZONE, utc(2027, 1, 1, 8, 59), 1)) == [utc(2027, 1, 1, 9)]


def test_long_history_index_without_count() -> None:
    # 2000-01-01 -> 2027-03-13: 27 years of 365 days + 7 leap days (2000..2024) + 71 days (Jan 31, Feb 28, 12).
    occs = occurrences(daily(date(2000, 1, 1), time(9)), NEW_YORK, utc(2027, 3, 13), 2)
    assert [o.index for o in occs] == [27 * 365 + 7 + 71, 27 * 365 + 7 + 72]
    assert utcs(occs) == [utc(2027, 3, 13, 14), utc(2027, 3, 14, 13)]


# --------------------------------------------------------------------------------------------------
# Monthly, weekly, interval, count, until, once
# --------------------------------------------------------------------------------------------------


def test_monthly_31st_skips_short_months() -> None:
    rec = Recurrence(frequency="monthly", start=date(2027, 1, 1), times=[time(9)], month_days=[31])
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 7)) == [
        date(2027, 1, 31),
        date(2027, 3, 31),
        date(2027, 5, 31),
        date(2027, 7, 31),
        date(2027, 8, 31),
        date(2027, 10, 31),
        date(2027, 12, 31),
    ]


def test_monthly_30th_skips_february_only() -> None:
    rec = Recurrence(frequency="monthly", start=date(2028, 1, 1), times=[time(9)], month_days=[30])
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 3)) == [
        date(2028, 1, 30),
        date(2028, 3, 30),
        date(2028, 4, 30),
    ]


def test_monthly_last_day() -> None:
    rec = Recurrence(frequency="monthly", start=date(2027, 11, 1), times=[time(9)], month_days=[-1])
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 5)) == [
        date(2027, 11, 30),
        date(2027, 12, 31),
        date(2028, 1, 31),
        date(2028, 2, 29),  # leap year
        date(2028, 3, 31),
    ]


def test_monthly_31st_and_last_day_do_not_double_fire() -> None:
    rec = Recurrence(frequency="monthly", start=date(2027, 1, 1), times=[time(9)], month_days=[31, -1, 15])
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 4)) == [
        date(2027, 1, 15),
        date(2027, 1, 31),
        date(2027, 2, 15),
        date(2027, 2, 28),
    ]


def test_monthly_interval_resumed_years_later() -> None:
    # Every 2 months on the 31st from Jan 2020: odd months; Sep and Nov have 30 days and are skipped.
    rec = Recurrence(frequency="monthly", start=date(2020, 1, 1), times=[time(9)], month_days=[31], interval=2)
    occs = occurrences(rec, UTC_ZONE, utc(2027, 2, 1), 3)
    assert local_dates(occs) == [date(2027, 3, 31), date(2027, 5, 31), date(2027, 7, 31)]
    # 4 per year (Jan, Mar, May, Jul) for 2020..2026, then Jan 2027: index of Mar 2027 is 29.
    assert occs[0].index == 7 * 4 + 1


def test_weekly_monday_thursday() -> None:
    rec = Recurrence(frequency="weekly", start=date(2027, 1, 6), times=[time(9)], weekdays=[3, 0])  # Wed start
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 4)) == [
        date(2027, 1, 7),  # Thu
        date(2027, 1, 11),  # Mon
        date(2027, 1, 14),
        date(2027, 1, 18),
    ]


def test_weekly_interval_2() -> None:
    # Weeks start on Monday: the week of Wed 6 Jan, then the week of Mon 18 Jan, then 1 Feb.
    rec = Recurrence(frequency="weekly", start=date(2027, 1, 6), times=[time(9)], weekdays=[0, 3], interval=2)
    expected = [date(2027, 1, 7), date(2027, 1, 18), date(2027, 1, 21), date(2027, 2, 1), date(2027, 2, 4)]
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 5)) == expected
    resumed = occurrences(rec, UTC_ZONE, utc(2027, 1, 25), 2)
    assert local_dates(resumed) == [date(2027, 2, 1), date(2027, 2, 4)]
    assert [o.index for o in resumed] == [3, 4]


def test_daily_interval_2() -> None:
    rec = daily(date(2027, 1, 1), time(9), interval=2)
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 3)) == [
        date(2027, 1, 1),
        date(2027, 1, 3),
        date(2027, 1, 5),
    ]
    # Resuming far later keeps the odd-day phase: Jan 1 + 2k days.
    resumed = occurrences(rec, UTC_ZONE, utc(2027, 3, 1), 2)
    assert local_dates(resumed) == [date(2027, 3, 2), date(2027, 3, 4)]  # 60 and 62 days after Jan 1
    assert [o.index for o in resumed] == [30, 31]


def test_count_is_total_across_times() -> None:
    rec = daily(date(2027, 1, 1), time(9), time(18), count=3)
    occs = occurrences(rec, UTC_ZONE, LONG_AGO, 10)
    assert utcs(occs) == [utc(2027, 1, 1, 9), utc(2027, 1, 1, 18), utc(2027, 1, 2, 9)]
    assert [o.index for o in occs] == [0, 1, 2]
    assert occurrences(rec, UTC_ZONE, occs[-1].utc, 10) == []


def test_count_index_when_resuming() -> None:
    rec = daily(date(2027, 1, 1), time(9), count=10)
    occs = occurrences(rec, UTC_ZONE, utc(2027, 1, 5, 12), 10)
    assert local_dates(occs) == [date(2027, 1, d) for d in range(6, 11)]
    assert [o.index for o in occs] == [5, 6, 7, 8, 9]


def test_until_is_inclusive() -> None:
    rec = daily(date(2027, 1, 1), time(9), until=date(2027, 1, 3))
    assert local_dates(occurrences(rec, UTC_ZONE, LONG_AGO, 10)) == [
        date(2027, 1, 1),
        date(2027, 1, 2),
        date(2027, 1, 3),
    ]
    assert occurrences(rec, UTC_ZONE, utc(2027, 6, 1), 10) == []


def test_once() -> None:
    rec = Recurrence(frequency="once", start=date(2027, 3, 14), times=[time(9), time(2, 30)])
    assert utcs(occurrences(rec, NEW_YORK, LONG_AGO, 10)) == [utc(2027, 3, 14, 7), utc(2027, 3, 14, 13)]
    assert occurrences(rec, NEW_YORK, utc(2027, 3, 14, 13), 10) == []


def test_limit_zero_and_naive_after() -> None:
    rec = daily(date(2027, 1, 1), time(9))
    assert occurrences(rec, UTC_ZONE, LONG_AGO, 0) == []
    with pytest.raises(ValueError, match="aware"):
        occurrences(rec, UTC_ZONE, datetime(2027, 1, 1), 1)
    with pytest.raises(ValueError, match="limit"):
        occurrences(rec, UTC_ZONE, LONG_AGO, -1)


def test_recurrence_is_normalised_and_hashable() -> None:
    a = Recurrence(frequency="weekly", start=date(2027, 1, 1), times=[time(9), time(8), time(9)], weekdays=[3, 0, 3])
    b = Recurrence(frequency="weekly", start=date(2027, 1, 1), times=(time(8), time(9)), weekdays=(0, 3))
    assert a == b and hash(a) == hash(b)
    assert a.times == (time(8), time(9)) and a.weekdays == (0, 3)


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------

BASE: dict[str, Any] = {"frequency": "daily", "start": date(2027, 1, 1), "times": [time(9)]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"frequency": "hourly"}, "Unknown frequency 'hourly'"),
        ({"times": []}, "at least one local time"),
        ({"times": [time(9, tzinfo=UTC)]}, "naive local time"),
        ({"times": ["09:00"]}, "datetime.time"),
        ({"frequency": "weekly"}, "weekly recurrence needs at least one weekday"),
        ({"frequency": "weekly", "weekdays": [7]}, "Weekdays are 0"),
        ({"frequency": "weekly", "weekdays": [-1]}, "Weekdays are 0"),
        ({"weekdays": [0]}, "weekdays only apply to weekly"),
        ({"frequency": "monthly"}, "needs at least one day of the month"),
        ({"frequency": "monthly", "month_days": [0]}, "Month days are 1 to 31"),
        ({"frequency": "monthly", "month_days": [32]}, "Month days are 1 to 31"),
        ({"frequency": "monthly", "month_days": [-2]}, "Month days are 1 to 31"),
        ({"month_days": [1]}, "month_days only apply to monthly"),
        ({"count": 0}, "count must be at least 1"),
        ({"interval": 0}, "interval must be"),
        ({"interval": True}, "interval must be"),
        ({"until": date(2026, 12, 31)}, "before start"),
        ({"start": datetime(2027, 1, 1)}, "start must be a local date"),
        ({"frequency": "once", "interval": 2}, "interval does not apply"),
        (
            {"frequency": "monthly", "month_days": [30, 31], "interval": 12, "start": date(2027, 2, 1)},
            "never occurs",
        ),
    ],
)
def test_validation_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Recurrence(**{**BASE, **changes})


# --------------------------------------------------------------------------------------------------
# Offsets, local times, local dates
# --------------------------------------------------------------------------------------------------


def test_offset_events_is_elapsed_time() -> None:
    # Anchor at 01:30 EST on the spring-forward day (06:30 UTC); +1 h is 07:30 UTC (03:30 EDT), not 02:30.
    anchor = datetime(2027, 3, 14, 1, 30, tzinfo=NEW_YORK)
    events = offset_events(anchor, [timedelta(0), timedelta(hours=1), timedelta(minutes=30), timedelta(days=1)])
    assert events == [utc(2027, 3, 14, 6, 30), utc(2027, 3, 14, 7, 30), utc(2027, 3, 14, 7), utc(2027, 3, 15, 6, 30)]
    assert all(e.tzinfo is UTC for e in events)
    with pytest.raises(ValueError):
        offset_events(datetime(2027, 1, 1), [timedelta(0)])


def test_at_local_time() -> None:
    due = date(2027, 3, 17)
    assert at_local_time(due - timedelta(days=3), time(9), NEW_YORK) == utc(2027, 3, 14, 13)  # EDT
    assert at_local_time(due - timedelta(days=3), time(9), KOLKATA) == utc(2027, 3, 14, 3, 30)
    assert at_local_time(date(2027, 3, 14), time(2, 30), NEW_YORK) == utc(2027, 3, 14, 7)  # gap -> 03:00


def test_local_date() -> None:
    now = utc(2027, 1, 15, 3)
    assert local_date(now, NEW_YORK) == date(2027, 1, 14)  # 22:00 EST on the 14th
    assert local_date(now, KOLKATA) == date(2027, 1, 15)
    assert local_date(utc(2027, 1, 14, 13), LORD_HOWE) == date(2027, 1, 15)  # midnight at UTC+11
    assert local_date(utc(2027, 1, 14, 12, 59), LORD_HOWE) == date(2027, 1, 14)


# --------------------------------------------------------------------------------------------------
# Quiet hours
# --------------------------------------------------------------------------------------------------

NIGHT = (time(21), time(8))


class TestQuietHours:
    def test_evening_part_of_window_crossing_midnight(self) -> None:
        # 03:00 UTC = 22:00 EST on the 14th; quiet until 08:00 EST on the 15th = 13:00 UTC.
        assert quiet_until(utc(2027, 1, 15, 3), NEW_YORK, *NIGHT) == utc(2027, 1, 15, 13)
        # 16:00 UTC = 21:30 IST; quiet until 08:00 IST next day = 02:30 UTC.
        assert quiet_until(utc(2027, 1, 15, 16), KOLKATA, *NIGHT) == utc(2027, 1, 16, 2, 30)

    def test_morning_part_of_window_crossing_midnight(self) -> None:
        assert quiet_until(utc(2027, 1, 15, 12), NEW_YORK, *NIGHT) == utc(2027, 1, 15, 13)  # 07:00 EST
        assert quiet_until(utc(2027, 1, 15, 0), KOLKATA, *NIGHT) == utc(2027, 1, 15, 2, 30)  # 05:30 IST

    def test_outside_window(self) -> None:
        assert quiet_until(utc(2027, 1, 15, 14), NEW_YORK, *NIGHT) is None  # 09:00 EST
        assert quiet_until(utc(2027, 1, 15, 13), NEW_YORK, *NIGHT) is None  # exactly 08:00: window is [start, end)
        assert quiet_until(utc(2027, 1, 15, 15, 29), KOLKATA, *NIGHT) is None  # 20:59 IST

    def test_window_start_is_inside(self) -> None:
        assert quiet_until(utc(2027, 1, 15, 2), NEW_YORK, *NIGHT) == utc(2027, 1, 15, 13)  # exactly 21:00 EST

    def test_same_day_window(self) -> None:
        lunch = (time(12), time(14))
        assert quiet_until(utc(2027, 1, 15, 10), NAIROBI, *lunch) == utc(2027, 1, 15, 11)  # 13:00 EAT
        assert quiet_until(utc(2027, 1, 15, 11), NAIROBI, *lunch) is None  # 14:00 EAT

    def test_no_quiet_hours_when_start_equals_end(self) -> None:
        assert quiet_until(utc(2027, 1, 15, 3), NEW_YORK, time(8), time(8)) is None

    def test_across_spring_forward(self) -> None:
        # 22:00 EST on the 13th; the night is an hour short: 08:00 EDT on the 14th = 12:00 UTC.
        assert quiet_until(utc(2027, 3, 14, 3), NEW_YORK, *NIGHT) == utc(2027, 3, 14, 12)

    def test_across_fall_back(self) -> None:
        # 22:00 EDT on the 6th; the night is an hour long: 08:00 EST on the 7th = 13:00 UTC.
        assert quiet_until(utc(2027, 11, 7, 2), NEW_YORK, *NIGHT) == utc(2027, 11, 7, 13)

    def test_lord_howe_across_spring_forward(self) -> None:
        # 11:00 UTC = 21:30 at +10:30 on Oct 2; ends 08:00 at +11 on Oct 3 = 21:00 UTC on Oct 2.
        assert quiet_until(utc(2027, 10, 2, 11), LORD_HOWE, *NIGHT) == utc(2027, 10, 2, 21)

    def test_end_in_repeated_hour_second_pass(self) -> None:
        # Quiet 22:00-01:30. At 06:15 UTC the clock reads 01:15 EST (second pass of 01:xx): the first
        # 01:30 (05:30 UTC) is behind us, so quiet hours end at the second 01:30 = 06:30 UTC.
        assert quiet_until(utc(2027, 11, 7, 6, 15), NEW_YORK, time(22), time(1, 30)) == utc(2027, 11, 7, 6, 30)
        # During the first pass the first 01:30 applies.
        assert quiet_until(utc(2027, 11, 7, 5, 15), NEW_YORK, time(22), time(1, 30)) == utc(2027, 11, 7, 5, 30)

    def test_naive_now_rejected(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            quiet_until(datetime(2027, 1, 15, 3), NEW_YORK, *NIGHT)


# --------------------------------------------------------------------------------------------------
# Random time in window
# --------------------------------------------------------------------------------------------------


class TestRandomWindow:
    def test_deterministic(self) -> None:
        args = (date(2027, 5, 3), time(9), time(17), NAIROBI)
        assert random_time_in_window(*args, "case-42:sched-7") == random_time_in_window(*args, "case-42:sched-7")

    def test_inside_window_and_spread(self) -> None:
        day = date(2027, 5, 3)
        picks = [random_time_in_window(day, time(9), time(17), KOLKATA, f"case-{i}") for i in range(300)]
        lo, hi = datetime.combine(day, time(9)), datetime.combine(day, time(17))
        for p in picks:
            local = p.astimezone(KOLKATA).replace(tzinfo=None)
            assert lo <= local < hi
            assert local.second == 0 and local.microsecond == 0
        assert len(set(picks)) > 100  # 480 possible minutes; seeds actually spread

    def test_window_crossing_midnight(self) -> None:
        day = date(2027, 5, 3)
        lo, hi = datetime(2027, 5, 3, 22), datetime(2027, 5, 4, 2)
        for i in range(100):
            local = random_time_in_window(day, time(22), time(2), NEW_YORK, str(i)).astimezone(NEW_YORK)
            assert lo <= local.replace(tzinfo=None) < hi

    def test_empty_window_rejected(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            random_time_in_window(date(2027, 5, 3), time(9), time(9), NAIROBI, "x")


# --------------------------------------------------------------------------------------------------
# Zone selection
# --------------------------------------------------------------------------------------------------


class TestZoneFor:
    def test_contact_zone_wins(self) -> None:
        assert zone_for("Asia/Kolkata", "Africa/Nairobi") == (KOLKATA, None)

    def test_falls_back_to_project(self) -> None:
        assert zone_for(None, "Africa/Nairobi") == (NAIROBI, None)
        assert zone_for("", "Africa/Nairobi") == (NAIROBI, None)

    def test_falls_back_to_utc(self) -> None:
        assert zone_for(None, None) == (UTC_ZONE, None)

    def test_invalid_contact_zone_reported(self) -> None:
        assert zone_for("Mars/Olympus_Mons", "Africa/Nairobi") == (NAIROBI, INVALID_TIME_ZONE)
        assert INVALID_TIME_ZONE == "INVALID_TIME_ZONE"

    def test_invalid_everywhere(self) -> None:
        assert zone_for("Nope/Nope", "Also/Nope") == (UTC_ZONE, INVALID_TIME_ZONE)
        assert zone_for(None, "Nope/Nope") == (UTC_ZONE, INVALID_TIME_ZONE)

    @pytest.mark.parametrize(
        "name",
        ["localtime", "posixrules", "/etc/localtime", "../../../../etc/passwd", "america/new_york", " UTC", "EST5EDT "],
    )
    def test_non_iana_names_rejected(self, name: str) -> None:
        assert zone_for(name, "Asia/Kolkata") == (KOLKATA, INVALID_TIME_ZONE)


# --------------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------------

ZONES = [NAIROBI, NEW_YORK, KOLKATA, LORD_HOWE, ZoneInfo("Europe/London"), ZoneInfo("America/Santiago")]
# Minutes of the day biased towards the small hours, where DST transitions happen.
TIMES = st.one_of(st.integers(0, 1439), st.integers(60, 200)).map(lambda m: time(m // 60, m % 60))


@st.composite
def recurrences(draw: st.DrawFn) -> Recurrence:
    frequency = draw(st.sampled_from(["once", "daily", "weekly", "monthly"]))
    kw: dict[str, Any] = {
        "frequency": frequency,
        "start": draw(st.dates(date(2026, 1, 1), date(2028, 12, 31))),
        "times": draw(st.lists(TIMES, min_size=1, max_size=3)),
        "count": draw(st.none() | st.integers(1, 60)),
    }
    if frequency != "once":
        kw["interval"] = draw(st.integers(1, 3))
    if frequency == "weekly":
        kw["weekdays"] = draw(st.lists(st.integers(0, 6), min_size=1, max_size=7))
    if frequency == "monthly":
        kw["month_days"] = draw(st.lists(st.sampled_from([*range(1, 32), -1]), min_size=1, max_size=4))
    return Recurrence(**kw)


@settings(max_examples=150, deadline=None)
@given(rec=recurrences(), tz=st.sampled_from(ZONES), after_days=st.integers(-30, 400))
def test_property_occurrences_are_near_plan_and_increasing(rec: Recurrence, tz: ZoneInfo, after_days: int) -> None:
    after = datetime.combine(rec.start + timedelta(days=after_days), time(12), UTC)
    occs = occurrences(rec, tz, after, 40)
    for occ in occs:
        assert occ.utc > after
        actual_wall = occ.utc.astimezone(tz).replace(tzinfo=None)
        assert occ.local <= actual_wall <= occ.local + timedelta(hours=1)
    assert all(a.utc < b.utc for a, b in zip(occs, occs[1:], strict=False))
    assert all(a.index < b.index for a, b in zip(occs, occs[1:], strict=False))
    if rec.count is not None:
        assert all(o.index < rec.count for o in occs)


@settings(max_examples=150, deadline=None)
@given(rec=recurrences(), tz=st.sampled_from(ZONES), pivot=st.integers(0, 30))
def test_property_resuming_matches_full_series(rec: Recurrence, tz: ZoneInfo, pivot: int) -> None:
    # The fast path (rrule started near after_utc, index computed arithmetically) must agree with
    # walking the series from its start.
    full = occurrences(rec, tz, LONG_AGO, 40)
    if pivot >= len(full):
        return
    assert [o.index for o in full] == sorted(set(o.index for o in full))
    resumed = occurrences(rec, tz, full[pivot].utc, 5)
    assert resumed == full[pivot + 1 : pivot + 6]
