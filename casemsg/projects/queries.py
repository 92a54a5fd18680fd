"""Reading a project's audit log: the list the API, the page and the CLI show, and its CSV export."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from casemsg.core import spreadsheet
from casemsg.projects.models import AuditEntry, Project

CSV_HEADER = ("at_utc", "source", "who", "setting", "before", "after", "weakens_legal_rule")


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
