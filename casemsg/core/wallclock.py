"""Wall-clock arithmetic below every area: the daily quiet window read on a recipient's clock.

The send pipeline (`messaging`) needs :func:`quiet_until` and sits below `scheduling`, so the function lives
here, in the core, where both may import it. It is the same code as `casemsg.scheduling.timing.quiet_until`
(DST gaps move to the gap's end, autumn overlaps resolve to the first pass; see that module's notes);
tests/messaging/test_quiet_hours.py keeps the two equal until `timing` imports it from here.

It is also the one place an instant becomes the words a person reads (:func:`shown`, :func:`wall`): the
pages (the `when` tag of `casemsg/web/templatetags/casemsg_web.py`), the CLI listings and the coming sends
all label a time with its zone, derived from the UTC instant itself — never from a planned wall time,
which may not exist (a spring-forward gap) or exist twice (a fall-back fold).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from casemsg.core import timezones

__all__ = ["Wall", "quiet_until", "shown", "to_utc", "wall", "zone"]

_UTC = ZoneInfo("UTC")


def zone(name: str) -> ZoneInfo:
    """The IANA zone of this name; UTC for an empty or unknown name (never a file path's contents)."""
    return ZoneInfo(name) if timezones.is_valid(name) else _UTC


def to_utc(local_naive: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall-clock time in ``tz`` as an aware UTC instant.

    A wall time inside a DST gap moves to the first instant after the gap; an ambiguous one (autumn
    overlap) is its first occurrence (``fold=0``)."""
    if local_naive.tzinfo is not None:
        raise ValueError(f"to_utc expects a naive local wall-clock datetime, got an aware one: {local_naive!r}.")
    wall = local_naive.replace(fold=0)
    first = wall.replace(tzinfo=tz).astimezone(UTC)
    # Round trip: a wall time that exists comes back unchanged; one in a gap comes back shifted.
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    return _gap_end(wall, tz)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """The transition instant that ends the gap containing ``wall`` (binary search on whole seconds, so
    the size of the shift is not assumed: 30 minutes at Lord Howe)."""
    a = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = (a, b) if a < b else (b, a)
    after = hi.astimezone(tz).utcoffset()
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == after:
            hi_s = mid
        else:
            lo_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def quiet_until(now_utc: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """If the wall clock of ``tz`` is inside the daily quiet window [start, end), the UTC instant it ends.

    The window may cross midnight (21:00-08:00); ``start == end`` means there are no quiet hours. The end
    is the next time the local clock shows ``end``; None outside the window."""
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError(f"now_utc must be a timezone-aware datetime, got a naive one: {now_utc!r}.")
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError("start and end must be naive local times of day.")
    if start == end:
        return None
    local = now_utc.astimezone(tz)
    wall_time = local.time().replace(tzinfo=None, fold=0)
    today = local.date()
    if start < end:
        if not start <= wall_time < end:
            return None
        end_day = today
    elif wall_time >= start:
        end_day = today + timedelta(days=1)  # evening part of a window that crosses midnight
    elif wall_time < end:
        end_day = today  # early-morning part
    else:
        return None
    end_wall = datetime.combine(end_day, end)
    candidate = to_utc(end_wall, tz)
    if candidate > now_utc:
        return candidate
    # Only in an autumn overlap: "now" is the second pass of a repeated hour and the end's first pass is
    # behind us; the clock shows ``end`` again at its second pass, when quiet hours really end.
    second = end_wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return second if second > now_utc else None


# --------------------------------------------------------------------------------------------------
# An instant as a person reads it
# --------------------------------------------------------------------------------------------------

FORMATS = {
    "minute": "%Y-%m-%d %H:%M",
    "second": "%Y-%m-%d %H:%M:%S",
    "time": "%H:%M",
    "time_s": "%H:%M:%S",
    "date": "%Y-%m-%d",
}


class Wall(NamedTuple):
    """An instant on a zone's clock: the aware local time, the zone's abbreviation then ("EAT", "EDT", or
    "UTC+04" where the zone has no letters), its offset ("+03:00"), and — only when that wall time happens
    twice (a fall-back fold) — which of the two it is ("first" or "second")."""

    local: datetime
    abbreviation: str
    offset: str
    fold: str

    @property
    def naive(self) -> datetime:
        return self.local.replace(tzinfo=None, fold=0)


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def wall(instant: datetime, zone_name: str) -> Wall:
    """`instant` (aware; a naive one is read as UTC) on the clock of `zone_name` (UTC if unknown)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    tz = zone(zone_name)
    local = instant.astimezone(tz)  # PEP 495: fold=1 on the second pass of a repeated hour
    name = local.tzname() or "UTC"
    if name[:1] in "+-":  # tzdata's numeric "abbreviations" (Asia/Dubai: "+04") read as offsets
        name = f"UTC{name}"
    naive = local.replace(tzinfo=None)
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    # a converted instant never lands in a gap, so two offsets for its wall time mean a fold
    fold = ("second" if local.fold else "first") if first.utcoffset() != second.utcoffset() else ""
    return Wall(local, name, _offset(local.utcoffset()), fold)


def shown(instant: datetime | None, zone_name: str, fmt: str = "minute", empty: str = "—") -> str:
    """`instant` as a person reads it, labelled with the zone: "2026-12-07 14:05 EAT"; in a fall-back fold
    also which pass: "2027-11-07 01:30 EST (the second 01:30)". `fmt`: minute, second, time, time_s or date
    (a date alone carries no zone label: it is the zone's day). None is `empty`."""
    if instant is None:
        return empty
    w = wall(instant, zone_name)
    text = w.local.strftime(FORMATS.get(fmt, FORMATS["minute"]))
    if fmt == "date":
        return text
    text = f"{text} {w.abbreviation}"
    if w.fold:
        text += f" (the {w.fold} {w.local:%H:%M})"
    return text
