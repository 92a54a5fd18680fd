"""The filter forms of the cases, mobile workers and message-log pages (django-filter).

django-filter draws and validates the form; the filtering itself is the query modules' (one home for
list queries): `results()` turns the valid fields into a `CaseFilter` / `MessageFilter` and calls
`cases.queries` / `messaging.queries` (and `contacts.queries` for contact problems and consent). A field
that does not validate shows its error and is left out, so the other filters still apply."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.db.models import QuerySet

from casemsg.cases import queries as case_queries
from casemsg.cases.models import Case
from casemsg.contacts import queries as contact_queries
from casemsg.core import errors, timezones
from casemsg.groups import queries as group_queries
from casemsg.messaging import queries as message_queries
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.workers import queries as worker_queries
from casemsg.workers.models import MobileWorker


class _ProjectFilterSet(django_filters.FilterSet):
    def __init__(self, data: Any, project: Project, **kwargs: Any):
        self.project = project
        super().__init__(data or None, queryset=self.base_queryset(), **kwargs)

    def base_queryset(self) -> QuerySet:
        raise NotImplementedError

    def valid(self) -> dict[str, Any]:
        if not self.is_bound:
            return {}
        self.form.is_valid()
        return {k: v for k, v in self.form.cleaned_data.items() if v not in (None, "")}


class CaseFilterSet(_ProjectFilterSet):
    q = django_filters.CharFilter(label="Search", help_text="name, case id or phone number", max_length=100)
    type = django_filters.ChoiceFilter(label="Case type", empty_label="All types")
    state = django_filters.ChoiceFilter(
        label="State",
        choices=[("open", "Open"), ("closed", "Closed"), ("all", "Open and closed")],
        empty_label=None,
    )
    problem = django_filters.ChoiceFilter(
        label="Contact problem",
        empty_label="Any",
        choices=[(c, f"{c} — {errors.CATALOGUE[c].title}") for c in contact_queries.PROBLEMS],
    )
    consent = django_filters.ChoiceFilter(
        label="Consent / opt-out", empty_label="Any", choices=list(contact_queries.CONSENT_STATES.items())
    )
    group = django_filters.ChoiceFilter(label="Group", empty_label="Any group")

    def __init__(self, data: Any, project: Project, **kwargs: Any):
        super().__init__(data, project, **kwargs)
        types = case_queries.case_types(project)
        self.filters["type"].extra["choices"] = [(t, t) for t in types]
        self.form.fields["type"].choices = [("", "All types"), *((t, t) for t in types)]
        groups = [(str(g.pk), g.name) for g in group_queries.groups(project)]
        self.filters["group"].extra["choices"] = groups
        self.form.fields["group"].choices = [("", "Any group"), *groups]

    def base_queryset(self) -> QuerySet:
        return case_queries.cases(self.project, case_queries.CaseFilter())

    def results(self) -> QuerySet[Case]:
        d = self.valid()
        state = d.get("state") or "open"
        problem = d.get("problem")
        if problem == errors.CONTACT_IS_INACTIVE and "state" not in d:
            state = "all"  # a closed case's problem: looking for it means looking at closed cases
        group = group_queries.group(self.project, int(d["group"])) if d.get("group") else None
        qs = case_queries.cases(
            self.project,
            case_queries.CaseFilter(
                case_type=d.get("type"),
                closed=None if state == "all" else state == "closed",
                search=d.get("q"),
                order="recently_modified",
                among=group_queries.cases_q(group) if group is not None else None,
            ),
        )
        if problem:
            qs = contact_queries.with_problem(self.project, qs, problem)
        if d.get("consent"):
            qs = contact_queries.with_consent_state(qs, d["consent"])
        return qs


class WorkerFilterSet(_ProjectFilterSet):
    q = django_filters.CharFilter(label="Search", help_text="username, name or phone number", max_length=100)
    state = django_filters.ChoiceFilter(
        label="State", choices=[("active", "Active"), ("inactive", "Inactive"), ("all", "All")], empty_label=None
    )

    def base_queryset(self) -> QuerySet:
        return worker_queries.workers(self.project, worker_queries.WorkerFilter())

    def results(self) -> QuerySet[MobileWorker]:
        d = self.valid()
        state = d.get("state") or "active"
        return worker_queries.workers(
            self.project,
            worker_queries.WorkerFilter(
                active=None if state == "all" else state == "active", search=d.get("q"), order="username"
            ),
        )


def day_start(day: date, zone: str) -> datetime:
    """Midnight of `day` in the project's zone, as an aware datetime (compared with UTC times)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone if timezones.is_valid(zone) else "UTC"))


class MessageFilterSet(_ProjectFilterSet):
    q = django_filters.CharFilter(label="Search", help_text="phone number, address or text", max_length=100)
    since = django_filters.DateFilter(
        label="From", help_text="in the project's time zone", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = django_filters.DateFilter(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    status = django_filters.ChoiceFilter(empty_label="Any status", choices=[(s, s) for s in Message.STATUSES])
    direction = django_filters.ChoiceFilter(
        empty_label="Both directions", choices=[(Message.OUT, "Outbound"), (Message.IN, "Inbound")]
    )
    channel = django_filters.ChoiceFilter(empty_label="Any channel", choices=[("sms", "SMS"), ("email", "Email")])
    error = django_filters.ChoiceFilter(
        label="Error code",
        empty_label="Any error",
        choices=[(e.code, f"{e.code} — {e.title}") for e in errors.of_kind("problem")],
    )
    # Set by the "all messages" links of the case and worker pages.
    case = django_filters.CharFilter(max_length=64, widget=forms.HiddenInput)
    worker = django_filters.NumberFilter(min_value=1, widget=forms.HiddenInput)

    def base_queryset(self) -> QuerySet:
        return message_queries.messages(self.project, message_queries.MessageFilter())

    def results(self) -> QuerySet[Message]:
        d = self.valid()
        zone = self.project.default_time_zone
        since = day_start(d["since"], zone) if "since" in d else None
        until = day_start(d["until"] + timedelta(days=1), zone) if "until" in d else None
        return message_queries.messages(
            self.project,
            message_queries.MessageFilter(
                status=d.get("status"),
                direction=d.get("direction"),
                channel=d.get("channel"),
                error=d.get("error"),
                case_id=d.get("case"),
                worker_id=int(d["worker"]) if "worker" in d else None,
                since=since,
                until=until,
                search=d.get("q"),
            ),
        )
