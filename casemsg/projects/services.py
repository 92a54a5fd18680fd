from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from casemsg.core import errors, timezones
from casemsg.core.errors import InputError
from casemsg.projects.models import ApiKey, Project


def create_project(
    slug: str, name: str, time_zone: str = "UTC", language: str = "en", languages: list[str] | None = None
) -> tuple[Project, str]:
    """A new project and its first API key (the plain key is returned once; only its hash is kept)."""
    if not slug or slugify(slug) != slug:
        raise InputError(
            errors.INVALID_SLUG, f"'{slug}' is not a valid slug: use lowercase letters, digits and dashes."
        )
    if not timezones.is_valid(time_zone):
        raise InputError(errors.INVALID_TIME_ZONE, f"'{time_zone}' is not an IANA time zone name.")
    if Project.objects.filter(slug=slug).exists():
        raise InputError(errors.PROJECT_EXISTS, f"A project '{slug}' already exists.", 409)
    langs = list(dict.fromkeys([language, *(languages or [])]))
    with transaction.atomic():
        project = Project.objects.create(
            slug=slug, name=name or slug, default_time_zone=time_zone, default_language=language, sms_languages=langs
        )
        key = ApiKey.issue(project)
    return project, key


# --- API keys ------------------------------------------------------------------------------------
_KEY_NAME_MAX = 100


def issue_key(project: Project, name: str = "") -> tuple[ApiKey, str]:
    """Another API key for the project; the plain key is returned once (only its hash is kept)."""
    name = name.strip()
    if len(name) > _KEY_NAME_MAX or "\x00" in name:
        raise InputError(errors.INVALID_VALUE, f"A key's name is at most {_KEY_NAME_MAX} characters, without NUL.")
    return ApiKey.issue_row(project, name)


def list_keys(project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project).order_by("pk")


def revoke_key(project: Project, key_id: int) -> ApiKey:
    """Revoke one of the project's keys: it stops working at once. Revoking twice changes nothing."""
    row = ApiKey.objects.filter(project=project, pk=key_id).first()
    if row is None:
        raise InputError(errors.KEY_NOT_FOUND, f"No API key {key_id} in this project.", 404)
    if not row.revoked:
        row.revoked, row.revoked_on = True, timezone.now()
        row.save(update_fields=["revoked", "revoked_on"])
    return row
