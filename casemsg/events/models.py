"""Event webhooks: the URLs a project registers to be told about its messages, consents and opt-outs, and
every delivery to them (the delivery log)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from casemsg.projects.models import Project

MESSAGE_STATUS = "message.status"
MESSAGE_INBOUND = "message.inbound"
CONSENT_CHANGED = "consent.changed"
OPTOUT_CHANGED = "optout.changed"
SOURCE_RUN = "source.run"  # a case source's sync ended (casemsg.sources)
TEST = "test"  # sent by "send a test event" only; no endpoint subscribes to it
EVENTS = [MESSAGE_STATUS, MESSAGE_INBOUND, CONSENT_CHANGED, OPTOUT_CHANGED, SOURCE_RUN]


class Endpoint(models.Model):
    """A URL of the project's own system that receives the events it chose, signed with its secret."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list)  # a subset of EVENTS
    # The HMAC key of the signature header. Kept readable (a signature needs the key itself); shown to
    # the project once, when the endpoint is created.
    secret = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True, default="")
    active = models.BooleanField(default=True)
    created_on = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["project", "active"])]


class Delivery(models.Model):
    """One event for one endpoint: the body's data, and how its delivery went.

    Pending while `next_attempt_utc` is set (the time of its next attempt, or while a deliverer holds it,
    the end of that claim); null once delivered (`delivered_on`) or given up (`failed_on`). Deliveries of
    one subject (a message, a phone number) to one endpoint go in the order they were created: one waits
    while an earlier one of its subject is pending."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    event = models.CharField(max_length=32)
    # What the event is about, for the ordering: "message:<id>" or "number:<E.164 digits>".
    subject = models.CharField(max_length=64)
    message_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)  # the body's "data"
    attempts = models.PositiveIntegerField(default=0)
    created_on = models.DateTimeField()
    next_attempt_utc = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, default="")
    last_attempt_on = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)  # the HTTP status answered
    last_response = models.CharField(max_length=200, blank=True, default="")  # a short plain excerpt
    last_error = models.CharField(max_length=300, blank=True, default="")  # no answer: timeout, refused…
    delivered_on = models.DateTimeField(null=True, blank=True)
    failed_on = models.DateTimeField(null=True, blank=True)  # gave up: no 2xx within the retry window

    class Meta:
        indexes = [
            # the due-time claim: only pending rows are in these indexes, so they stay small
            models.Index(fields=["next_attempt_utc"], condition=Q(next_attempt_utc__isnull=False), name="delivery_due"),
            models.Index(
                fields=["endpoint", "subject", "id"],
                condition=Q(next_attempt_utc__isnull=False),
                name="delivery_pending_subject",
            ),
            models.Index(fields=["endpoint", "created_on"]),
        ]

    @property
    def state(self) -> str:
        if self.delivered_on is not None:
            return "delivered"
        if self.failed_on is not None:
            return "failed"
        return "pending"
