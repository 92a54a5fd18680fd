from __future__ import annotations

import uuid

from django.db import models

from casemsg.projects.models import Project


def new_case_id() -> str:
    return uuid.uuid4().hex


class Case(models.Model):
    """A case: its `properties` say how to reach the person (see the seeds' property table)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cases")
    case_id = models.CharField(max_length=64, default=new_case_id)
    case_type = models.CharField(max_length=64)
    external_id = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    owner_id = models.CharField(max_length=64, blank=True, default="")
    parent_id = models.CharField(max_length=64, blank=True, default="")
    properties = models.JSONField(default=dict)
    closed = models.BooleanField(default=False)
    opened_on = models.DateTimeField()
    modified_on = models.DateTimeField()
    closed_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "case_id"], name="case_unique_id")]
        indexes = [
            models.Index(fields=["project", "case_type", "closed"]),
            models.Index(fields=["project", "external_id"]),
            models.Index(fields=["project", "parent_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.case_type} {self.case_id}"

    @property
    def is_active(self) -> bool:
        return not self.closed
