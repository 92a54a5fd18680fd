"""Broadcasts and conditional alerts as they come in: the one declaration of each body, and the parsing that
validates it and turns it into frozen dataclasses.

`BroadcastIn` and `AlertIn` (and `BroadcastPatch`, `AlertPatch`: any of their fields) are pydantic models
built from the parts' declarations (`schedules`, `contents`, `recipients`, and `rules.CriterionIn`); they
are the API's request bodies and what the pages' forms build (see `casemsg.scheduling.fields`). What is
stored (`Broadcast.schedule`, `.content`, `.recipients`, the same fields of `ConditionalAlert`) is the
*normalised* JSON of the parsed dataclasses (`as_json()`), so reading it back (`schedules.schedule_from_json`,
…) never meets a shape it did not write. A problem raises `InputError` with a catalogue code and a sentence
naming the field:

- an unknown time zone → INVALID_TIME_ZONE; an unknown language → UNKNOWN_LANGUAGE_CODE;
- a malformed template → CANNOT_RENDER_MESSAGE; no text at all → MESSAGE_BLANK;
- everything else (an impossible time such as 25:00, an unknown frequency, a weekly schedule without
  weekdays, day 0 or 32, an unknown field) → VALIDATION_ERROR.

The shapes, with examples, are documented in docs/scheduling.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field

from casemsg.core import timezones
from casemsg.projects.models import Project
from casemsg.scheduling.contents import Content, ContentIn, parse_content
from casemsg.scheduling.fields import (
    MAX_CASE_TYPE,
    MAX_LANGUAGE,
    MAX_NAME,
    MAX_PROPERTY,
    Declaration,
    declared,
    fail,
    language,
    mapping,
    only,
    required,
    whole,
)
from casemsg.scheduling.recipients import (
    ROLES,
    AlertRecipientsIn,
    BroadcastRecipients,
    BroadcastRecipientsIn,
    Role,
    alert_group,
    check_group,
    parse_alert_recipients,
    parse_broadcast_recipients,
)
from casemsg.scheduling.rules import CriterionIn
from casemsg.scheduling.schedules import (
    AlertScheduleIn,
    BroadcastScheduleIn,
    Schedule,
    hhmm,
    parse_alert_schedule,
    parse_schedule,
)

MAX_LATENESS_MINUTES: Final = 30 * 24 * 60
DEFAULT_LATENESS_MINUTES: Final = 2 * 24 * 60

# --------------------------------------------------------------------------------------------------
# The declarations
# --------------------------------------------------------------------------------------------------

_LATENESS = "an event later than this (a worker was down) is skipped; default 2880 (2 days)"
_BROADCAST_EXAMPLE: dict[str, Any] = {
    "name": "Clinic reminder",
    "content": {"channel": "sms", "text": "Hello {case.name}, your visit is tomorrow.", "translations": {}},
    "recipients": {"case_type": "mother", "filters": {"district": "north"}},
    "schedule": {"type": "daily", "time": "09:00", "count": 3, "time_zone": "recipient"},
}
_ALERT_EXAMPLE: dict[str, Any] = {
    "name": "Two weeks before the due date",
    "case_type": "mother",
    "criteria": [{"property": "edd", "operator": "days_before", "value": 14}],
    "content": {"text": "Hello {case.name}, your due date is {case.edd}."},
    "recipients": ["case"],
    "schedule": {"type": "offsets", "unit": "days", "offsets": [0]},
}


class BroadcastPatch(Declaration):
    """Any of a broadcast's fields; the others keep their values. A new schedule or new recipients take
    effect from now on; a new text applies to every message not yet sent."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"content": {"text": "New text"}}]})

    name: str | None = Field(None, max_length=MAX_NAME)
    content: ContentIn | None = None
    recipients: BroadcastRecipientsIn | None = None
    schedule: BroadcastScheduleIn | None = None
    default_language: str | None = Field(None, max_length=MAX_LANGUAGE, description="one of the project's languages")
    max_lateness_minutes: int | None = Field(None, description=_LATENESS)


class BroadcastIn(BroadcastPatch):
    """A broadcast: a message to chosen recipients, now, once, or repeating (docs/api.md)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_BROADCAST_EXAMPLE]})

    name: str = Field(max_length=MAX_NAME, examples=["Clinic reminder"])
    content: ContentIn
    recipients: BroadcastRecipientsIn
    schedule: BroadcastScheduleIn


class AlertPatch(Declaration):
    """Any of an alert's fields; the others keep their values."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Renamed"}]})

    name: str | None = Field(None, max_length=MAX_NAME)
    case_type: str | None = Field(None, max_length=MAX_CASE_TYPE)
    criteria: list[CriterionIn] | None = None
    content: ContentIn | None = None
    recipients: list[str] | AlertRecipientsIn | None = Field(
        None, description=f"a list of {' | '.join(ROLES)}, or {{roles, group}}: only the group's members"
    )
    schedule: AlertScheduleIn | None = None
    default_language: str | None = Field(None, max_length=MAX_LANGUAGE)
    reset_property: str | None = Field(
        None, max_length=MAX_PROPERTY, description="a change of this property restarts a matching case's schedule"
    )
    max_lateness_minutes: int | None = None


class AlertIn(AlertPatch):
    """A conditional alert: a schedule started for each open case of `case_type` matching every criterion."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ALERT_EXAMPLE]})

    name: str = Field(max_length=MAX_NAME)
    case_type: str = Field(max_length=MAX_CASE_TYPE)
    criteria: list[CriterionIn] = Field(default_factory=list)
    content: ContentIn
    recipients: list[str] | AlertRecipientsIn = Field(
        description=f"a list of {' | '.join(ROLES)}, or {{roles, group}}: only the group's members",
        examples=[["case"]],
    )
    schedule: AlertScheduleIn


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


BROADCAST_FIELDS = declared(BroadcastIn)
ALERT_FIELDS = declared(AlertIn)
RULE_FIELDS = frozenset({"case_type", "criteria", "reset_property"})  # an alert's rule: `rules`, through services


def parse_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise fail(f"name must be 1 to {MAX_NAME} characters.")
    return value.strip()


def parse_default_language(value: object, project: Project) -> str:
    if value in (None, ""):
        return ""
    return language(value, project, "default_language")


def parse_lateness(value: object) -> int:
    if value is None:
        return DEFAULT_LATENESS_MINUTES
    return whole(value, "max_lateness_minutes", 1, MAX_LATENESS_MINUTES)


def parse_broadcast(data: object, project: Project, now: datetime, check_past: bool = True) -> BroadcastSpec:
    """Validate a whole broadcast body. `now` (aware): the default start date (today in the project's
    zone), and, with `check_past`, to refuse a one-off time in a named zone that has already passed."""
    d = mapping(data, "The broadcast")
    only(d, BROADCAST_FIELDS, "The broadcast")
    for name in required(BroadcastIn):
        if d.get(name) is None:
            raise fail(f"{name} is required.")
    default_language = parse_default_language(d.get("default_language"), project)
    schedule = parse_schedule(d["schedule"], "broadcast", _today(project, now))
    if check_past:
        _refuse_past(schedule, now)
    content = parse_content(d["content"], project, default_language)
    recipients = parse_broadcast_recipients(d["recipients"])
    check_group(project, recipients.group)
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
        raise fail(f"schedule: {s.start_date} {hhmm(s.times[-1])} {s.time_zone} has already passed.")


def parse_alert(data: object, project: Project, partial: bool = False) -> dict[str, Any]:
    """Validate the schedule and content parts of an alert body: returns the normalised model fields
    present in `data` (all of them unless `partial`). Other keys (case_type, criteria, …) are left to
    the rules and ignored here."""
    d = mapping(data, "The alert")
    out: dict[str, Any] = {}
    if not partial:
        for name in required(AlertIn):
            if name not in RULE_FIELDS and d.get(name) is None:
                raise fail(f"{name} is required.")
    default_language = parse_default_language(d.get("default_language"), project)
    if "default_language" in d:
        out["default_language"] = default_language
    if "name" in d:
        out["name"] = parse_name(d["name"])
    if "content" in d:
        out["content"] = parse_content(d["content"], project, default_language).as_json()
    if "recipients" in d:
        out["recipients"] = list(parse_alert_recipients(d["recipients"]))
        out["group_id"] = alert_group(d["recipients"])
        check_group(project, out["group_id"])
    if "schedule" in d:
        out["schedule"] = parse_alert_schedule(d["schedule"]).as_json()
    if "max_lateness_minutes" in d:
        out["max_lateness_minutes"] = parse_lateness(d["max_lateness_minutes"])
    if "content" in out and "recipients" in out:
        check_survey_recipients(out["content"], out["recipients"])
    return out


def check_survey_recipients(content: Mapping[str, Any], recipients: object) -> None:
    """A survey is asked of a case (its answers go to the case): not of mobile workers or case owners."""
    if content.get("channel") != "survey":
        return
    if isinstance(recipients, BroadcastRecipients):
        wrong = bool(recipients.mobile_workers or recipients.owners_of)
    else:
        wrong = "owner" in cast(Sequence[str], recipients)
    if wrong:
        raise fail(
            "recipients: a survey is asked of cases (its answers are saved to the case), not of mobile workers "
            "or case owners."
        )
