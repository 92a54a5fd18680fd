"""SMS surveys: a survey and its versions (each a validated `casemsg-survey/1` definition), and the
sessions that ask them, one question at a time, over SMS.

A version is never changed once written: `PUT` adds a new one, and a session keeps the version it
started with, so a survey edited mid-conversation never changes the questions under someone's feet.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from casemsg.cases.models import Case
from casemsg.gateways.models import Gateway
from casemsg.messaging.models import MessagingEvent
from casemsg.projects.models import Project


class Survey(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="surveys")
    name = models.CharField(max_length=255)
    # The definition's settings.keyword, upper-case ("" = none): texting it starts the survey. A project
    # keyword (casemsg.inbound) with the same word wins.
    keyword = models.CharField(max_length=32, blank=True, default="")
    # The XLSForm form_id, if any: a re-import of the same form becomes a new version of this survey.
    form_id = models.CharField(max_length=255, blank=True, default="")
    # "" for the project's own surveys; "consent" for the opt-in request, the built-in survey casemsg keeps
    # per project (surveys.consent): never listed, edited or started as a survey of its own.
    builtin = models.CharField(max_length=16, blank=True, default="")
    current_version = models.ForeignKey(
        "SurveyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_on = models.DateTimeField()
    modified_on = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "keyword"], condition=~Q(keyword=""), name="survey_keyword_unique"
            ),
            models.UniqueConstraint(
                fields=["project", "builtin"], condition=~Q(builtin=""), name="survey_builtin_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "form_id"])]

    def __str__(self) -> str:
        return self.name


class SurveyVersion(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()  # definition.to_dict(): validated and canonical
    created_on = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["survey", "number"], name="survey_version_number")]


class SurveySession(models.Model):
    """One conversation: a survey version asked of a case on one (gateway, phone number)."""

    OPEN, COMPLETED, EXPIRED, CANCELLED, REPLACED = "open", "completed", "expired", "cancelled", "replaced"
    STATUSES = [OPEN, COMPLETED, EXPIRED, CANCELLED, REPLACED]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    survey_version = models.ForeignKey(SurveyVersion, on_delete=models.CASCADE, related_name="sessions")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="survey_sessions")
    # Null only once the gateway is deleted; the session can then no longer be answered and expires.
    gateway = models.ForeignKey(Gateway, null=True, on_delete=models.SET_NULL, related_name="+")
    phone_number = models.CharField(max_length=16)
    status = models.CharField(max_length=10, default=OPEN)
    # Why a session ended other than completed: SURVEY_EXPIRED, PHONE_OPTED_OUT, … ("" otherwise).
    error = models.CharField(max_length=40, blank=True, default="")
    current_question = models.CharField(max_length=255, blank=True, default="")
    answers = models.JSONField(default=dict, blank=True)  # {question name: canonical answer}
    language = models.CharField(max_length=16, blank=True, default="")  # the survey language asked in
    # The messaging event all of the session's messages belong to (source "survey").
    event = models.ForeignKey(MessagingEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_on = models.DateTimeField()
    last_activity_on = models.DateTimeField()
    next_reminder_on = models.DateTimeField(null=True, blank=True)
    expires_on = models.DateTimeField()
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    completed_on = models.DateTimeField(null=True, blank=True)  # when it ended, whatever the status

    class Meta:
        constraints = [
            # one open session per (gateway, number): the router knows where a reply belongs. The number
            # comes first so the index also finds a number's open sessions on any gateway (STOP ends them).
            models.UniqueConstraint(
                fields=["phone_number", "gateway"], condition=Q(status="open"), name="survey_session_one_open"
            ),
        ]
        indexes = [
            # the ticker's scans: only open sessions are in these indexes, so they stay small
            models.Index(fields=["next_reminder_on"], condition=Q(status="open"), name="survey_session_reminder"),
            models.Index(fields=["expires_on"], condition=Q(status="open"), name="survey_session_expiry"),
            models.Index(fields=["project", "case", "started_on"]),
            models.Index(fields=["project", "started_on"]),
        ]

    def __str__(self) -> str:
        return f"survey session {self.pk} ({self.status})"
