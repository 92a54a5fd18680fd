from __future__ import annotations

from django.db import models

from casemsg.projects.models import Project


class MobileWorker(models.Model):
    """A frontline user of a project; may have phone numbers."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="mobile_workers")
    username = models.CharField(max_length=150)
    name = models.CharField(max_length=255, blank=True, default="")
    active = models.BooleanField(default=True)
    # [{"number": "15551234567", "verified": true}, ...] — the registry mirrors these.
    phone_numbers = models.JSONField(default=list)
    email = models.CharField(max_length=254, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="")
    language_code = models.CharField(max_length=16, blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "username"], name="worker_unique_username")]

    def __str__(self) -> str:
        return self.username

    @property
    def is_active(self) -> bool:
        return self.active
