"""Broadcasts and conditional alerts: lists, a broadcast's form (create, edit) with its pre-flight
shown before saving, an alert's form (create, edit), each one's page with pause / resume / cancel and its
sends with their failures.

The form translates its fields into the API's body (`BroadcastForm.body`) and hands it to the scheduling
services, which validate it (`specs`): a refused body shows the service's code and sentence on the form,
the same words the API answers with. The pre-flight is `casemsg.scheduling.preflight` on the same body,
requested by htmx (`broadcast_preflight`) or, without JavaScript, by the form's Preview button."""

from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any, TypeGuard
from zoneinfo import available_timezones

from django import forms
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from casemsg.cases import queries as case_queries
from casemsg.core import timezones
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.scheduling import preflight, queries, services, specs
from casemsg.scheduling.models import Broadcast, ConditionalAlert
from casemsg.surveys.models import Survey
from casemsg.web.views.common import error_view, paginate, project_or_404, staff_required

PER_PAGE = 50
SENDS_PER_PAGE = 50
WEEKDAYS = [(d.lower(), d) for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
SCHEDULE_TYPES = [
    ("now", "Now"),
    ("once", "Once, at a date and time"),
    ("daily", "Daily"),
    ("weekly", "Weekly"),
    ("monthly", "Monthly"),
]


@functools.cache
def _zones() -> list[tuple[str, str]]:
    names = sorted(z for z in available_timezones() if timezones.is_valid(z))
    return [(specs.RECIPIENT_ZONE, "Each recipient's own time zone"), *((z, z) for z in names)]


def _split(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", value or "") if part.strip()]


# --------------------------------------------------------------------------------------------------
# The broadcast form
# --------------------------------------------------------------------------------------------------


def _survey_choices(form: forms.Form, project: Project) -> None:
    field = form.fields["survey"]
    assert isinstance(field, forms.ChoiceField)
    found = Survey.objects.filter(project=project, builtin="", current_version__isnull=False).order_by("name")
    field.choices = [("", "—"), *((str(pk), name) for pk, name in found.values_list("pk", "name"))]


def content_body(d: dict[str, Any], languages: list[str]) -> dict[str, Any]:
    """The API's `content` from the content fields of the broadcast and alert forms."""
    if d["channel"] == "survey":
        return {"channel": "survey", "survey_id": int(d["survey"]) if d.get("survey") else None}
    content: dict[str, Any] = {"channel": d["channel"]}
    if (d.get("text") or "").strip():
        content["text"] = d["text"]
    translations = {lang: d[f"text_{lang}"] for lang in languages if (d.get(f"text_{lang}") or "").strip()}
    if translations:
        content["translations"] = translations
    if d["channel"] == "email":
        content["subject"] = d.get("subject") or ""
    return content


class BroadcastForm(forms.Form):
    """A broadcast as a person fills it in. `fixed` names the parts (recipients, schedule, content) of a
    stored broadcast that the form cannot show (owners of cases, a random time window, translated email
    subjects): they are shown as they are and kept (left out of the body)."""

    name = forms.CharField(max_length=200)
    channel = forms.ChoiceField(choices=[("sms", "SMS"), ("email", "Email"), ("survey", "SMS survey")], initial="sms")
    survey = forms.ChoiceField(required=False, label="Survey", help_text="survey only: asked of each case")
    subject = forms.CharField(required=False, max_length=255, help_text="email only")
    text = forms.CharField(
        required=False,
        max_length=specs.MAX_TEXT,
        label="Text",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Hello {case.name}"}),
        help_text="For every recipient without a translation in their language. "
        "May use {case.name}, {case.<property>}, {case.parent.<property>}, {recipient.name}.",
    )
    default_language = forms.ChoiceField(required=False, label="Default language")
    case_type = forms.ChoiceField(required=False, label="Cases of type")
    filters = forms.CharField(
        required=False,
        max_length=5000,
        label="whose properties are",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "district=north"}),
        help_text="one property=value per line (exact values); empty: every open case of the type",
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
    weekdays = forms.MultipleChoiceField(
        required=False, choices=WEEKDAYS, widget=forms.CheckboxSelectMultiple, label="Weekly on"
    )
    month_days = forms.CharField(
        required=False, max_length=200, label="Monthly on days", help_text="1 to 31, or last; separated by commas"
    )
    interval = forms.IntegerField(
        required=False, min_value=1, max_value=1000, label="Every", help_text="days / weeks / months (default 1)"
    )
    time_zone = forms.ChoiceField(required=False, label="Time zone")
    count = forms.IntegerField(required=False, min_value=1, max_value=specs.MAX_EVENTS, label="Times in all")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until (last day)")

    def __init__(self, *args: Any, project: Project, fixed: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.fixed = fixed or {}
        self.languages = list(project.sms_languages or [])
        _survey_choices(self, project)
        for lang in self.languages:
            self.fields[f"text_{lang}"] = forms.CharField(
                required=False,
                max_length=specs.MAX_TEXT,
                label=f"Text in {lang}",
                widget=forms.Textarea(attrs={"rows": 2}),
            )
        default = project.default_language
        lang_field = self.fields["default_language"]
        assert isinstance(lang_field, forms.ChoiceField)
        lang_field.choices = [("", f"The project's ({default})"), *((x, x) for x in self.languages)]
        type_field = self.fields["case_type"]
        assert isinstance(type_field, forms.ChoiceField)
        type_field.choices = [("", "—"), *((t, t) for t in case_queries.case_types(project))]
        zone_field = self.fields["time_zone"]
        assert isinstance(zone_field, forms.ChoiceField)
        zone_field.choices = _zones()
        zone_field.initial = specs.RECIPIENT_ZONE

    def translation_fields(self) -> list[forms.BoundField]:
        return [self[f"text_{lang}"] for lang in self.languages]

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
        """The API's body for these fields (call after is_valid()); the fixed parts are left out."""
        d = self.cleaned_data
        out: dict[str, Any] = {"name": d["name"], "default_language": d.get("default_language") or ""}
        if "content" not in self.fixed:
            out["content"] = content_body(d, self.languages)
        if "recipients" not in self.fixed:
            recipients: dict[str, Any] = {}
            if d.get("case_type"):
                recipients["case_type"] = d["case_type"]
                if d.get("filters"):
                    recipients["filters"] = d["filters"]
            if d.get("case_ids"):
                recipients["case_ids"] = _split(d["case_ids"])
            if d.get("all_workers"):
                recipients["mobile_workers"] = "all"
            elif d.get("workers"):
                recipients["mobile_workers"] = [int(w) if w.isdigit() else w for w in _split(d["workers"])]
            out["recipients"] = recipients
        if "schedule" not in self.fixed:
            out["schedule"] = self._schedule()
        return out

    def _schedule(self) -> dict[str, Any]:
        d = self.cleaned_data
        kind = d["schedule_type"]
        if kind == "now":
            return {"type": "now"}
        s: dict[str, Any] = {"type": kind, "time_zone": d.get("time_zone") or specs.RECIPIENT_ZONE}
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
        if kind == "weekly":
            s["weekdays"] = list(d.get("weekdays") or [])
        if kind == "monthly":
            s["month_days"] = [int(x) if x.isdigit() else x for x in _split(d.get("month_days") or "")]
        if kind != "once":
            for key in ("interval", "count"):
                if d.get(key) is not None:
                    s[key] = d[key]
            if d.get("until") is not None:
                s["until"] = d["until"].isoformat()
        return s


def _initial(b: Broadcast) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's initial values for a stored broadcast, and the parts it cannot show (kept as stored)."""
    content, recipients, schedule = b.content or {}, b.recipients or {}, b.schedule or {}
    fixed: dict[str, Any] = {}
    subject = content.get("subject", "")
    if isinstance(subject, dict):
        if set(subject) - {"*"}:
            fixed["content"] = content
        subject = subject.get("*", "")
    initial: dict[str, Any] = {
        "name": b.name,
        "channel": content.get("channel", "sms"),
        "survey": str(content.get("survey_id") or ""),
        "subject": subject,
        "text": content.get("text") or "",
        "default_language": b.default_language,
        **{f"text_{lang}": text for lang, text in (content.get("translations") or {}).items()},
    }
    if recipients.get("owners_of"):
        fixed["recipients"] = recipients
    workers = recipients.get("mobile_workers")
    initial.update(
        case_type=recipients.get("case_type", ""),
        filters="\n".join(f"{k}={v}" for k, v in (recipients.get("filters") or {}).items()),
        case_ids="\n".join(recipients.get("case_ids") or []),
        all_workers=workers == "all",
        workers=", ".join(str(w) for w in workers) if isinstance(workers, list) else "",
    )
    if schedule.get("random_window") or schedule.get("time_property"):
        fixed["schedule"] = schedule
    names = [w for w, _ in WEEKDAYS]
    initial.update(
        schedule_type=schedule.get("type", "now"),
        date=schedule.get("date") or schedule.get("start_date"),
        time=", ".join(schedule.get("times") or []),
        weekdays=[names[d] for d in schedule.get("weekdays") or [] if isinstance(d, int) and 0 <= d <= 6],
        month_days=", ".join("last" if d == -1 else str(d) for d in schedule.get("month_days") or []),
        interval=schedule.get("interval"),
        time_zone=schedule.get("time_zone") or specs.RECIPIENT_ZONE,
        count=schedule.get("count"),
        until=schedule.get("until"),
    )
    return initial, fixed


def _refused(form: BroadcastForm, e: InputError) -> None:
    form.add_error(None, f"{e.code}: {e.message}")


def _preflight_context(form: BroadcastForm) -> dict[str, Any]:
    """The pre-flight of the form's body, or why there is none (the form's errors, the service's refusal)."""
    if not form.is_valid():
        return {"preflight": None, "form": form}
    try:
        result = preflight.preflight(form.project, form.body())
    except InputError as e:
        return {"preflight": None, "form": form, "refused": error_view(e.code, detail=e.message)}
    blocked = [(error_view(code), n) for code, n in result.blocked.items()]
    return {"preflight": result, "blocked": blocked, "form": form}


def _form_page(request: HttpRequest, project: Project, b: Broadcast | None) -> HttpResponse:
    initial, fixed = _initial(b) if b is not None else ({}, {})
    form = BroadcastForm(request.POST or None, project=project, fixed=fixed, initial=initial)
    context: dict[str, Any] = {"project": project, "broadcast": b, "form": form, "fixed": fixed}
    if request.method == "POST":
        if request.POST.get("action") == "preview":
            context.update(_preflight_context(form), show_preflight=True)
        elif form.is_valid():
            try:
                if b is None:
                    b = services.create_broadcast(project, form.body())
                    flash.success(request, f"Broadcast {b.pk} “{b.name}” created.")
                else:
                    b = services.update_broadcast(b, form.body())
                    flash.success(request, f"Broadcast {b.pk} saved.")
            except InputError as e:
                _refused(form, e)
            else:
                return redirect(reverse("web:broadcast", args=[project.slug, b.pk]))
    return render(request, "web/broadcast_form.html", context)


@staff_required
def broadcast_new(request: HttpRequest, slug: str) -> HttpResponse:
    return _form_page(request, project_or_404(slug), None)


@staff_required
def broadcast_edit(request: HttpRequest, slug: str, broadcast_id: int) -> HttpResponse:
    project = project_or_404(slug)
    b = get_object_or_404(Broadcast, project=project, pk=broadcast_id)
    if b.status in (Broadcast.CANCELLED, Broadcast.DONE):
        flash.warning(request, f"Broadcast {b.pk} is {b.status}: it can no longer change.")
        return redirect(reverse("web:broadcast", args=[project.slug, b.pk]))
    return _form_page(request, project, b)


@staff_required
@require_POST
def broadcast_preflight(request: HttpRequest, slug: str) -> HttpResponse:
    """The pre-flight panel of the form (htmx swaps it in): nothing is saved."""
    project = project_or_404(slug)
    form = BroadcastForm(request.POST, project=project)
    return render(request, "web/broadcast_preflight.html", {"project": project, **_preflight_context(form)})


# --------------------------------------------------------------------------------------------------
# The conditional alert form
# --------------------------------------------------------------------------------------------------

CRITERIA_ROWS = 5
OPERATORS = [
    ("", "—"),
    ("equal", "is"),
    ("not_equal", "is not"),
    ("has_value", "has a value"),
    ("has_no_value", "has no value"),
    ("regex", "matches the regex"),
    ("days_before", "days before (date)"),
    ("days_after", "days after (date)"),
]
ALERT_SCHEDULE_TYPES = [("offsets", "At offsets"), ("daily", "Daily"), ("weekly", "Weekly"), ("monthly", "Monthly")]
TIMING = [
    ("time", "at times of day"),
    ("window", "at a random time in a window"),
    ("property", "at a case property's time"),
]
UNITS = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
_WHOLE = re.compile(r"-?\d+")


class AlertForm(forms.Form):
    """A conditional alert as a person fills it in: case type and criteria rows, the schedule (offsets, or
    timed at times / in a window / at a property's time), its start (match or a date property ± days), the
    recipients, the reset property and the content. `body()` is the API's body; the services validate it."""

    name = forms.CharField(max_length=200)
    case_type = forms.CharField(max_length=255, label="Cases of type")
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
    window_start = forms.CharField(required=False, max_length=8, label="Window from")
    window_end = forms.CharField(required=False, max_length=8, label="to")
    time_property = forms.CharField(required=False, max_length=255, label="Time property")
    weekdays = forms.MultipleChoiceField(
        required=False, choices=WEEKDAYS, widget=forms.CheckboxSelectMultiple, label="Weekly on"
    )
    month_days = forms.CharField(required=False, max_length=200, label="Monthly on days", help_text="1 to 31, or last")
    interval = forms.IntegerField(required=False, min_value=1, max_value=1000, label="Every")
    time_zone = forms.ChoiceField(required=False, label="Time zone")
    count = forms.IntegerField(required=False, min_value=1, max_value=specs.MAX_EVENTS, label="Times in all")
    start_from = forms.ChoiceField(
        choices=[("matched", "when the case matches"), ("property", "from a date property")],
        initial="matched",
        widget=forms.RadioSelect,
        label="Start",
    )
    start_property = forms.CharField(required=False, max_length=255, label="Date property")
    start_days = forms.IntegerField(required=False, min_value=-3650, max_value=3650, label="± days")
    start_time = forms.CharField(required=False, max_length=8, label="at (offsets)")
    recipients = forms.MultipleChoiceField(
        choices=[("case", "the case"), ("owner", "its owner"), ("parent", "its parent case")],
        initial=["case"],
        widget=forms.CheckboxSelectMultiple,
    )
    reset_property = forms.CharField(
        required=False, max_length=255, help_text="when this property's value changes, the schedule restarts"
    )
    channel = forms.ChoiceField(choices=[("sms", "SMS"), ("email", "Email"), ("survey", "SMS survey")], initial="sms")
    survey = forms.ChoiceField(required=False, label="Survey", help_text="survey only: asked of each case")
    subject = forms.CharField(required=False, max_length=255, help_text="email only")
    text = forms.CharField(
        required=False, max_length=specs.MAX_TEXT, widget=forms.Textarea(attrs={"rows": 3}), label="Text"
    )
    default_language = forms.ChoiceField(required=False, label="Default language")

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        self.languages = list(project.sms_languages or [])
        _survey_choices(self, project)
        for lang in self.languages:
            self.fields[f"text_{lang}"] = forms.CharField(
                required=False, max_length=specs.MAX_TEXT, label=f"Text in {lang}", widget=forms.Textarea({"rows": 2})
            )
        for i in range(CRITERIA_ROWS):
            # the table's column heads label the row visually; aria-label names each field for screen readers
            n = i + 1
            self.fields[f"crit_property_{i}"] = forms.CharField(
                required=False,
                max_length=255,
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
        lang_field = self.fields["default_language"]
        assert isinstance(lang_field, forms.ChoiceField)
        lang_field.choices = [("", f"The project's ({project.default_language})"), *((x, x) for x in self.languages)]
        zone_field = self.fields["time_zone"]
        assert isinstance(zone_field, forms.ChoiceField)
        zone_field.choices = _zones()
        zone_field.initial = specs.RECIPIENT_ZONE

    def translation_fields(self) -> list[forms.BoundField]:
        return [self[f"text_{lang}"] for lang in self.languages]

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
        s: dict[str, Any] = {"type": kind, "time_zone": d.get("time_zone") or specs.RECIPIENT_ZONE}
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
            if kind == "weekly":
                s["weekdays"] = list(d.get("weekdays") or [])
            if kind == "monthly":
                s["month_days"] = [int(x) if x.isdigit() else x for x in _split(d.get("month_days") or "")]
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
        """The API's body for these fields (call after is_valid())."""
        d = self.cleaned_data
        content = content_body(d, self.languages)
        return {
            "name": d["name"],
            "case_type": d["case_type"],
            "criteria": self._criteria(),
            "schedule": self._schedule(),
            "recipients": list(d["recipients"]),
            "reset_property": d.get("reset_property") or "",
            "content": content,
            "default_language": d.get("default_language") or "",
        }


def _alert_initial(a: ConditionalAlert) -> dict[str, Any]:
    """The form's initial values for a stored alert."""
    content, schedule = a.content or {}, a.schedule or {}
    subject = content.get("subject", "")
    initial: dict[str, Any] = {
        "name": a.name,
        "case_type": a.case_type,
        "recipients": list(a.recipients or []),
        "reset_property": a.reset_property,
        "channel": content.get("channel", "sms"),
        "survey": str(content.get("survey_id") or ""),
        "subject": subject.get("*", "") if isinstance(subject, dict) else subject,
        "text": content.get("text") or "",
        "default_language": a.default_language,
        **{f"text_{lang}": text for lang, text in (content.get("translations") or {}).items()},
    }
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
    names = [w for w, _ in WEEKDAYS]
    initial.update(
        schedule_type=schedule.get("type", "offsets"),
        unit=schedule.get("unit", "hours"),
        offsets=", ".join(str(o) for o in schedule.get("offsets") or []),
        repeat_every=schedule.get("repeat_every"),
        timing="window" if window else "property" if schedule.get("time_property") else "time",
        time=", ".join(schedule.get("times") or []),
        window_start=window.get("start", ""),
        window_end=window.get("end", ""),
        time_property=schedule.get("time_property", ""),
        weekdays=[names[d] for d in schedule.get("weekdays") or [] if isinstance(d, int) and 0 <= d <= 6],
        month_days=", ".join("last" if d == -1 else str(d) for d in schedule.get("month_days") or []),
        interval=schedule.get("interval"),
        time_zone=schedule.get("time_zone") or specs.RECIPIENT_ZONE,
        count=schedule.get("count"),
        start_from=start.get("from", "matched"),
        start_property=start.get("property", ""),
        start_days=start.get("days"),
        start_time=start.get("time", ""),
    )
    return initial


def _alert_form_page(request: HttpRequest, project: Project, a: ConditionalAlert | None) -> HttpResponse:
    form = AlertForm(request.POST or None, project=project, initial=_alert_initial(a) if a is not None else None)
    if request.method == "POST" and form.is_valid():
        try:
            if a is None:
                a = services.create_alert(project, form.body())
                flash.success(request, f"Alert {a.pk} “{a.name}” created; its run over the cases is under way.")
            else:
                a = services.update_alert(a, form.body())
                flash.success(request, f"Alert {a.pk} saved.")
        except InputError as e:
            form.add_error(None, f"{e.code}: {e.message}")
        else:
            return redirect(reverse("web:alert", args=[project.slug, a.pk]))
    return render(request, "web/alert_form.html", {"project": project, "alert": a, "form": form})


@staff_required
def alert_new(request: HttpRequest, slug: str) -> HttpResponse:
    return _alert_form_page(request, project_or_404(slug), None)


@staff_required
def alert_edit(request: HttpRequest, slug: str, alert_id: int) -> HttpResponse:
    project = project_or_404(slug)
    return _alert_form_page(request, project, get_object_or_404(ConditionalAlert, project=project, pk=alert_id))


# --------------------------------------------------------------------------------------------------
# Lists and detail pages
# --------------------------------------------------------------------------------------------------


@staff_required
def broadcast_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    status = request.GET.get("status") or None
    if status not in (None, *queries.BROADCAST_STATUSES):
        status = None
    page = paginate(request, queries.broadcasts(project, status), PER_PAGE)
    return render(
        request,
        "web/broadcasts.html",
        {
            "project": project,
            "page": page,
            "rows": queries.summaries(page.object_list),
            "status": status or "",
            "statuses": queries.BROADCAST_STATUSES,
            "query": f"status={status}" if status else "",
        },
    )


SEND_STATUSES = ("queued", "sending", "sent", "delivered", "failed")


def _sends_context(request: HttpRequest, project: Project, owner: Broadcast | ConditionalAlert) -> dict[str, Any]:
    """What broadcast_sends.html shows: the failures by reason, one page of the sends (`?status=` filters)."""
    status = request.GET.get("status") or None
    if status not in SEND_STATUSES:
        status = None
    page = paginate(request, queries.sends(project, owner, status), SENDS_PER_PAGE)
    return {
        "summary": queries.summary(owner),
        "failures": [(error_view(code), n) for code, n in queries.failures(owner)],
        "page": page,
        "send_status": status or "",
        "send_statuses": SEND_STATUSES,
        "sends_url": request.path,
        "query": f"status={status}" if status else "",
    }


@staff_required
def broadcast_detail(request: HttpRequest, slug: str, broadcast_id: int) -> HttpResponse:
    project = project_or_404(slug)
    b = get_object_or_404(Broadcast, project=project, pk=broadcast_id)
    if request.method == "POST":
        action = request.POST.get("action")
        change = {"pause": services.pause_broadcast, "resume": services.resume_broadcast}.get(action or "")
        if action == "cancel":
            change = services.cancel_broadcast
        if change is not None:
            try:
                change(b)
            except InputError as e:
                flash.error(request, f"{e.code}: {e.message}")
            else:
                flash.success(request, f"Broadcast {b.pk} is now {b.status}.")
        return redirect(reverse("web:broadcast", args=[project.slug, b.pk]))
    return render(
        request, "web/broadcast.html", {"project": project, "broadcast": b, **_sends_context(request, project, b)}
    )


def _is_alert(owner: Broadcast | ConditionalAlert) -> TypeGuard[ConditionalAlert]:
    return isinstance(owner, ConditionalAlert)


@staff_required
def alert_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    page = paginate(request, queries.alerts(project), PER_PAGE)
    rows = [(s, queries.progress(s.owner)) for s in queries.summaries(page.object_list) if _is_alert(s.owner)]
    return render(request, "web/alerts.html", {"project": project, "page": page, "rows": rows, "query": ""})


@staff_required
def alert_detail(request: HttpRequest, slug: str, alert_id: int) -> HttpResponse:
    project = project_or_404(slug)
    a = get_object_or_404(ConditionalAlert, project=project, pk=alert_id)
    if request.method == "POST":
        change = {"pause": services.pause_alert, "resume": services.resume_alert}.get(request.POST.get("action") or "")
        if change is not None:
            change(a)
            flash.success(request, f"Alert {a.pk} is now {a.status}.")
        return redirect(reverse("web:alert", args=[project.slug, a.pk]))
    return render(
        request,
        "web/alert.html",
        {"project": project, "alert": a, "run": queries.progress(a), **_sends_context(request, project, a)},
    )
