"""Configuring sources (the API, the pages and `casemsg sources` all call these), asking for a sync, and
the test read.

A source's config is checked against its type's schema (`casemsg.sources.base.Field`), its URLs against
internal addresses (`casemsg.core.netguard`, as gateway URLs: 422 SOURCE_URL_NOT_ALLOWED naming the host),
and its mapping (`casemsg.sources.mapping`). Secrets are write-only: an edit that leaves one out keeps the
stored value, and nothing here hands one back (`shown_config`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from casemsg.core import errors, netguard
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.sources import apply, mapping, sync
from casemsg.sources.base import SourceType
from casemsg.sources.client import Client, SourceError
from casemsg.sources.models import Source
from casemsg.sources.registry import SOURCE_TYPES, type_of

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_SOURCES = 50  # per project
MAX_INTERVAL = 7 * 24 * 60  # minutes
_CASE_TYPE = re.compile(r"^[^\x00]{1,64}$")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(errors.VALIDATION_ERROR, "A source name is 1–64 letters, digits, '.', '_' or '-'.")
    return name


def _check_interval(minutes: int) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MAX_INTERVAL:
        raise InputError(
            errors.VALIDATION_ERROR, f"interval_minutes is 0 (only when asked) to {MAX_INTERVAL:,} (a week)."
        )
    return minutes


def _check_case_type(kind: type[SourceType], case_type: str) -> str:
    case_type = (case_type or "").strip()
    if case_type and not _CASE_TYPE.match(case_type):
        raise InputError(errors.VALUE_TOO_LONG, "case_type is at most 64 characters.")
    if not case_type and not kind.record_case_type:
        raise InputError(errors.CASE_TYPE_REQUIRED, f"A {kind.type_name} source needs the case_type its cases get.")
    return case_type


def check_urls(kind: type[SourceType], config: dict[str, Any]) -> None:
    """Refuse URLs that reach internal addresses unless the installation allows them (422 SOURCE_URL_NOT_ALLOWED)."""
    for key in kind.url_keys():
        value = config.get(key) or kind.fields()[key].default
        if not value:
            continue
        try:
            netguard.check_url(
                str(value), allow_private=settings.CASEMSG_GATEWAY_ALLOW_PRIVATE, label=f"The source's {key}"
            )
        except netguard.BlockedAddress as exc:
            raise InputError(errors.SOURCE_URL_NOT_ALLOWED, exc.reason, 422) from exc


def _checked_config(kind: type[SourceType], config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InputError(errors.INVALID_SOURCE_CONFIG, "config must be a JSON object.")
    config = {k: v for k, v in config.items() if not (v is None or v == "")}
    kind.validate_config(config)
    country = str(config.get("default_country") or "").upper()
    if country:
        if country not in phonenumbers.SUPPORTED_REGIONS:
            raise InputError(
                errors.INVALID_SOURCE_CONFIG, f"default_country '{country[:8]}' is not an ISO country code."
            )
        config["default_country"] = country
    check_urls(kind, config)
    return config


def add_source(
    project: Project,
    name: str,
    type_name: str,
    config: dict[str, Any] | None = None,
    *,
    mapping_rules: Any = None,
    keep_unmapped: bool = True,
    case_type: str = "",
    interval_minutes: int = 15,
    active: bool = True,
) -> Source:
    """A new source of the project; its first sync is due at once (when it is read on a schedule: an
    interval of 0 syncs only when asked)."""
    _check_name(name)
    kind = type_of(type_name)
    checked = _checked_config(kind, config or {})
    rules = mapping.dump(mapping.parse(mapping_rules))
    case_type = _check_case_type(kind, case_type)
    _check_interval(interval_minutes)
    taken = f"This project already has a source named '{name}'."
    with transaction.atomic():
        if Source.objects.filter(project=project).count() >= MAX_SOURCES:
            raise InputError(errors.VALIDATION_ERROR, f"A project has at most {MAX_SOURCES} sources.")
        if Source.objects.filter(project=project, name=name).exists():
            raise InputError(errors.SOURCE_EXISTS, taken, 409)
        try:
            with transaction.atomic():
                return Source.objects.create(
                    project=project,
                    name=name,
                    type=type_name,
                    config=checked,
                    mapping=rules,
                    keep_unmapped=keep_unmapped,
                    case_type=case_type,
                    interval_minutes=interval_minutes,
                    active=active,
                    created_on=timezone.now(),
                    next_sync_on=timezone.now() if kind.pulls and active and interval_minutes else None,
                )
        except IntegrityError as exc:  # the same name added at the same moment
            raise InputError(errors.SOURCE_EXISTS, taken, 409) from exc


def update_source(
    source: Source,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    mapping_rules: Any = None,
    keep_unmapped: bool | None = None,
    case_type: str | None = None,
    interval_minutes: int | None = None,
    active: bool | None = None,
) -> Source:
    """Change what is given, checked like a new source's; all of it or nothing. A config replaces the
    stored one, except that a secret left out (or empty) keeps its stored value."""
    kind = type_of(source.type)
    if name is not None and name != source.name:
        _check_name(name)
        if Source.objects.filter(project_id=source.project_id, name=name).exclude(pk=source.pk).exists():
            raise InputError(errors.SOURCE_EXISTS, f"This project already has a source named '{name}'.", 409)
        source.name = name
    if config is not None:
        if not isinstance(config, dict):
            raise InputError(errors.INVALID_SOURCE_CONFIG, "config must be a JSON object.")
        source.config = _checked_config(kind, kind.merged_config(config, source.config or {}))
    if mapping_rules is not None:
        source.mapping = mapping.dump(mapping.parse(mapping_rules))
    if keep_unmapped is not None:
        source.keep_unmapped = keep_unmapped
    if case_type is not None:
        source.case_type = _check_case_type(kind, case_type)
    if interval_minutes is not None:
        source.interval_minutes = _check_interval(interval_minutes)
    if active is not None:
        source.active = active
    if active is not None or interval_minutes is not None:
        if not (kind.pulls and source.active and source.interval_minutes):
            source.next_sync_on = None  # paused, or only when asked
        elif source.next_sync_on is None:
            source.next_sync_on = timezone.now()  # (re)started: its first sync at once
    try:
        with transaction.atomic():
            source.save()
    except IntegrityError as exc:
        raise InputError(
            errors.SOURCE_EXISTS, f"This project already has a source named '{source.name}'.", 409
        ) from exc
    return source


def delete_source(source: Source) -> None:
    """Deletes the source and its runs; the cases it wrote stay."""
    source.delete()


def find_source(project: Project, source_id: int) -> Source:
    found = Source.objects.select_related("project").filter(project=project, pk=source_id).first()
    if found is None:
        raise InputError(errors.SOURCE_NOT_FOUND, f"This project has no source {source_id}.", 404)
    return found


def shown_config(source: Source) -> dict[str, Any]:
    kind = SOURCE_TYPES.get(source.type)
    return kind.shown_config(source.config or {}) if kind is not None else {}


def secrets_set(source: Source) -> list[str]:
    """The secret keys that hold a value (their values are never shown)."""
    kind = SOURCE_TYPES.get(source.type)
    return [k for k in (kind.secret_keys() if kind else []) if (source.config or {}).get(k)]


def receiver_path(source: Source) -> str | None:
    """Where the source's system posts cases (the path holds the source's secret key), or None."""
    kind = SOURCE_TYPES.get(source.type)
    if kind is None or not kind.receives:
        return None
    return f"/api/v1/sources/{source.receive_key}/receive"


def request_sync(source: Source, *, full: bool = False, by: str = "") -> Source:
    """Ask for a sync now (a full one with `full`): the worker's ticker starts it within a second."""
    kind = type_of(source.type)
    if not kind.pulls:
        raise InputError(
            errors.VALIDATION_ERROR, f"A {kind.type_name} source is not read by casemsg: its system posts to it."
        )
    if not source.active:
        raise InputError(errors.VALIDATION_ERROR, "The source is paused; make it active first.")
    sync.request(source, full)
    if by:
        Source.objects.filter(pk=source.pk).update(requested_by=by[:16])
    return source


def is_syncing(source: Source) -> bool:
    return bool(source.lease_token) and source.lease_until is not None and source.lease_until > timezone.now()


# --- the test read ---------------------------------------------------------------------------------
@dataclass
class TestResult:
    ok: bool
    error: str = ""
    message: str = ""
    total: int | None = None
    records: int = 0
    fields: list[str] = field(default_factory=list)  # the source's field names, as read
    labels: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)  # what a mapping may name: the seeds' properties first
    counts: dict[str, int] = field(default_factory=dict)  # what a sync of these records would do
    sample: list[dict[str, Any]] = field(default_factory=list)  # records as they would be written
    skipped: list[dict[str, Any]] = field(default_factory=list)


TEST_PAGE = 20


def test_source(source: Source, timeout: float = 15.0) -> TestResult:
    """Connect, read one small page (of everything, as a first sync would) and map it; writes nothing."""
    kind = SOURCE_TYPES.get(source.type)
    if kind is None:
        return TestResult(False, errors.UNKNOWN_SOURCE_TYPE, f"Unknown source type '{source.type}'.")
    if not kind.pulls:
        return TestResult(True, message="This source is not read: its system posts cases to the receiver URL.")
    with Client(timeout=timeout, attempts=2, max_wait=5.0) as http:
        reader = kind(source, http)
        reader.config["page_size"] = TEST_PAGE
        try:
            page = reader.page(reader.first(None))
        except SourceError as exc:
            return TestResult(False, exc.code, sync.scrubbed(source, exc.message))
    try:
        outcome = apply.apply_records(source, page.records, write=False)
    except InputError as exc:
        return TestResult(False, exc.code, exc.message)
    names: list[str] = []
    labels: dict[str, str] = {}
    for rec in page.records:
        names += [k for k in rec.fields if k not in names]
        labels.update(rec.labels)
    sample = []
    for rec in page.records[:TEST_PAGE]:
        change = outcome.changes.get(rec.id)
        sample.append(
            {
                "record": rec.id,
                "outcome": outcome.outcomes.get(rec.id, ""),
                "case": None
                if change is None
                else {
                    "case_id": change.case_id,
                    "case_type": change.case_type,
                    "name": change.name,
                    "owner_id": change.owner_id,
                    "parent_id": change.parent_id,
                    "closed": change.closed,
                    "properties": dict(change.properties),
                },
            }
        )
    return TestResult(
        True,
        total=page.total,
        records=len(page.records),
        fields=names,
        labels=labels,
        targets=mapping.targets_offered(names),
        counts=outcome.as_counts(),
        sample=sample,
        skipped=outcome.log,
    )


def lease_left(source: Source) -> timedelta | None:
    if not is_syncing(source) or source.lease_until is None:
        return None
    return source.lease_until - timezone.now()
