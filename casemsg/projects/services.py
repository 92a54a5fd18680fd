from __future__ import annotations

from django.db import transaction

from casemsg.core import timezones
from casemsg.core.errors import InputError
from casemsg.projects.models import ApiKey, Project


def create_project(
    slug: str, name: str, time_zone: str = "UTC", language: str = "en", languages: list[str] | None = None
) -> tuple[Project, str]:
    """A new project and its first API key (the plain key is returned once; only its hash is kept)."""
    from django.utils.text import slugify

    if not slug or slugify(slug) != slug:
        raise InputError("INVALID_SLUG", f"'{slug}' is not a valid slug: use lowercase letters, digits and dashes.")
    if not timezones.is_valid(time_zone):
        raise InputError("INVALID_TIME_ZONE", f"'{time_zone}' is not an IANA time zone name.")
    if Project.objects.filter(slug=slug).exists():
        raise InputError("PROJECT_EXISTS", f"A project '{slug}' already exists.", 409)
    langs = list(dict.fromkeys([language, *(languages or [])]))
    with transaction.atomic():
        project = Project.objects.create(
            slug=slug, name=name or slug, default_time_zone=time_zone, default_language=language, sms_languages=langs
        )
        key = ApiKey.issue(project)
    return project, key
