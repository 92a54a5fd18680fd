"""The broadcast and conditional alert forms: what a person fills in, turned into the body the API takes.

A form builds the scheduling area's one declaration of the body (`specs.BroadcastIn`/`BroadcastPatch`,
`specs.AlertIn`; `body()` checks it with `fields.validated`, so a value the declaration refuses is refused
in the API's words) and hands it to the scheduling services, which apply the rest of the rules (`specs`,
`rules`): a refusal is an `InputError` shown on the form with its code and sentence. The limits and the
choices the fields show (lengths, ranges, schedule types, units, weekdays, channels, roles, operators) are
read from the scheduling area, never re-declared here. (About 500 lines: the two forms share `_OwnerForm`
and `_owner_initial`, so they stay together.)
"""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any
from zoneinfo import available_timezones

from django import forms

from casemsg.cases import queries as case_queries
from casemsg.core import timezones
from casemsg.groups import queries as group_queries
from casemsg.projects.models import Project
from casemsg.scheduling import contents, fields, recipients, rules, schedules, specs
from casemsg.scheduling.fields import max_length
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.surveys import queries as survey_queries

_CHANNEL_LABELS = {"sms": "SMS", "email": "Email", "whatsapp": "WhatsApp", "survey": "SMS survey"}
_TYPE_LABELS = {
    "now": "Now",
    "once": "Once, at a date and time",
    "offsets": "At offsets",
    "daily": "Daily",
    "weekly": "Weekly",
    "monthly": "Monthly",
}
_ROLE_LABELS = {"case": "the case", "owner": "its owner", "parent": "its parent case"}
_OPERATOR_LABELS = {
    "equal": "is",
    "not_equal": "is not",
    "has_value": "has a value",
    "has_no_value": "has no value",
    "regex": "matches the regex",
    "days_before": "days before (date)",
    "days_after": "days after (date)",
}
WEEKDAYS = [(d, d.capitalize()) for d in schedules.WEEKDAYS]
SCHEDULE_TYPES = [(t, _TYPE_LABELS[t]) for t in schedules.BROADCAST_TYPES]
ALERT_SCHEDULE_TYPES = [(t, _TYPE_LABELS[t]) for t in schedules.ALERT_TYPES]
UNITS = [(u, u) for u in schedules.UNITS]
OPERATORS = [("", "—"), *((op, _OPERATOR_LABELS[op]) for op in rules.OPERATORS)]
TIMING = [
    ("time", "at times of day"),
    ("window", "at a random time in a window"),
    ("property", "at a case property's time"),
]
CRITERIA_ROWS = 5
_WHOLE = re.compile(r"-?\d+")


@functools.cache
def _zones() -> list[tuple[str, str]]:
    names = sorted(z for z in available_timezones() if timezones.is_valid(z))
    return [(schedules.RECIPIENT_ZONE, "Each recipient's own time zone"), *((z, z) for z in names)]


def _split(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", value or "") if part.strip()]


def _choices(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices
    return field


# --------------------------------------------------------------------------------------------------
# What both forms share: the content, the time zone, a timed schedule's days and count
# --------------------------------------------------------------------------------------------------


class _OwnerForm(forms.Form):
    """The fields a broadcast and an alert have alike, and the per-project choices they show."""

    channel = forms.ChoiceField(choices=[(c, _CHANNEL_LABELS[c]) for c in contents.CHANNELS], initial="sms")
    survey = forms.ChoiceField(required=False, label="Survey", help_text="survey only: asked of each case")
    subject = forms.CharField(required=False, max_length=fields.MAX_TEXT, help_text="email only")
    # WhatsApp only: the approved template sent outside the 24-hour window (the text goes inside it)
    whatsapp_template = forms.CharField(required=False, max_length=512, label="WhatsApp template")
    whatsapp_variables = forms.CharField(
        required=False,
        max_length=fields.MAX_TEXT,
        label="Its variables",
        help_text="{{1}}, {{2}} … in order, comma-separated: {case.name}, {case.edd}",
    )
    fallback_sms = forms.BooleanField(required=False, label="Send as SMS when WhatsApp cannot")
    default_language = forms.ChoiceField(required=False, label="Default language")
    time_zone = forms.ChoiceField(required=False, label="Time zone")
    weekdays = forms.MultipleChoiceField(
        required=False, choices=WEEKDAYS, widget=forms.CheckboxSelectMultiple, label="Weekly on"
    )
    count = forms.IntegerField(required=False, min_value=1, max_value=fields.MAX_EVENTS, label="Times in all")

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.languages = list(project.sms_languages or [])
        found = survey_queries.survey_choices(project)
        _choices(self, "survey", [("", "—"), *((str(pk), name) for pk, name in found)])
        for lang in self.languages:
            self.fields[f"text_{lang}"] = forms.CharField(
                required=False,
                max_length=max_length(contents.ContentIn, "text"),
                label=f"Text in {lang}",
                widget=forms.Textarea(attrs={"rows": 2}),
            )
        default = project.default_language
        _choices(self, "default_language", [("", f"The project's ({default})"), *((x, x) for x in self.languages)])
        _choices(self, "time_zone", _zones()).initial = schedules.RECIPIENT_ZONE

    def translation_fields(self) -> list[forms.BoundField]:
        return [self[f"text_{lang}"] for lang in self.languages]

    def _content(self) -> dict[str, Any]:
        """The body's `content`."""
        d = self.cleaned_data
        if d["channel"] == "survey":
            return {"channel": "survey", "survey_id": int(d["survey"]) if d.get("survey") else None}
        content: dict[str, Any] = {"channel": d["channel"]}
        if (d.get("text") or "").strip():
            content["text"] = d["text"]
        translations = {lang: d[f"text_{lang}"] for lang in self.languages if (d.get(f"text_{lang}") or "").strip()}
        if translations:
            content["translations"] = translations
        if d["channel"] == "email":
            content["subject"] = d.get("subject") or ""
        if d["channel"] == "whatsapp":
            wa: dict[str, Any] = {}
            if (d.get("whatsapp_template") or "").strip():
                wa["template"] = d["whatsapp_template"].strip()
            variables = [v.strip() for v in (d.get("whatsapp_variables") or "").split(",") if v.strip()]
            if variables:
                wa["variables"] = variables
            if d.get("fallback_sms"):
                wa["fallback_sms"] = True
            if wa:
                content["whatsapp"] = wa
        return content

    def _days(self, kind: str, s: dict[str, Any]) -> None:
        """A weekly schedule's weekdays, a monthly one's days of the month, into the schedule `s`."""
        d = self.cleaned_data
        if kind == "weekly":
            s["weekdays"] = list(d.get("weekdays") or [])
        if kind == "monthly":
            s["month_days"] = [int(x) if x.isdigit() else x for x in _split(d.get("month_days") or "")]


def _owner_initial(owner: Broadcast | ConditionalAlert) -> dict[str, Any]:
    """The shared fields' initial values for a stored broadcast or alert."""
    content, schedule = owner.content or {}, owner.schedule or {}
    subject = content.get("subject", "")
    names = [w for w, _ in WEEKDAYS]
    wa = content.get("whatsapp") or {}
    variables = wa.get("variables") or []
    variables = [variables[k] for k in sorted(variables)] if isinstance(variables, dict) else variables
    return {
        "whatsapp_template": wa.get("template", ""),
        "whatsapp_variables": ", ".join(str(v) for v in variables),
        "fallback_sms": bool(wa.get("fallback_sms")),
        "name": owner.name,
        "channel": content.get("channel", "sms"),
        "survey": str(content.get("survey_id") or ""),
        "subject": subject.get("*", "") if isinstance(subject, dict) else subject,
        "text": content.get("text") or "",
        "default_language": owner.default_language,
        **{f"text_{lang}": text for lang, text in (content.get("translations") or {}).items()},
        "time": ", ".join(schedule.get("times") or []),
        "weekdays": [names[d] for d in schedule.get("weekdays") or [] if isinstance(d, int) and 0 <= d <= 6],
        "month_days": ", ".join("last" if d == -1 else str(d) for d in schedule.get("month_days") or []),
        "interval": schedule.get("interval"),
        "time_zone": schedule.get("time_zone") or schedules.RECIPIENT_ZONE,
        "count": schedule.get("count"),
    }


# --------------------------------------------------------------------------------------------------
# The broadcast form
# --------------------------------------------------------------------------------------------------


class BroadcastForm(_OwnerForm):
    """A broadcast as a person fills it in. `fixed` names the parts (recipients, schedule, content) of a
    stored broadcast that the form cannot show (owners of cases, a random time window, translated email
    subjects): they are shown as they are and kept (left out of the body)."""

    name = forms.CharField(max_length=max_length(specs.BroadcastIn, "name"))
    text = forms.CharField(
        required=False,
        max_length=max_length(contents.ContentIn, "text"),
        label="Text",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Hello {case.name}"}),
        help_text="For every recipient without a translation in their language. "
        "May use {case.name}, {case.<property>}, {case.parent.<property>}, {recipient.name}.",
    )
    case_type = forms.ChoiceField(required=False, label="Cases of type")
    filters = forms.CharField(
        required=False,
        max_length=5000,
        label="whose properties are",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "district=north"}),
        help_text="one property=value per line (exact values); empty: every open case of the type",
    )
    group = forms.ChoiceField(
        required=False,
        label="Group",
        help_text="its open cases; a repeating broadcast reads the group again at each send",
    )
    case_ids = forms.CharField(
        required=False,
        max_length=100_000,
        label="Cases by id",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="case ids, separated by commas or lines",
    )
    all_workers = forms.BooleanField(required=False, label="All active mobile workers")
    workers = forms.CharField(
        required=False, max_length=10_000, label="Mobile workers", help_text="usernames (or ids), separated by commas"
    )
    schedule_type = forms.ChoiceField(choices=SCHEDULE_TYPES, initial="now", widget=forms.RadioSelect, label="When")
    date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="once: the day; repeating: the first day (default today)",
    )
    time = forms.CharField(
        required=False, max_length=200, help_text="HH:MM (24-hour); several times of day separated by commas"
    )
    month_days = forms.CharField(
        required=False, max_length=200, label="Monthly on days", help_text="1 to 31, or last; separated by commas"
    )
    interval = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=schedules.MAX_INTERVAL,
        label="Every",
        help_text="days / weeks / months (default 1)",
    )
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until (last day)")

    def __init__(self, *args: Any, project: Project, fixed: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, project=project, **kwargs)
        self.fixed = fixed or {}
        _choices(self, "case_type", [("", "—"), *((t, t) for t in case_queries.case_types(project))])
        _choices(self, "group", group_choices(project))

    def clean_filters(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for i, line in enumerate((self.cleaned_data.get("filters") or "").splitlines(), 1):
            if not line.strip():
                continue
            key, eq, value = line.partition("=")
            if not eq or not key.strip():
                raise forms.ValidationError(f"Line {i}: write property=value.")
            out[key.strip()] = value.strip()
        return out

    def body(self) -> dict[str, Any]:
        """The API's body for these fields (call after is_valid()); the fixed parts are left out, so an edit
        that keeps some is a `BroadcastPatch`. Raises InputError when the declaration refuses it."""
        d = self.cleaned_data
        out: dict[str, Any] = {"name": d["name"], "default_language": d.get("default_language") or ""}
        if "content" not in self.fixed:
            out["content"] = self._content()
        if "recipients" not in self.fixed:
            who: dict[str, Any] = {}
            if d.get("case_type"):
                who["case_type"] = d["case_type"]
                if d.get("filters"):
                    who["filters"] = d["filters"]
            if d.get("group"):
                who["group"] = int(d["group"])
            if d.get("case_ids"):
                who["case_ids"] = _split(d["case_ids"])
            if d.get("all_workers"):
                who["mobile_workers"] = "all"
            elif d.get("workers"):
                who["mobile_workers"] = [int(w) if w.isdigit() else w for w in _split(d["workers"])]
            out["recipients"] = who
        if "schedule" not in self.fixed:
            out["schedule"] = self._schedule()
        return fields.validated(specs.BroadcastPatch if self.fixed else specs.BroadcastIn, out)

    def _schedule(self) -> dict[str, Any]:
        d = self.cleaned_data
        kind = d["schedule_type"]
        if kind == "now":
            return {"type": "now"}
        s: dict[str, Any] = {"type": kind, "time_zone": d.get("time_zone") or schedules.RECIPIENT_ZONE}
        day: date | None = d.get("date")
        if kind == "once":
            if day is not None:
                s["date"] = day.isoformat()
        elif day is not None:
            s["start_date"] = day.isoformat()
        times = _split(d.get("time") or "")
        if len(times) == 1:
            s["time"] = times[0]
        elif times:
            s["times"] = times
        self._days(kind, s)
        if kind != "once":
            for key in ("interval", "count"):
                if d.get(key) is not None:
                    s[key] = d[key]
            if d.get("until") is not None:
                s["until"] = d["until"].isoformat()
        return s


def group_choices(project: Project) -> list[tuple[str, str]]:
    """The project's groups for a select: its name and kind."""
    return [("", "—"), *((str(g.pk), f"{g.name} ({g.kind})") for g in group_queries.groups(project))]


def broadcast_initial(b: Broadcast) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's initial values for a stored broadcast, and the parts it cannot show (kept as stored)."""
    content, who, schedule = b.content or {}, b.recipients or {}, b.schedule or {}
    fixed: dict[str, Any] = {}
    subject = content.get("subject", "")
    if isinstance(subject, dict) and set(subject) - {"*"}:
        fixed["content"] = content
    if who.get("owners_of"):
        fixed["recipients"] = who
    if schedule.get("random_window") or schedule.get("time_property"):
        fixed["schedule"] = schedule
    workers = who.get("mobile_workers")
    initial = _owner_initial(b)
    initial.update(
        case_type=who.get("case_type", ""),
        filters="\n".join(f"{k}={v}" for k, v in (who.get("filters") or {}).items()),
        case_ids="\n".join(who.get("case_ids") or []),
        group=str(who["group"]) if who.get("group") else "",
        all_workers=workers == "all",
        workers=", ".join(str(w) for w in workers) if isinstance(workers, list) else "",
        schedule_type=schedule.get("type", "now"),
        date=schedule.get("date") or schedule.get("start_date"),
        until=schedule.get("until"),
    )
    return initial, fixed


# --------------------------------------------------------------------------------------------------
# The conditional alert form
# --------------------------------------------------------------------------------------------------


class AlertForm(_OwnerForm):
    """A conditional alert as a person fills it in: case type and criteria rows, the schedule (offsets, or
    timed at times / in a window / at a property's time), its start (match or a date property ± days), the
    recipients, the reset property and the content. `body()` is the API's body; the services validate it."""

    name = forms.CharField(max_length=max_length(specs.AlertIn, "name"))
    case_type = forms.CharField(max_length=max_length(specs.AlertIn, "case_type"), label="Cases of type")
    schedule_type = forms.ChoiceField(
        choices=ALERT_SCHEDULE_TYPES, initial="offsets", widget=forms.RadioSelect, label="Schedule"
    )
    unit = forms.ChoiceField(
        choices=UNITS, initial="hours", required=False, widget=forms.Select(attrs={"aria-label": "Unit of the offsets"})
    )
    offsets = forms.CharField(
        required=False, max_length=2000, help_text="offsets: numbers separated by commas, e.g. 0, 2, 24"
    )
    repeat_every = forms.IntegerField(required=False, min_value=1, label="Repeat every", help_text="units (offsets)")
    timing = forms.ChoiceField(
        choices=TIMING,
        initial="time",
        required=False,
        label="Timed",
        widget=forms.Select(attrs={"aria-label": "Timed"}),
    )
    time = forms.CharField(required=False, max_length=200, help_text="HH:MM; several separated by commas")
    window_start = forms.CharField(
        required=False, max_length=max_length(schedules.WindowIn, "start"), label="Window from"
    )
    window_end = forms.CharField(required=False, max_length=max_length(schedules.WindowIn, "end"), label="to")
    time_property = forms.CharField(
        required=False, max_length=max_length(schedules.AlertScheduleIn, "time_property"), label="Time property"
    )
    month_days = forms.CharField(required=False, max_length=200, label="Monthly on days", help_text="1 to 31, or last")
    interval = forms.IntegerField(required=False, min_value=1, max_value=schedules.MAX_INTERVAL, label="Every")
    start_from = forms.ChoiceField(
        choices=[("matched", "when the case matches"), ("property", "from a date property")],
        initial="matched",
        widget=forms.RadioSelect,
        label="Start",
    )
    start_property = forms.CharField(
        required=False, max_length=max_length(schedules.StartIn, "property"), label="Date property"
    )
    start_days = forms.IntegerField(
        required=False, min_value=-schedules.MAX_START_DAYS, max_value=schedules.MAX_START_DAYS, label="± days"
    )
    start_time = forms.CharField(required=False, max_length=max_length(schedules.StartIn, "time"), label="at (offsets)")
    recipients = forms.MultipleChoiceField(
        choices=[(r, _ROLE_LABELS[r]) for r in recipients.ROLES],
        initial=["case"],
        widget=forms.CheckboxSelectMultiple,
    )
    group = forms.ChoiceField(
        required=False,
        label="Only members of the group",
        help_text="the alert starts only for the group's members among the matching cases",
    )
    reset_property = forms.CharField(
        required=False,
        max_length=max_length(specs.AlertIn, "reset_property"),
        help_text="when this property's value changes, the schedule restarts",
    )
    text = forms.CharField(
        required=False,
        max_length=max_length(contents.ContentIn, "text"),
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Text",
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, project=project, **kwargs)
        _choices(self, "group", group_choices(project))
        for i in range(CRITERIA_ROWS):
            # the table's column heads label the row visually; aria-label names each field for screen readers
            n = i + 1
            self.fields[f"crit_property_{i}"] = forms.CharField(
                required=False,
                max_length=max_length(rules.CriterionIn, "property"),
                label="Property",
                widget=forms.TextInput(attrs={"aria-label": f"Criterion {n}: property"}),
            )
            self.fields[f"crit_operator_{i}"] = forms.ChoiceField(
                required=False,
                choices=OPERATORS,
                label="",
                widget=forms.Select(attrs={"aria-label": f"Criterion {n}: operator"}),
            )
            self.fields[f"crit_value_{i}"] = forms.CharField(
                required=False,
                max_length=1000,
                label="Value",
                widget=forms.TextInput(attrs={"aria-label": f"Criterion {n}: value"}),
            )

    def criteria_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (self[f"crit_property_{i}"], self[f"crit_operator_{i}"], self[f"crit_value_{i}"])
            for i in range(CRITERIA_ROWS)
        ]

    def _criteria(self) -> list[dict[str, Any]]:
        d = self.cleaned_data
        out: list[dict[str, Any]] = []
        for i in range(CRITERIA_ROWS):
            prop, op = (d.get(f"crit_property_{i}") or "").strip(), d.get(f"crit_operator_{i}") or ""
            value = d.get(f"crit_value_{i}") or ""
            if not prop and not op:
                continue
            c: dict[str, Any] = {"property": prop, "operator": op or "equal"}
            if op not in ("has_value", "has_no_value"):
                c["value"] = int(value) if op in ("days_before", "days_after") and _WHOLE.fullmatch(value) else value
            out.append(c)
        return out

    def _schedule(self) -> dict[str, Any]:
        d = self.cleaned_data
        kind = d["schedule_type"]
        s: dict[str, Any] = {"type": kind, "time_zone": d.get("time_zone") or schedules.RECIPIENT_ZONE}
        if kind == "offsets":
            s["unit"] = d.get("unit") or "hours"
            s["offsets"] = [int(x) if _WHOLE.fullmatch(x) else x for x in _split(d.get("offsets") or "")]
            if d.get("repeat_every") is not None:
                s["repeat_every"] = d["repeat_every"]
        else:
            timing = d.get("timing") or "time"
            if timing == "window":
                s["random_window"] = {"start": d.get("window_start") or "", "end": d.get("window_end") or ""}
            elif timing == "property":
                s["time_property"] = d.get("time_property") or ""
            else:
                times = _split(d.get("time") or "")
                s["times" if len(times) != 1 else "time"] = times if len(times) != 1 else times[0]
            self._days(kind, s)
            if d.get("interval") is not None:
                s["interval"] = d["interval"]
        if d.get("count") is not None:
            s["count"] = d["count"]
        if d.get("start_from") == "property":
            start: dict[str, Any] = {
                "from": "property",
                "property": d.get("start_property") or "",
                "days": d.get("start_days") or 0,
            }
            if d.get("start_time"):
                start["time"] = d["start_time"]
            s["start"] = start
        else:
            s["start"] = {"from": "matched"}
        return s

    def body(self) -> dict[str, Any]:
        """The API's body for these fields (call after is_valid()); raises InputError when the declaration
        (`specs.AlertIn`) refuses it."""
        d = self.cleaned_data
        return fields.validated(
            specs.AlertIn,
            {
                "name": d["name"],
                "case_type": d["case_type"],
                "criteria": self._criteria(),
                "schedule": self._schedule(),
                "recipients": (
                    {"roles": list(d["recipients"]), "group": int(d["group"])}
                    if d.get("group")
                    else list(d["recipients"])
                ),
                "reset_property": d.get("reset_property") or "",
                "content": self._content(),
                "default_language": d.get("default_language") or "",
            },
        )


def alert_initial(a: ConditionalAlert) -> dict[str, Any]:
    """The form's initial values for a stored alert."""
    schedule = a.schedule or {}
    initial = _owner_initial(a)
    for i, c in enumerate((a.criteria or [])[:CRITERIA_ROWS]):
        initial.update(
            {
                f"crit_property_{i}": c.get("property", ""),
                f"crit_operator_{i}": c.get("operator", ""),
                f"crit_value_{i}": "" if c.get("value") is None else str(c["value"]),
            }
        )
    window = schedule.get("random_window") or {}
    start = schedule.get("start") or {}
    initial.update(
        case_type=a.case_type,
        recipients=list(a.recipients or []),
        group=str(a.group_id) if a.group_id else "",
        reset_property=a.reset_property,
        schedule_type=schedule.get("type", "offsets"),
        unit=schedule.get("unit", "hours"),
        offsets=", ".join(str(o) for o in schedule.get("offsets") or []),
        repeat_every=schedule.get("repeat_every"),
        timing="window" if window else "property" if schedule.get("time_property") else "time",
        window_start=window.get("start", ""),
        window_end=window.get("end", ""),
        time_property=schedule.get("time_property", ""),
        start_from=start.get("from", "matched"),
        start_property=start.get("property", ""),
        start_days=start.get("days"),
        start_time=start.get("time", ""),
    )
    return initial
