"""Scheduling: broadcasts and conditional alerts are rows, not timers.

A `Broadcast` (content + recipients + schedule) and a `ConditionalAlert` (a case type and criteria, content,
schedule, recipients) each start one `ScheduleInstance` per recipient: its next due time in UTC, the index
of its next event, the owner's schedule revision it was computed for. The scheduler tick claims due
instances (index on next_due_utc where active), queues their messages through the one send pipeline with a
unique send key per (instance, occurrence) — so two ticks, two workers or a crash mid-tick never send an
occurrence twice — and advances each instance.

Schedules and content are JSON documents validated by `casemsg.scheduling.specs` (the single place that
knows their shape); a change of the schedule bumps `revision` and recomputes the instances, a change of the
content alone changes no schedule.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from casemsg.cases.models import Case
from casemsg.groups.models import Group
from casemsg.messaging.models import MessagingEvent
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


class Broadcast(models.Model):
    """A message to chosen recipients: now, at a date and time, or repeating."""

    ACTIVE, PAUSED, CANCELLED, DONE = "active", "paused", "cancelled", "done"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="broadcasts")
    name = models.CharField(max_length=200)
    # {"channel": "sms"|"email", "text"?, "translations"?: {lang: text}, "subject"?: {lang: text}}
    content = models.JSONField(default=dict)
    default_language = models.CharField(max_length=16, blank=True, default="")
    # {"case_type"?, "filters"?: {prop: value}, "case_ids"?: [...], "mobile_workers"?: [ids]|"all",
    #  "owners_of"?: {"case_type", "filters"}}
    recipients = models.JSONField(default=dict)
    schedule = models.JSONField(default=dict)  # see schedules.BroadcastScheduleIn
    status = models.CharField(max_length=10, default=ACTIVE)
    revision = models.PositiveIntegerField(default=1)
    max_lateness_minutes = models.PositiveIntegerField(default=2 * 24 * 60)
    # the messaging event its messages belong to (created with the broadcast, or by the first tick)
    event = models.ForeignKey(MessagingEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_on = models.DateTimeField()
    modified_on = models.DateTimeField()
    # When its recipients are read again (a case type, a group, …: recipients that can change): its next
    # occurrence in any recipient's zone. The tick syncs the instances first (lifecycle.sync_broadcast), and
    # claims none of its instances while this is due. None: never (fixed recipients, no event left).
    refresh_due_utc = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "created_on"]),
            models.Index(
                fields=["refresh_due_utc"], condition=Q(refresh_due_utc__isnull=False), name="broadcast_refresh_due"
            ),
        ]


class ConditionalAlert(models.Model):
    """A rule on case properties that starts a schedule for each matching case."""

    ACTIVE, PAUSED = "active", "paused"
    # rule runs (the evaluation of every open case of the type): resumable, progress visible
    IDLE, RUNNING, FAILED = "idle", "running", "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alerts")
    name = models.CharField(max_length=200)
    case_type = models.CharField(max_length=64)
    # [{"property", "operator": equal|not_equal|has_value|has_no_value|regex|days_before|days_after, "value"}]
    criteria = models.JSONField(default=list)
    content = models.JSONField(default=dict)
    default_language = models.CharField(max_length=16, blank=True, default="")
    schedule = models.JSONField(default=dict)  # see schedules.AlertScheduleIn
    recipients = models.JSONField(default=list)  # ["case", "owner", "parent"]
    # recipients {"roles", "group"}: only the group's members among the matching cases
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reset_property = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=10, default=ACTIVE)
    revision = models.PositiveIntegerField(default=1)
    max_lateness_minutes = models.PositiveIntegerField(default=2 * 24 * 60)
    # the messaging event its messages belong to (created by the first tick that sends one)
    event = models.ForeignKey(MessagingEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_on = models.DateTimeField()
    modified_on = models.DateTimeField()
    # the rule run: cases are evaluated in primary-key order, so `run_last_pk` is where a crashed run resumes
    run_status = models.CharField(max_length=10, default=IDLE)
    run_revision = models.PositiveIntegerField(default=0)  # the revision the last complete run evaluated
    run_total = models.PositiveIntegerField(default=0)
    run_done = models.PositiveIntegerField(default=0)
    run_last_pk = models.BigIntegerField(default=0)
    run_started_on = models.DateTimeField(null=True, blank=True)
    run_finished_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "case_type"], name="alert_case_type")]


class ScheduleInstance(models.Model):
    """One broadcast or alert × one recipient: when its next event is due (UTC) and which one it is."""

    CASE, OWNER, PARENT, WORKER = "case", "owner", "parent", "worker"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    broadcast = models.ForeignKey(Broadcast, null=True, blank=True, on_delete=models.CASCADE, related_name="instances")
    alert = models.ForeignKey(
        ConditionalAlert, null=True, blank=True, on_delete=models.CASCADE, related_name="instances"
    )
    # the case an alert matched (for every role), or the case a broadcast chose
    source_case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=8, default=CASE)  # who receives: the case, its owner, its parent, a worker
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(MobileWorker, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    revision = models.PositiveIntegerField(default=1)  # the owner's revision this schedule was computed for
    reset_value = models.TextField(blank=True, default="")  # an alert's reset property when it started
    anchor_utc = models.DateTimeField()  # the start the events are counted from
    time_zone = models.CharField(max_length=64, default="UTC")  # the zone the local times were read in
    iteration = models.PositiveIntegerField(default=0)  # the index of the next event
    next_due_utc = models.DateTimeField(null=True, blank=True)
    next_local = models.CharField(
        max_length=32, blank=True, default=""
    )  # next_due_utc on the recipient's clock (read from it)
    active = models.BooleanField(default=True)
    claim = models.CharField(max_length=32, blank=True, default="")
    claimed_on = models.DateTimeField(null=True, blank=True)
    created_on = models.DateTimeField()
    ended_on = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True, default="")  # completed, no_longer_matches, …
    # what the last event did: sent (a message id), skipped as too late, …
    last_event = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # the tick's claim: only active rows are in this index, so it costs what is due, not what exists
            models.Index(fields=["next_due_utc"], condition=Q(active=True), name="schedule_instance_due"),
            models.Index(fields=["source_case", "active"], name="schedule_instance_case"),
            models.Index(fields=["case", "active"], name="schedule_instance_recipient"),
        ]
        # One *active* instance per recipient: an ended one stays as history, and a restart (the case
        # matches again, the schedule changed) is a new row, so its send keys ("si:<id>:<n>") are new too.
        # Broadcast recipients are a case or a worker (the other is NULL, and NULLs never conflict), hence
        # one constraint each. Their leading column also serves "does this owner have active instances?".
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "source_case", "role"],
                condition=Q(alert__isnull=False, active=True),
                name="one_active_instance_per_alert",
            ),
            models.UniqueConstraint(
                fields=["broadcast", "case"],
                condition=Q(broadcast__isnull=False, case__isnull=False, active=True),
                name="one_active_case_per_broadcast",
            ),
            models.UniqueConstraint(
                fields=["broadcast", "worker"],
                condition=Q(broadcast__isnull=False, worker__isnull=False, active=True),
                name="one_active_worker_per_broadcast",
            ),
        ]
