from __future__ import annotations

from django.db import models

from casemsg.cases.models import Case
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


class Keyword(models.Model):
    """A project keyword: the first word of an inbound message (case-insensitive) triggers an action."""

    REPLY, UPDATE_CASE, START_SURVEY = "reply", "update_case", "start_survey"
    ACTIONS = [REPLY, UPDATE_CASE, START_SURVEY]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keywords")
    keyword = models.CharField(max_length=40)  # stored upper-case
    description = models.CharField(max_length=255, blank=True, default="")
    action = models.CharField(max_length=16, default=REPLY)
    reply = models.JSONField(default=dict, blank=True)  # {language: text}; sent for every action if set
    property_name = models.CharField(max_length=255, blank=True, default="")
    # the value to set; "{rest}" stands for the words after the keyword
    property_value = models.CharField(max_length=255, blank=True, default="{rest}")
    survey = models.CharField(max_length=64, blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "keyword"], name="keyword_unique")]


class ConsentRequest(models.Model):
    """An opt-in request ("Do you consent to receiving SMS messaging?") waiting for its answer, or a
    mobile worker's number verification code. While pending, replies from the number route to it."""

    OPT_IN, VERIFICATION = "opt_in", "verification"
    PENDING, ANSWERED, REFUSED, EXPIRED = "pending", "consented", "refused", "expired"

    kind = models.CharField(max_length=16, default=OPT_IN)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(MobileWorker, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    phone_number = models.CharField(max_length=16)
    text_shown = models.TextField()
    code = models.CharField(max_length=12, blank=True, default="")  # verification only
    source = models.CharField(max_length=16, default="api")
    status = models.CharField(max_length=10, default=PENDING)
    answer = models.TextField(blank=True, default="")
    created_on = models.DateTimeField()
    expires_on = models.DateTimeField()
    answered_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["phone_number", "status", "expires_on"]),
            models.Index(fields=["expires_on"], condition=models.Q(status="pending"), name="consent_request_due"),
            models.Index(fields=["case", "created_on"]),
            models.Index(fields=["worker", "created_on"]),
        ]
