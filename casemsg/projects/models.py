from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

from casemsg.core.phone import DEFAULT_CONSENT_REGIONS


def _default_languages() -> list[str]:
    return ["en"]


def _default_consent_regions() -> list[str]:
    return list(DEFAULT_CONSENT_REGIONS)


class Project(models.Model):
    """A tenant: its own cases, workers, gateways and settings."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    default_time_zone = models.CharField(max_length=64, default="UTC")
    default_language = models.CharField(max_length=16, default="en")
    sms_languages = models.JSONField(default=_default_languages)
    consent_regions = models.JSONField(default=_default_consent_regions)
    # The stricter older rule: a number shared with another contact blocks all messages.
    block_shared_numbers = models.BooleanField(default=False)
    auto_normalize_phone_numbers = models.BooleanField(default=False)
    # Inbound compliance texts, each {language: text}; defaults in casemsg.consent.words.
    help_text = models.JSONField(default=dict, blank=True)
    opt_out_confirmation = models.JSONField(default=dict, blank=True)
    opt_in_confirmation = models.JSONField(default=dict, blank=True)
    unknown_sender_reply = models.JSONField(default=dict, blank=True)  # empty: unknown senders get no reply
    # Extra single words (besides STOP… and START…) per project, e.g. Swahili "SITISHA".
    opt_out_keywords = models.JSONField(default=list, blank=True)
    opt_in_keywords = models.JSONField(default=list, blank=True)
    # Consent: the opt-in question, how often it may be asked, how long an answer is awaited, and whether
    # registering a consent-needing number sends it at once.
    opt_in_question = models.JSONField(default=dict, blank=True)
    opt_in_interval_hours = models.PositiveIntegerField(default=24)
    opt_in_expiry_hours = models.PositiveIntegerField(default=72)
    auto_opt_in = models.BooleanField(default=False)
    # Quiet hours, read on each recipient's wall clock (21:00-08:00 crosses midnight): a scheduled SMS or
    # opt-in question due inside waits for the end (delay QUIET_HOURS). Null, or start == end: none.
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    created_on = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A project's API key, stored hashed: the plain key is shown once, when issued."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    name = models.CharField(max_length=100, blank=True, default="")  # what the key is for
    created_on = models.DateTimeField(auto_now_add=True)
    revoked = models.BooleanField(default=False)
    revoked_on = models.DateTimeField(null=True, blank=True)

    @classmethod
    def issue(cls, project: Project, name: str = "") -> str:
        return cls.issue_row(project, name)[1]

    @classmethod
    def issue_row(cls, project: Project, name: str = "") -> tuple[ApiKey, str]:
        """A new key: the row and the plain key, which is shown once and never stored."""
        key = "cm_" + secrets.token_urlsafe(32)
        row = cls.objects.create(project=project, key_hash=hash_key(key), prefix=key[:10], name=name)
        return row, key


class Membership(models.Model):
    """A user's role in one project. Roles are ordered: an owner may do what an editor may, an editor what a
    viewer may (casemsg.projects.services.ROLES)."""

    OWNER, EDITOR, VIEWER = "owner", "editor", "viewer"
    ROLE_CHOICES = [(OWNER, "Owner"), (EDITOR, "Editor"), (VIEWER, "Viewer")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=ROLE_CHOICES)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_one_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.project_id}:{self.role}"
