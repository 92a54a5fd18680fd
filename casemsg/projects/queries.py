"""Reading projects: a project by its slug, an API key by the key, a member, and a project's audit log (the
list the API, the page and the CLI show, and its CSV export)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from casemsg.core import spreadsheet
from casemsg.projects.models import ApiKey, AuditEntry, Project, hash_key

CSV_HEADER = ("at_utc", "source", "who", "setting", "before", "after", "weakens_legal_rule")


def project(slug: str) -> Project | None:
    """The project of this slug (the pages' URLs and the CLI's --project name it), or None."""
    return Project.objects.filter(slug=slug).first()


def projects() -> QuerySet[Project]:
    """Every project of the installation, by slug (the CLI's list)."""
    return Project.objects.order_by("slug")


def live_key(key: str) -> ApiKey | None:
    """The unrevoked API key row of this plain key, with its project; None for an unknown or revoked key."""
    return ApiKey.objects.select_related("project").filter(key_hash=hash_key(key), revoked=False).first()


def member(project: Project, user_id: int) -> AbstractBaseUser | None:
    """The user of this id when they are a member of the project (any role), else None."""
    return get_user_model().objects.filter(pk=user_id, memberships__project=project).first()


def audit_log(
    project: Project, setting: str = "", since: datetime | None = None, until: datetime | None = None
) -> QuerySet[AuditEntry]:
    """The project's audit entries, newest first; `setting` keeps one setting's (or api_key's)."""
    qs = AuditEntry.objects.filter(project=project)
    if setting:
        qs = qs.filter(setting=setting)
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    return qs.order_by("-at", "-id")


def shown(value: Any) -> str:
    """A before/after value as one line of text: JSON, except a plain string; "" for none."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def csv_row(e: AuditEntry) -> tuple[str, ...]:
    return (
        e.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        e.source,
        e.who,
        e.setting,
        shown(e.before),
        shown(e.after),
        "yes" if e.weakens else "no",
    )


def csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The CSV export, line by line (header first), every cell safe in a spreadsheet (casemsg.core.spreadsheet:
    a `who` or a word typed as "=cmd…" is shown as text, never run)."""
    return spreadsheet.csv_lines(CSV_HEADER, (csv_row(e) for e in entries))
