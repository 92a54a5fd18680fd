"""Consent: the opt-in requests waiting for their answer and the ledger of every consent, refusal,
opt-out and opt-in."""

from __future__ import annotations

from django.db import models

from casemsg.cases.models import Case
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


class ConsentRequest(models.Model):
    """An opt-in request ("Do you consent to receiving SMS messaging?") waiting for its answer, or a
    mobile worker's number verification code. While pending, replies from the number route to it.

    A request is `queued` until its question has actually been sent: an answer that arrives before (the
    person cannot have seen the question) is an ordinary inbound message, never a consent."""

    OPT_IN, VERIFICATION = "opt_in", "verification"
    QUEUED, PENDING, ANSWERED, REFUSED, EXPIRED = "queued", "pending", "consented", "refused", "expired"

    kind = models.CharField(max_length=16, default=OPT_IN)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(MobileWorker, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    phone_number = models.CharField(max_length=16)
    text_shown = models.TextField()
    code = models.CharField(max_length=12, blank=True, default="")  # verification only
    source = models.CharField(max_length=16, default="api")
    status = models.CharField(max_length=10, default=QUEUED)
    answer = models.TextField(blank=True, default="")
    created_on = models.DateTimeField()
    sent_on = models.DateTimeField(null=True, blank=True)  # when the gateway took the question
    expires_on = models.DateTimeField()
    answered_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["phone_number", "status", "expires_on"]),
            models.Index(
                fields=["expires_on"], condition=models.Q(status__in=["queued", "pending"]), name="consent_request_due"
            ),
            models.Index(fields=["case", "created_on"]),
            models.Index(fields=["worker", "created_on"]),
        ]


class ConsentRecord(models.Model):
    """The consent ledger: every consent, refusal, opt-out and opt-in, kept forever and exportable."""

    KINDS = ["consent", "refusal", "opt_out", "opt_in", "request", "expired"]
    # How it came in: the person's answer to the opt-in survey or a verification code, a frontline worker's
    # form, a CSV import, the API, a page, the command line, a keyword (STOP/START), the gateway's own report,
    # or the system; or the person writing on WhatsApp (its opt-in).
    SOURCES = [
        "survey",
        "verification",
        "worker_form",
        "import",
        "api",
        "page",
        "cli",
        "keyword",
        "gateway",
        "system",
        "whatsapp",
    ]

    phone_number = models.CharField(max_length=16, db_index=True)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    worker = models.ForeignKey(MobileWorker, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    contact_label = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=16)
    source = models.CharField(max_length=16)
    # Who recorded it: an API key, a user, "command line"; empty when the person did (survey, keyword).
    recorded_by = models.CharField(max_length=255, blank=True, default="")
    text_shown = models.TextField(blank=True, default="")
    answer = models.TextField(blank=True, default="")
    created_on = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["project", "created_on"])]
