from __future__ import annotations

from django.db import models

from casemsg.projects.models import Project


class Keyword(models.Model):
    """A project keyword: the first word of an inbound message (case-insensitive) triggers an action."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keywords")
    keyword = models.CharField(max_length=40)  # stored upper-case
    description = models.CharField(max_length=255, blank=True, default="")
    # a key of casemsg.inbound.keywords.ACTIONS: the table holds each action's checks and handler
    action = models.CharField(max_length=16, default="reply")
    reply = models.JSONField(default=dict, blank=True)  # {language: text}; sent for every action if set
    property_name = models.CharField(max_length=255, blank=True, default="")
    # the value to set; "{rest}" stands for the words after the keyword
    property_value = models.CharField(max_length=255, blank=True, default="{rest}")
    survey = models.CharField(max_length=64, blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "keyword"], name="keyword_unique")]
