from __future__ import annotations

from django.db import models

from casemsg.cases.models import Case
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


class Keyword(models.Model):
    """A project keyword: the first word of an inbound message (case-insensitive) triggers an action."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keywords")
    keyword = models.CharField(max_length=40)  # stored upper-case
    description = models.CharField(max_length=255, blank=True, default="")
    # a key of casemsg.inbound.actions.registry.ACTIONS: the action's module holds its checks and handler
    action = models.CharField(max_length=16, default="reply")
    reply = models.JSONField(default=dict, blank=True)  # {language: text}; sent for every action if set
    # the action's parameters, {name: text}, as its module declares them (update_case: property_name,
    # property_value; start_survey: survey)
    params = models.JSONField(default=dict, blank=True)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "keyword"], name="keyword_unique")]


class InboxLabel(models.Model):
    """A project's label for inbox messages ("Question", "Complaint", …), chosen by its officers."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=40)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="inbox_label_unique")]

    def __str__(self) -> str:
        return self.name


class InboxItem(models.Model):
    """An inbound message nothing handled (no keyword, survey, consent question or compliance word took it:
    `handle.act`'s outcome `unhandled` or `unknown_sender`), waiting for a person. Written by the handler in
    the same transaction as the handled message (`handle.Writes`), so no such message is ever missing from
    the inbox; changed only through `casemsg.inbound.inbox`.

    It lives here, beside the handling that decides it, rather than as columns of Message: the message table
    is the send path's hottest, and an inbox state or labels on every row (and an index for them) would cost
    each of its writes for what is a small share of inbound messages."""

    OPEN, HANDLED, ARCHIVED = "open", "handled", "archived"
    STATES = [OPEN, HANDLED, ARCHIVED]

    # no index of its own: the composite index below serves every lookup by project
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="inbox_item")
    # The message's contact, number and text, copied when it is put in the inbox: the inbox is searched and
    # counted per contact without reading the message table (a join the planner turns into a scan of it).
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    worker = models.ForeignKey(MobileWorker, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    number = models.CharField(max_length=254, blank=True, default="")
    text = models.TextField(blank=True, default="")
    state = models.CharField(max_length=10, default=OPEN)
    labels = models.ManyToManyField(InboxLabel, blank=True, related_name="items")
    received_on = models.DateTimeField()  # the message's created_on: the inbox's order needs no join
    changed_on = models.DateTimeField(null=True, blank=True)  # the state's last change by a person
    changed_by = models.CharField(max_length=200, blank=True, default="")  # "user alice", "api key cm_…"

    class Meta:
        indexes = [models.Index(fields=["project", "state", "received_on"], name="inbox_item_state")]

    def __str__(self) -> str:
        return f"inbox {self.pk} ({self.state})"
