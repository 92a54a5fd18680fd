"""The shapes of broadcasts and conditional alerts: the one place that reads their JSON.

Every body is validated here and turned into frozen dataclasses; what is stored (`Broadcast.schedule`,
`.content`, `.recipients`, the same fields of `ConditionalAlert`) is the *normalised* JSON of those
dataclasses (`as_json()`), so reading it back (`schedule_from_json`, …) never meets a shape it did not
write. A problem raises `InputError` with a catalogue code and a sentence naming the field:

- an unknown time zone → INVALID_TIME_ZONE; an unknown language → UNKNOWN_LANGUAGE_CODE;
- a malformed template → CANNOT_RENDER_MESSAGE; no text at all → MESSAGE_BLANK;
- everything else (an impossible time such as 25:00, an unknown frequency, a weekly schedule without
  weekdays, day 0 or 32, an unknown field) → VALIDATION_ERROR.

The shapes, with examples, are documented in docs/scheduling.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from casemsg.core import errors, timezones
from casemsg.core.errors import InputError
from casemsg.messaging import render
from casemsg.projects.models import Project
from casemsg.scheduling.timing import Frequency, Recurrence
from casemsg.surveys.models import Survey

Channel = Literal["sms", "email", "survey"]
ScheduleKind = Literal["now", "offsets", "timed"]
StartFrom = Literal["fixed", "matched", "property"]
Role = Literal["case", "owner", "parent"]

ROLES: tuple[Role, ...] = ("case", "owner", "parent")
UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}
WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
MAX_TEXT = 10_000
MAX_LIST = 10_000  # listed case ids or mobile workers
MAX_EVENTS = 1_000  # offsets in one list, times in one day, count
MAX_LATENESS_MINUTES = 30 * 24 * 60
DEFAULT_LATENESS_MINUTES = 2 * 24 * 60
RECIPIENT_ZONE = "recipient"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_PROPERTY = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")


def _fail(message: str) -> InputError:
    return InputError(errors.VALIDATION_ERROR, message)


# --------------------------------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """What to send: an SMS, an email with a subject (texts are templates: {case.name}, …), or an SMS
    survey (`survey_id`: each occurrence starts a session of the survey's current version)."""

    channel: Channel = "sms"
    text: str | None = None
    translations: Mapping[str, str] = field(default_factory=dict)
    subject: str = ""  # email: the untranslated subject
    subject_translations: Mapping[str, str] = field(default_factory=dict)
    survey_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel}
        if self.channel == "survey":
            return {**out, "survey_id": self.survey_id}
        if self.text is not None:
            out["text"] = self.text
        if self.translations:
            out["translations"] = dict(self.translations)
        if self.channel == "email":
            out["subject"] = dict(self.subject_translations) if self.subject_translations else self.subject
            if self.subject_translations and self.subject:
                out["subject"] = {**self.subject_translations, "*": self.subject}
        return out

    def subject_for(self, chain: Sequence[str]) -> str:
        """The subject template for the first language of `chain` that has one, else the untranslated one."""
        chosen, _lang = render.choose_text(
            {"translations": self.subject_translations, "text": self.subject}, list(chain)
        )
        return chosen or ""


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(f"{where} must be an object.")
    return cast(Mapping[str, Any], value)


def _only(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise _fail(f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.")


def _template(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(f"{where} must be a string.")
    if len(value) > MAX_TEXT:
        raise InputError(errors.VALUE_TOO_LONG, f"{where} is longer than {MAX_TEXT} characters.")
    problem = render.check_template(value)
    if problem:
        raise InputError(errors.CANNOT_RENDER_MESSAGE, f"{where} is not a valid template: {problem}.")
    return value


def _language(value: object, project: Project, where: str) -> str:
    languages = list(project.sms_languages or [])
    if not isinstance(value, str) or value not in languages:
        raise InputError(
            errors.UNKNOWN_LANGUAGE_CODE,
            f"{where}: '{value}' is not one of the project's languages ({', '.join(languages)}).",
        )
    return value


def _translations(value: object, project: Project, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for lang, text in _mapping(value, where).items():
        _language(lang, project, f"{where} language")
        out[lang] = _template(text, f"{where}.{lang}")
    return out


def parse_content(data: object, project: Project, default_language: str = "", where: str = "content") -> Content:
    """Validate an SMS or email content object; `default_language` is the owner's (already validated)."""
    d = _mapping(data, where)
    channel = d.get("channel", "sms")
    if channel not in ("sms", "email", "survey"):
        raise _fail(f"{where}.channel must be 'sms', 'email' or 'survey', not {channel!r}.")
    if channel == "survey":
        return _survey_content(d, project, where)
    _only(d, {"channel", "text", "translations"} | ({"subject"} if channel == "email" else set()), where)
    text = _template(d["text"], f"{where}.text") if d.get("text") is not None else None
    translations = _translations(d.get("translations") or {}, project, f"{where}.translations")
    if not (text or "").strip() and not any(t.strip() for t in translations.values()):
        raise InputError(errors.MESSAGE_BLANK, f"{where} needs a non-empty text or translations.")
    fallback = [lang for lang in (default_language, project.default_language) if lang]
    if not (text or "").strip() and not any((translations.get(lang) or "").strip() for lang in fallback):
        raise _fail(
            f"{where} needs a text, or a translation in the default language ({' or '.join(fallback)}), for "
            "recipients whose language has no translation."
        )
    subject, subject_translations = "", {}
    if channel == "email":
        raw = d.get("subject")
        if isinstance(raw, Mapping):
            subject_translations = {
                lang: _template(t, f"{where}.subject.{lang}") for lang, t in raw.items() if lang != "*"
            }
            for lang in subject_translations:
                _language(lang, project, f"{where}.subject language")
            subject = _template(raw.get("*", ""), f"{where}.subject.*")
        elif raw is not None:
            subject = _template(raw, f"{where}.subject")
        if not subject.strip() and not any(t.strip() for t in subject_translations.values()):
            raise _fail(f"{where}.subject is required for an email (a text, or {{language: text}}).")
    return Content(channel, text, translations, subject, subject_translations)


def _survey_content(d: Mapping[str, Any], project: Project, where: str) -> Content:
    _only(d, {"channel", "survey_id"}, where)
    survey_id = _int(d.get("survey_id"), f"{where}.survey_id", 1, 2**63 - 1)
    if not Survey.objects.filter(project=project, pk=survey_id, builtin="", current_version__isnull=False).exists():
        raise InputError(errors.SURVEY_NOT_FOUND, f"{where}.survey_id: no survey {survey_id} in this project.", 404)
    return Content("survey", survey_id=survey_id)


def check_survey_recipients(content: Mapping[str, Any], recipients: object) -> None:
    """A survey is asked of a case (its answers go to the case): not of mobile workers or case owners."""
    if content.get("channel") != "survey":
        return
    if isinstance(recipients, BroadcastRecipients):
        wrong = bool(recipients.mobile_workers or recipients.owners_of)
    else:
        wrong = "owner" in cast(Sequence[str], recipients)
    if wrong:
        raise _fail(
            "recipients: a survey is asked of cases (its answers are saved to the case), not of mobile workers "
            "or case owners."
        )


def content_from_json(data: Mapping[str, Any]) -> Content:
    """Stored (normalised) content back to its dataclass, without re-validating."""
    raw = data.get("subject")
    subject, subject_translations = "", {}
    if isinstance(raw, Mapping):
        subject_translations = {k: v for k, v in raw.items() if k != "*"}
        subject = raw.get("*", "")
    elif isinstance(raw, str):
        subject = raw
    return Content(
        channel=data.get("channel", "sms"),
        text=data.get("text"),
        translations=dict(data.get("translations") or {}),
        subject=subject,
        subject_translations=subject_translations,
        survey_id=data.get("survey_id"),
    )


# --------------------------------------------------------------------------------------------------
# Schedules
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
                out["random_window"] = {"start": _hhmm(self.window[0]), "end": _hhmm(self.window[1])}
            elif self.time_property:
                out["time_property"] = self.time_property
            else:
                out["times"] = [_hhmm(t) for t in self.times]
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
                start["time"] = _hhmm(self.start_time)
            out["start"] = start
        if self.kind != "now":
            out["time_zone"] = self.time_zone or RECIPIENT_ZONE
        return out


def _best_unit(values: Sequence[timedelta]) -> tuple[str, timedelta]:
    for unit in ("days", "hours"):
        if all(v % UNITS[unit] == timedelta(0) for v in values):
            return unit, UNITS[unit]
    return "minutes", UNITS["minutes"]


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M:%S") if t.second else t.strftime("%H:%M")


def parse_time(value: object, where: str) -> time:
    """'HH:MM' or 'HH:MM:SS', 24-hour: '25:00' or '9.30' is refused with a sentence naming the field."""
    m = _TIME.match(value) if isinstance(value, str) else None
    if m is None:
        raise _fail(f"{where}: {value!r} is not a time of day; use 24-hour HH:MM, e.g. 09:30.")
    hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise _fail(f"{where}: {value!r} is not a time of day (00:00 to 23:59).")
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
                raise _fail(f"{where}: {value!r} is too far ahead; the last date a schedule can use is {LAST_DATE}.")
            return day
    raise _fail(f"{where}: {value!r} is not a date; use YYYY-MM-DD.")


def _int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(f"{where} must be a whole number from {low} to {high}, not {value!r}.")
    return value


def _list(value: object, where: str, limit: int = MAX_EVENTS) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{where} must be a list.")
    if len(value) > limit:
        raise _fail(f"{where} has more than {limit} items.")
    return value


def _property_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _PROPERTY.match(value):
        raise _fail(f"{where} must be a case property name (letters, digits, '_' and '-'), not {value!r}.")
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
    raise _fail(f"{where}: {value!r} is not a weekday; use mon … sun (or 0 = Monday … 6 = Sunday).")


_WEEKDAY_NAMES = {*WEEKDAYS, "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def _month_day(value: object, where: str) -> int:
    if value == "last" or value == -1:
        return -1
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 31:
        return value
    raise _fail(f"{where}: {value!r} is not a day of the month; use 1 to 31, or 'last'.")


_COMMON = {"type", "count", "time_zone"}
_TIMED = {"time", "times", "random_window", "time_property", "weekdays", "month_days", "interval", "until"}
_FREQUENCIES = ("once", "daily", "weekly", "monthly")


def parse_schedule(data: object, owner: Literal["broadcast", "alert"], today: date) -> Schedule:
    """Validate a broadcast's or an alert's schedule. `today`: the default start date of a broadcast."""
    d = _mapping(data, "schedule")
    kind = d.get("type")
    kinds = ("now", *_FREQUENCIES) if owner == "broadcast" else ("offsets", *_FREQUENCIES[1:])
    if kind not in kinds:
        raise _fail(f"schedule.type must be one of {', '.join(kinds)}, not {kind!r}.")
    if kind == "now":
        _only(d, {"type"}, "A schedule of type now")
        return Schedule(kind="now", count=1)
    start_keys = ({"date"} if kind == "once" else {"start_date"}) if owner == "broadcast" else {"start"}
    if kind == "offsets":
        _only(d, _COMMON | start_keys | {"unit", "offsets", "every", "repeat_every"}, "An offsets schedule")
    else:
        allowed = _COMMON | start_keys | _TIMED
        if owner == "broadcast":
            allowed.discard("time_property")
        else:
            allowed.discard("until")
        _only(d, allowed, f"A {kind} schedule")
    zone = _zone(d.get("time_zone"), "schedule.time_zone")
    count = None if d.get("count") is None else _int(d["count"], "schedule.count", 1, MAX_EVENTS)

    # where the events are counted from
    start_from: StartFrom = "fixed"
    start_date: date | None = None
    start_property, start_days, start_time = "", 0, None
    if owner == "broadcast":
        raw_start = d.get("date") if kind == "once" else d.get("start_date")
        if kind == "once" and raw_start is None:
            raise _fail("A once schedule needs schedule.date (YYYY-MM-DD) and schedule.time.")
        start_date = (
            parse_date(raw_start, "schedule.date" if kind == "once" else "schedule.start_date")
            if (raw_start is not None)
            else today
        )
    else:
        start = _mapping(d.get("start", {"from": "matched"}), "schedule.start")
        _only(start, {"from", "property", "days", "time"}, "schedule.start")
        if start.get("from", "matched") == "matched":
            start_from = "matched"
            if set(start) - {"from"}:
                raise _fail("schedule.start from 'matched' takes no property, days or time.")
        elif start.get("from") == "property":
            start_from = "property"
            start_property = _property_name(start.get("property"), "schedule.start.property")
            start_days = _int(start.get("days", 0), "schedule.start.days", -3650, 3650)
            if start.get("time") is not None:
                if kind != "offsets":
                    raise _fail("schedule.start.time only applies to offsets schedules; give times instead.")
                start_time = parse_time(start["time"], "schedule.start.time")
        else:
            raise _fail(f"schedule.start.from must be 'matched' or 'property', not {start.get('from')!r}.")

    if kind == "offsets":
        unit = d.get("unit", "minutes")
        if unit not in UNITS:
            raise _fail(f"schedule.unit must be minutes, hours or days, not {unit!r}.")
        step = UNITS[unit]
        if ("offsets" in d) == ("every" in d):
            raise _fail("An offsets schedule needs either offsets (a list) or every (a number), not both.")
        if "every" in d:
            every = _int(d["every"], "schedule.every", 1, 1_000_000) * step
            if "repeat_every" in d:
                raise _fail("schedule.every is the repeat interval already; remove repeat_every.")
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
        raw = _list(d["offsets"], "schedule.offsets")
        if not raw:
            raise _fail("schedule.offsets needs at least one offset.")
        offsets = tuple(_int(v, f"schedule.offsets[{i}]", 0, 1_000_000) * step for i, v in enumerate(raw))
        if any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
            raise _fail("schedule.offsets must be in increasing order, each later than the one before.")
        repeat_every = None
        if d.get("repeat_every") is not None:
            repeat_every = _int(d["repeat_every"], "schedule.repeat_every", 1, 1_000_000) * step
            if repeat_every <= offsets[-1] - offsets[0]:
                raise _fail(
                    "schedule.repeat_every must be longer than the span of the offsets, so events stay in order."
                )
        elif count is not None and count > 1:
            raise _fail("schedule.count repeats the offsets: give repeat_every (how far apart the repetitions are).")
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
        raise _fail("A timed schedule needs exactly one of time, times, random_window or time_property.")
    times: tuple[time, ...] = ()
    window: tuple[time, time] | None = None
    time_property = ""
    if ways[0] == "time":
        times = (parse_time(d["time"], "schedule.time"),)
    elif ways[0] == "times":
        raw_times = _list(d["times"], "schedule.times", 24 * 60)
        if not raw_times:
            raise _fail("schedule.times needs at least one time of day.")
        times = tuple(sorted({parse_time(t, f"schedule.times[{i}]") for i, t in enumerate(raw_times)}))
    elif ways[0] == "random_window":
        w = _mapping(d["random_window"], "schedule.random_window")
        _only(w, {"start", "end"}, "schedule.random_window")
        window = (
            parse_time(w.get("start"), "schedule.random_window.start"),
            parse_time(w.get("end"), "schedule.random_window.end"),
        )
        if window[0] == window[1]:
            raise _fail("schedule.random_window is empty: start and end are the same time.")
    else:
        time_property = _property_name(d["time_property"], "schedule.time_property")
    weekdays = tuple(
        sorted(
            {
                _weekday(v, f"schedule.weekdays[{i}]")
                for i, v in enumerate(_list(d.get("weekdays", []), "schedule.weekdays"))
            }
        )
    )
    month_days = tuple(
        sorted(
            {
                _month_day(v, f"schedule.month_days[{i}]")
                for i, v in enumerate(_list(d.get("month_days", []), "schedule.month_days"))
            }
        )
    )
    if kind == "weekly" and not weekdays:
        raise _fail('A weekly schedule needs schedule.weekdays (e.g. ["mon", "thu"]).')
    if kind == "monthly" and not month_days:
        raise _fail("A monthly schedule needs schedule.month_days (1 to 31, or 'last').")
    if kind != "weekly" and weekdays:
        raise _fail(f"schedule.weekdays only applies to weekly schedules, not {kind}.")
    if kind != "monthly" and month_days:
        raise _fail(f"schedule.month_days only applies to monthly schedules, not {kind}.")
    interval = _int(d.get("interval", 1), "schedule.interval", 1, 1000)
    if kind == "once" and (interval != 1 or count not in (None, 1)):
        raise _fail("A once schedule has one event: interval and count do not apply.")
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
        raise _fail(f"schedule: {exc}") from None
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


# --------------------------------------------------------------------------------------------------
# Recipients
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseSelection:
    case_type: str
    filters: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"case_type": self.case_type, "filters": dict(self.filters)}


@dataclass(frozen=True)
class BroadcastRecipients:
    """Who a broadcast goes to: the union of open cases of a type matching property filters, listed
    cases (by case_id), mobile workers (ids or usernames, or "all" active ones), and the owners of
    matching open cases (a case's owner_id names a mobile worker by username, or by id)."""

    cases: CaseSelection | None = None
    case_ids: tuple[str, ...] = ()
    mobile_workers: tuple[int | str, ...] | Literal["all"] = ()
    owners_of: CaseSelection | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cases is not None:
            out.update(self.cases.as_json())
        if self.case_ids:
            out["case_ids"] = list(self.case_ids)
        if self.mobile_workers:
            out["mobile_workers"] = self.mobile_workers if self.mobile_workers == "all" else list(self.mobile_workers)
        if self.owners_of is not None:
            out["owners_of"] = self.owners_of.as_json()
        return out


def _selection(d: Mapping[str, Any], where: str) -> CaseSelection:
    case_type = d.get("case_type")
    if not isinstance(case_type, str) or not case_type.strip() or len(case_type) > 64:
        raise _fail(f"{where}.case_type must be a case type (1 to 64 characters).")
    filters: dict[str, str] = {}
    for key, value in _mapping(d.get("filters") or {}, f"{where}.filters").items():
        if not isinstance(key, str) or not key.strip() or len(key) > 255:
            raise _fail(f"{where}.filters: {key!r} is not a property name.")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _fail(f"{where}.filters.{key} must be a string or a number (the exact property value).")
        filters[key] = str(value)
    return CaseSelection(case_type, filters)


def parse_broadcast_recipients(data: object) -> BroadcastRecipients:
    d = _mapping(data, "recipients")
    _only(d, {"case_type", "filters", "case_ids", "mobile_workers", "owners_of"}, "recipients")
    cases = _selection(d, "recipients") if d.get("case_type") is not None or d.get("filters") else None
    case_ids = tuple(
        dict.fromkeys(
            _case_id(v, f"recipients.case_ids[{i}]")
            for i, v in enumerate(_list(d.get("case_ids", []), "recipients.case_ids", MAX_LIST))
        )
    )
    workers: tuple[int | str, ...] | Literal["all"] = ()
    raw_workers = d.get("mobile_workers")
    if raw_workers == "all":
        workers = "all"
    elif raw_workers is not None:
        workers = tuple(
            dict.fromkeys(
                _worker_ref(v, f"recipients.mobile_workers[{i}]")
                for i, v in enumerate(_list(raw_workers, "recipients.mobile_workers", MAX_LIST))
            )
        )
    owners_of = None
    if d.get("owners_of") is not None:
        o = _mapping(d["owners_of"], "recipients.owners_of")
        _only(o, {"case_type", "filters"}, "recipients.owners_of")
        owners_of = _selection(o, "recipients.owners_of")
    out = BroadcastRecipients(cases, case_ids, workers, owners_of)
    if not (cases or case_ids or workers or owners_of):
        raise _fail("recipients must name someone: case_type (with filters), case_ids, mobile_workers or owners_of.")
    return out


def _case_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise _fail(f"{where} must be a case_id (1 to 64 characters).")
    return value


def _worker_ref(value: object, where: str) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip() and len(value) <= 150:
        return value
    raise _fail(f"{where} must be a mobile worker's id or username.")


def broadcast_recipients_from_json(data: Mapping[str, Any]) -> BroadcastRecipients:
    return parse_broadcast_recipients(data)


def parse_alert_recipients(data: object) -> tuple[Role, ...]:
    """An alert's recipients: a non-empty list of "case", "owner" (its mobile worker), "parent" (its parent case)."""
    values = _list(data, "recipients", len(ROLES) * 2)
    roles: list[Role] = []
    for i, v in enumerate(values):
        if v not in ROLES:
            raise _fail(f"recipients[{i}] must be one of {', '.join(ROLES)}, not {v!r}.")
        if v not in roles:
            roles.append(cast(Role, v))
    if not roles:
        raise _fail(f"recipients needs at least one of {', '.join(ROLES)}.")
    return tuple(roles)


# --------------------------------------------------------------------------------------------------
# Whole bodies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BroadcastSpec:
    name: str
    content: Content
    recipients: BroadcastRecipients
    schedule: Schedule
    default_language: str = ""
    max_lateness_minutes: int = DEFAULT_LATENESS_MINUTES


@dataclass(frozen=True)
class AlertSpec:
    """The schedule and content parts of a conditional alert (its case type and criteria are the rules')."""

    name: str
    content: Content
    recipients: tuple[Role, ...]
    schedule: Schedule
    default_language: str = ""
    max_lateness_minutes: int = DEFAULT_LATENESS_MINUTES


BROADCAST_FIELDS = {"name", "content", "recipients", "schedule", "default_language", "max_lateness_minutes"}
ALERT_FIELDS = BROADCAST_FIELDS


def parse_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise _fail("name must be 1 to 200 characters.")
    return value.strip()


def parse_default_language(value: object, project: Project) -> str:
    if value in (None, ""):
        return ""
    return _language(value, project, "default_language")


def parse_lateness(value: object) -> int:
    if value is None:
        return DEFAULT_LATENESS_MINUTES
    return _int(value, "max_lateness_minutes", 1, MAX_LATENESS_MINUTES)


def parse_broadcast(data: object, project: Project, now: datetime, check_past: bool = True) -> BroadcastSpec:
    """Validate a whole broadcast body. `now` (aware): the default start date (today in the project's
    zone), and, with `check_past`, to refuse a one-off time in a named zone that has already passed."""
    d = _mapping(data, "The broadcast")
    _only(d, BROADCAST_FIELDS, "The broadcast")
    for required in ("name", "content", "recipients", "schedule"):
        if d.get(required) is None:
            raise _fail(f"{required} is required.")
    default_language = parse_default_language(d.get("default_language"), project)
    schedule = parse_schedule(d["schedule"], "broadcast", _today(project, now))
    if check_past:
        _refuse_past(schedule, now)
    content = parse_content(d["content"], project, default_language)
    recipients = parse_broadcast_recipients(d["recipients"])
    check_survey_recipients(content.as_json(), recipients)
    return BroadcastSpec(
        name=parse_name(d["name"]),
        content=content,
        recipients=recipients,
        schedule=schedule,
        default_language=default_language,
        max_lateness_minutes=parse_lateness(d.get("max_lateness_minutes")),
    )


def _today(project: Project, now: datetime) -> date:
    zone = project.default_time_zone if timezones.is_valid(project.default_time_zone) else "UTC"
    return now.astimezone(ZoneInfo(zone)).date()


def _refuse_past(s: Schedule, now: datetime) -> None:
    """A one-off broadcast at a time that has passed in its named zone would send nothing."""
    if s.kind != "timed" or s.frequency != "once" or not s.time_zone or s.start_date is None or not s.times:
        return
    last = datetime.combine(s.start_date, s.times[-1]).replace(tzinfo=ZoneInfo(s.time_zone))
    if last < now:
        raise _fail(f"schedule: {s.start_date} {_hhmm(s.times[-1])} {s.time_zone} has already passed.")


def parse_alert(data: object, project: Project, partial: bool = False) -> dict[str, Any]:
    """Validate the schedule and content parts of an alert body: returns the normalised model fields
    present in `data` (all of them unless `partial`). Other keys (case_type, criteria, …) are left to
    the rules and ignored here."""
    d = _mapping(data, "The alert")
    out: dict[str, Any] = {}
    if not partial:
        for required in ("name", "content", "recipients", "schedule"):
            if d.get(required) is None:
                raise _fail(f"{required} is required.")
    default_language = parse_default_language(d.get("default_language"), project)
    if "default_language" in d:
        out["default_language"] = default_language
    if "name" in d:
        out["name"] = parse_name(d["name"])
    if "content" in d:
        out["content"] = parse_content(d["content"], project, default_language).as_json()
    if "recipients" in d:
        out["recipients"] = list(parse_alert_recipients(d["recipients"]))
    if "schedule" in d:
        out["schedule"] = parse_alert_schedule(d["schedule"]).as_json()
    if "max_lateness_minutes" in d:
        out["max_lateness_minutes"] = parse_lateness(d["max_lateness_minutes"])
    if "content" in out and "recipients" in out:
        check_survey_recipients(out["content"], out["recipients"])
    return out


def parse_alert_schedule(data: object) -> Schedule:
    """An alert's schedule: offsets, or daily / weekly / monthly, from when the case matched or from a
    date property (± days)."""
    return parse_schedule(data, "alert", date(1970, 1, 1))
