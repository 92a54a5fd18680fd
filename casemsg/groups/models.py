"""Groups of cases: static (cases added and removed by hand, by CSV or through the API) and dynamic (a
saved filter: a case type and conditions on properties and on contact state, evaluated in SQL each time
the group is read — `casemsg.groups.conditions`)."""

from __future__ import annotations

from django.db import models

from casemsg.cases.models import Case
from casemsg.projects.models import Project


class Group(models.Model):
    """A named set of a project's cases. A static group's members are its `GroupMember` rows; a dynamic
    group's are the open cases of `case_type` that meet every one of its `conditions`."""

    STATIC, DYNAMIC = "static", "dynamic"
    KINDS = (STATIC, DYNAMIC)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=8, default=STATIC)
    case_type = models.CharField(max_length=64, blank=True, default="")  # dynamic groups
    # dynamic groups: [{"property", "operator", "value"?} | {"contact", "value"?}], see conditions.py
    conditions = models.JSONField(default=list, blank=True)
    created_on = models.DateTimeField()
    modified_on = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="group_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.kind == self.DYNAMIC


class GroupMember(models.Model):
    """One case of a static group."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="members")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    added_on = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "case"], name="group_member_once")]
        indexes = [models.Index(fields=["case"], name="group_member_case")]
