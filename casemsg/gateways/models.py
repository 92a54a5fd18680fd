from __future__ import annotations

import secrets

from django.db import models

from casemsg.projects.models import Project


def new_inbound_key() -> str:
    return secrets.token_urlsafe(24)


class Gateway(models.Model):
    """A configured SMS backend. A gateway with no project is installation-wide; one with a project serves
    only that project.

    Names are unique per project, and among the installation's gateways: a project never learns another
    project's gateway names (creating one with the same name simply works). A project's gateway may have
    the name of an installation gateway; for that project its own one wins (`contact_backend_id`, routes
    by name: casemsg.gateways.routing, services.find_gateway).
    """

    name = models.CharField(max_length=64)
    type = models.CharField(max_length=32)  # a key of casemsg.gateways.registry.GATEWAY_TYPES
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="gateways")
    config = models.JSONField(default=dict)
    # The secret carried in inbound and status-callback URLs: a webhook without it is refused.
    inbound_key = models.CharField(max_length=64, unique=True, default=new_inbound_key)
    # Segments per second this gateway accepts, shared by all workers; 0 means no limit.
    rate_limit = models.PositiveIntegerField(default=0)
    # Region codes (ISO 3166, e.g. "KE") this gateway sends to; empty means everywhere.
    countries = models.JSONField(default=list, blank=True)
    max_segments = models.PositiveIntegerField(default=10)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="gateway_project_name"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(project__isnull=True), name="gateway_installation_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class GatewayRoute(models.Model):
    """Prefix → gateway. Project routes win over installation routes; the longest prefix wins; `*`
    catches everything else."""

    prefix = models.CharField(max_length=16)
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="routes")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="routes")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "prefix"], name="route_project_prefix"),
            models.UniqueConstraint(
                fields=["prefix"], condition=models.Q(project__isnull=True), name="route_global_prefix"
            ),
        ]


class WhatsAppTemplate(models.Model):
    """A WhatsApp message template as the provider holds it, synced from there and never edited here
    (casemsg.gateways.whatsapp_templates): Meta's message_templates of the gateway's business account, or
    Twilio's Content API items with their WhatsApp approval."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="whatsapp_templates")
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=32, blank=True, default="")  # MARKETING | UTILITY | AUTHENTICATION
    status = models.CharField(max_length=32, blank=True, default="")  # APPROVED | PENDING | REJECTED | PAUSED …
    provider_id = models.CharField(max_length=128, blank=True, default="")  # Meta's id, Twilio's ContentSid
    components = models.JSONField(default=list, blank=True)  # as the provider gives them
    body = models.TextField(blank=True, default="")  # the body text with its {{1}}… variables
    variables = models.JSONField(default=list, blank=True)  # the variables' names in order: ["1", "2"]
    synced_on = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "name", "language"], name="whatsapp_template_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class InstallationAuditEntry(models.Model):
    """One change of the installation's own gateways or routes (the staff's Installation pages, `casemsg
    gateway`): who made it, when, what, the value before and after. A project's audit log
    (projects.AuditEntry) cannot hold these: they belong to no project. Written in the change's own
    transaction by gateways.services; secrets are never stored (masked as the pages show them); never
    changed afterwards."""

    at = models.DateTimeField()
    source = models.CharField(max_length=16)  # how the change came in: page, cli, api, system
    who = models.CharField(max_length=200, blank=True, default="")  # "user alice", "command line (root)"
    subject = models.CharField(max_length=100)  # "gateway twilio-us", "route 1"
    action = models.CharField(max_length=16)  # added, changed, removed, disabled, enabled
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-at", "-id"], name="installation_audit_at")]

    def __str__(self) -> str:
        return f"{self.subject} {self.action}@{self.at:%Y-%m-%d %H:%M}"
