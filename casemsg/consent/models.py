"""Consent: the opt-in requests waiting for their answer and the ledger of every consent, refusal,
opt-out and opt-in."""

from __future__ import annotations

from django.db import models

from casemsg.cases.models import Case
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


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


class ConsentRecord(models.Model):
    """The consent ledger: every consent, refusal, opt-out and opt-in, kept forever and exportable."""

    KINDS = ["consent", "refusal", "opt_out", "opt_in", "request", "expired"]
    SOURCES = ["survey", "worker_form", "keyword", "api", "gateway", "system"]

    phone_number = models.CharField(max_length=16, db_index=True)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    worker = models.ForeignKey(MobileWorker, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    contact_label = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=16)
    source = models.CharField(max_length=16)
    text_shown = models.TextField(blank=True, default="")
    answer = models.TextField(blank=True, default="")
    created_on = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["project", "created_on"])]
