"""What every command looks up by the name a person typed: one wording for "no such project"."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DatabaseError

from casemsg.projects import queries
from casemsg.projects.models import Project


def project(slug: str) -> Project:
    """The project `--project SLUG` names, or a CommandError saying how to find or create one (and what
    to run when the database has not been migrated yet)."""
    try:
        found = queries.project(slug)
    except DatabaseError as exc:
        raise CommandError(f"The database is not ready ({exc}); run `casemsg migrate` first.") from exc
    if found is None:
        raise CommandError(
            f"No project '{slug}'. See `casemsg project list`, or create it with `casemsg project create {slug}`."
        )
    return found
