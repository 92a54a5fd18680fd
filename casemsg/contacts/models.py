from __future__ import annotations

from django.db import models
from django.db.models import Q

from casemsg.cases.models import Case
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


class PhoneEntry(models.Model):
    """The registry row tying a phone number to a contact; global across all projects.

    At most one entry per number in the whole installation is two-way (a partial unique index enforces
    it, so two concurrent registrations can never both win). The first verified registrant owns the
    number; when it releases it, the oldest remaining verified entry takes over.
    """

    phone_number = models.CharField(max_length=16)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="phone_entries")
    worker = models.ForeignKey(
        MobileWorker, null=True, blank=True, on_delete=models.CASCADE, related_name="phone_entries"
    )
    verified = models.BooleanField(default=False)
    verified_on = models.DateTimeField(null=True, blank=True)
    two_way = models.BooleanField(default=False)
    created_on = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["phone_number"], condition=Q(two_way=True), name="phone_entry_one_two_way_owner"
            ),
            models.UniqueConstraint(
                fields=["case", "phone_number"], condition=Q(case__isnull=False), name="phone_entry_case_number"
            ),
            models.UniqueConstraint(
                fields=["worker", "phone_number"],
                condition=Q(worker__isnull=False),
                name="phone_entry_worker_number",
            ),
            models.CheckConstraint(
                condition=Q(case__isnull=True, worker__isnull=False) | Q(case__isnull=False, worker__isnull=True),
                name="phone_entry_one_contact",
            ),
        ]
        indexes = [models.Index(fields=["phone_number", "verified", "verified_on"])]

    def __str__(self) -> str:
        return self.phone_number

    @property
    def contact(self) -> Case | MobileWorker | None:
        return self.case if self.case_id else self.worker


class OptOut(models.Model):
    """A number that said STOP. Removed rows mean opted back in.

    `project` empty: the installation-wide opt-out (STOP through an installation gateway, or a provider's
    report): it blocks every project. `project` set: that project's own opt-out (STOP through the project's
    own gateway or its phone simulator): it blocks only that project, adds to the installation one and never
    lifts it. Whether a number is opted out for a project is `casemsg.contacts.optouts`."""

    phone_number = models.CharField(max_length=16)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="opt_outs")
    opted_out_on = models.DateTimeField()
    gateway_name = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=32, default="keyword")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["phone_number"], condition=Q(project__isnull=True), name="optout_installation_number"
            ),
            models.UniqueConstraint(
                fields=["project", "phone_number"], condition=Q(project__isnull=False), name="optout_project_number"
            ),
        ]
        indexes = [models.Index(fields=["phone_number"], name="optout_number")]

    def __str__(self) -> str:
        return self.phone_number


class WhatsAppWindow(models.Model):
    """The 24-hour customer-service window of one person's WhatsApp number with one business number (a
    WhatsApp gateway): opened by each of the person's messages (casemsg.contacts.whatsapp). Also remembers
    that the person wrote (their WhatsApp opt-in) and when WhatsApp said the number cannot be reached."""

    gateway = models.ForeignKey("gateways.Gateway", on_delete=models.CASCADE, related_name="+")
    phone_number = models.CharField(max_length=16)
    last_inbound_on = models.DateTimeField(null=True, blank=True)
    not_on_whatsapp_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "phone_number"], name="whatsapp_window_unique"),
        ]
        indexes = [models.Index(fields=["phone_number"], name="whatsapp_window_number")]
