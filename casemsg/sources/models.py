"""Case sources: systems casemsg keeps its cases in step with (CommCare HQ, ODK Central, DHIS2, anything
that posts JSON), and every run that read from one, with its log.

A source's sync state lives on its row: the watermark (the source's own modification time up to which
every change has been applied), the cursor of a run that was interrupted (where to go on), the lease of
the sync that holds it (one sync per source, across machines: `casemsg.sources.sync`) and when it is due.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from casemsg.projects.models import Project


def new_receive_key() -> str:
    return secrets.token_urlsafe(24)


class Source(models.Model):
    """A system a project's cases come from. `config` holds the type's settings (its `config_schema`:
    base URL, what to read, credentials); secrets in it are never shown again once saved."""

    NEW, OK, FAILING = "new", "ok", "failing"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    type = models.CharField(max_length=32)  # a key of casemsg.sources.registry.SOURCE_TYPES
    config = models.JSONField(default=dict)
    # [{"from": source field, "to": case property or field, "transform": {...}}] (casemsg.sources.mapping)
    mapping = models.JSONField(default=list)
    keep_unmapped = models.BooleanField(default=True)  # fields not in the mapping kept under their own names
    case_type = models.CharField(max_length=64, blank=True, default="")  # empty: the record's own type
    interval_minutes = models.PositiveIntegerField(default=15)  # 0: only when asked (sync now, receivers)
    active = models.BooleanField(default=True)
    # The secret in the receiver URL (CommCare Data Forwarding, push): unique, so it finds its source.
    receive_key = models.CharField(max_length=64, unique=True, default=new_receive_key)
    created_on = models.DateTimeField()

    # --- sync state ---------------------------------------------------------------------------------
    watermark = models.DateTimeField(null=True, blank=True)  # source clock: every change before is applied
    # Everything the source changed before this moment (casemsg's clock) is applied: the last good run's start.
    synced_until = models.DateTimeField(null=True, blank=True)
    next_sync_on = models.DateTimeField(null=True, blank=True)  # due then (the ticker claims it); null: never
    full_requested = models.BooleanField(default=False)  # the next run reads everything again
    requested_by = models.CharField(max_length=16, blank=True, default="")  # api, page, cli: who asked for it
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, default=NEW)
    failures = models.PositiveIntegerField(default=0)  # consecutive failed runs (back-off)
    last_error = models.CharField(max_length=64, blank=True, default="")  # a catalogue code
    last_error_detail = models.CharField(max_length=500, blank=True, default="")
    last_run_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="source_project_name")]
        indexes = [
            models.Index(fields=["next_sync_on"], condition=Q(active=True), name="source_due"),
        ]

    def __str__(self) -> str:
        return self.name


class SourceRun(models.Model):
    """One sync (incremental or full), or one day of a receiver's posts, or one file import."""

    INCREMENTAL, FULL, RECEIVE, FILE = "incremental", "full", "receive", "file"
    RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
    MAX_LOG = 1000  # entries kept per run; `log_dropped` counts the rest

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, default=INCREMENTAL)
    trigger = models.CharField(max_length=16, default="schedule")  # schedule, api, page, cli, receiver, file
    status = models.CharField(max_length=16, default=RUNNING)
    started_on = models.DateTimeField()
    finished_on = models.DateTimeField(null=True, blank=True)
    updated_on = models.DateTimeField()  # last page applied (progress)
    pages = models.PositiveIntegerField(default=0)
    records = models.PositiveIntegerField(default=0)  # read from the source
    total = models.PositiveIntegerField(null=True, blank=True)  # what the source said it would send
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    closed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    resumed = models.PositiveIntegerField(default=0)  # times another worker went on after this one stopped
    watermark_before = models.DateTimeField(null=True, blank=True)
    watermark_after = models.DateTimeField(null=True, blank=True)
    # The newest modification time read so far, and the source's clock when the run began (the watermark
    # never passes it: a change made while the run reads is read again by the next run).
    high_water = models.DateTimeField(null=True, blank=True)
    source_clock = models.DateTimeField(null=True, blank=True)
    cursor = models.JSONField(null=True, blank=True)  # where the run goes on (the type's own paging state)
    error = models.CharField(max_length=64, blank=True, default="")  # a catalogue code
    error_detail = models.CharField(max_length=500, blank=True, default="")
    # [{"record": id, "code": catalogue code, "reason": sentence, "page": n}] — skipped records and events
    log = models.JSONField(default=list)
    log_dropped = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["source", "-started_on"]),
            models.Index(fields=["source", "kind", "status"]),
        ]

    @property
    def progress(self) -> float | None:
        """0–1 when the source said how many records it would send."""
        if not self.total:
            return None
        return min(1.0, self.records / self.total)


class VerifiedNumber(models.Model):
    """The number a source's `contact_phone_number_is_verified: 1` was taken as consent for, per case.

    Consent belongs to the number (docs/security.md): a system that keeps its whole case sends the flag
    again with every change, also after the number changed, when the `1` was given for the old number.
    The flag counts for a number only when the source set it for that number: the first time casemsg
    reads it, or after the source cleared it. `casemsg.sources.apply` keeps these rows."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+")
    case_id = models.CharField(max_length=64)
    number = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "case_id"], name="source_verified_case")]
