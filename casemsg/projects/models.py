from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

from casemsg.core.phone import DEFAULT_CONSENT_REGIONS

DEFAULT_SKIP_WORD = "#SKIP"  # (the surveys' default too: casemsg.surveys.definition)


def _default_languages() -> list[str]:
    return ["en"]


def _default_consent_regions() -> list[str]:
    return list(DEFAULT_CONSENT_REGIONS)


class Project(models.Model):
    """A tenant: its own cases, workers, gateways and settings."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    default_time_zone = models.CharField(max_length=64, default="UTC")
    # ISO 3166 alpha-2 ("KE"), or "" for none: a local number written without the country code (0711 222 333)
    # is stored as a number of this country (casemsg.core.phone.local_fix). Set from the time zone when the
    # project is created (Africa/Nairobi → KE); a setting like the others.
    default_country = models.CharField(max_length=2, blank=True, default="")
    default_language = models.CharField(max_length=16, default="en")
    sms_languages = models.JSONField(default=_default_languages)
    consent_regions = models.JSONField(default=_default_consent_regions)
    # The stricter older rule: a number shared with another contact blocks all messages.
    block_shared_numbers = models.BooleanField(default=False)
    auto_normalize_phone_numbers = models.BooleanField(default=False)
    # The project's own translations of the texts casemsg sends, {key: {language: text}}: the catalogue,
    # its defaults and the rules are casemsg.consent.texts (the only writer, through services.save_texts).
    texts = models.JSONField(default=dict, blank=True)
    # Extra single words (besides STOP… and START…) per project, e.g. Swahili "SITISHA".
    opt_out_keywords = models.JSONField(default=list, blank=True)
    opt_in_keywords = models.JSONField(default=list, blank=True)
    # The reply that skips a survey question (it takes the value offered, else it is a blank reply); a survey's
    # own settings.skip_word wins.
    survey_skip_word = models.CharField(max_length=32, default=DEFAULT_SKIP_WORD)
    # Consent: how often the opt-in question may be asked, how long an answer is awaited, and whether
    # registering a consent-needing number sends it at once.
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


# What an API key may do (checked by every API operation, casemsg.api.core): read — every GET; send —
# messages, opt-in requests, verification codes, survey starts, broadcasts and alerts; write — create,
# change and delete cases, mobile workers, keywords, surveys, gateways, routes, event webhooks, settings;
# admin — API keys, the audit log, and settings changes that weaken a legal rule.
READ, SEND, WRITE, ADMIN = "read", "send", "write", "admin"
SCOPES: tuple[str, ...] = (READ, SEND, WRITE, ADMIN)
# A new key's scopes unless others are chosen: everything but admin.
DEFAULT_SCOPES: tuple[str, ...] = (READ, SEND, WRITE)


def _default_scopes() -> list[str]:
    return list(DEFAULT_SCOPES)


class ApiKey(models.Model):
    """A project's API key, stored hashed: the plain key is shown once, when issued."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    name = models.CharField(max_length=100, blank=True, default="")  # what the key is for
    created_on = models.DateTimeField(auto_now_add=True)
    revoked = models.BooleanField(default=False)
    revoked_on = models.DateTimeField(null=True, blank=True)
    # When the API last accepted the key, to the minute (services.note_key_used writes it at most once a
    # minute, so a busy key costs no write per request); null: never used.
    last_used_on = models.DateTimeField(null=True, blank=True)
    # Among SCOPES, in that order (projects.services checks them when the key is issued).
    scopes = models.JSONField(default=_default_scopes)

    @classmethod
    def issue(cls, project: Project, name: str = "", scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES) -> str:
        return cls.issue_row(project, name, scopes)[1]

    @classmethod
    def issue_row(
        cls, project: Project, name: str = "", scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES
    ) -> tuple[ApiKey, str]:
        """A new key: the row and the plain key, which is shown once and never stored."""
        key = "cm_" + secrets.token_urlsafe(32)
        ordered = [s for s in SCOPES if s in scopes]
        row = cls.objects.create(project=project, key_hash=hash_key(key), prefix=key[:10], name=name, scopes=ordered)
        return row, key

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    def described(self) -> str:
        """The key as the audit log and the consent ledger name it: its prefix and its name."""
        return f"api key {self.prefix}…" + (f" ({self.name})" if self.name else "")


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


class AuditEntry(models.Model):
    """One change of a project's settings or API keys: who made it, when, which setting, the value before
    and after (as GET …/settings shows it), and whether it weakened a legal rule. Written in the change's
    own transaction by projects.services; never changed afterwards."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="audit_entries")
    at = models.DateTimeField()
    source = models.CharField(max_length=16)  # how the change came in: api, page, cli, system
    who = models.CharField(max_length=200, blank=True, default="")  # "user alice", "api key cm_AbCd… (ci)", …
    setting = models.CharField(max_length=64)  # a settings name (consent_regions, quiet_hours, …) or api_key
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    weakens = models.BooleanField(default=False)  # it weakened a legal rule (it needed owner / admin)

    class Meta:
        indexes = [models.Index(fields=["project", "-at", "-id"], name="audit_project_at")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.setting}@{self.at:%Y-%m-%d %H:%M}"


class Invitation(models.Model):
    """A one-time link inviting someone by email to a project with a role: opening it lets them choose a
    username and password and join (projects.services.accept_invitation). Stored hashed, like an API key:
    the link is shown once, to the owner who made it, and emailed; it works once and until expires_on."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=8, choices=Membership.ROLE_CHOICES)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_on = models.DateTimeField(auto_now_add=True)
    expires_on = models.DateTimeField()
    used_on = models.DateTimeField(null=True, blank=True)
    # the account made with it
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.email}@{self.project_id}:{self.role}"
