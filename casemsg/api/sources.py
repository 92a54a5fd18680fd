"""Case sources (docs/sources.md): a project's sources (CRUD), sync now, their runs and logs, the test
read, the types and their settings; and the receiver URL the sources' systems post to.

A source's config is answered without its secrets (write-only, like gateway secrets: `secrets_set` names
the ones that hold a value); its receiver URL holds the source's secret key, so it goes only to keys with
`write`. The receiver itself takes no project key: its URL's key finds the source, whose type checks its
own authentication (CommCare's Basic authentication when set, `push`'s signature), and a post writes only
to that source's project."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from casemsg.api.core import READ, WRITE, ErrorOut, In, has_scope, paged, project_for
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects.models import WRITE as WRITE_SCOPE
from casemsg.sources import queries, receive, services, tasks
from casemsg.sources.models import Source, SourceRun
from casemsg.sources.registry import SOURCE_TYPES

router = Router(tags=["case sources"])
_TYPES = ", ".join(SOURCE_TYPES)
_MAX_ID = 2**62


class SourceIn(In):
    name: str = Field(max_length=64, description="Unique in the project: letters, digits, '.', '_', '-'.")
    type: str = Field(max_length=32, description=f"The source type: {_TYPES}.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The type's settings and credentials (GET …/source-types lists them)."
    )
    mapping: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=500,
        description='Field mapping rules: [{"from": source field, "to": case property, "transform": {…}}].',
    )
    keep_unmapped: bool = Field(True, description="Keep the fields the mapping does not name, under their own names.")
    case_type: str = Field("", max_length=64, description="The case type the cases get (default: the record's own).")
    interval_minutes: int = Field(15, ge=0, le=10080, description="Minutes between syncs; 0: only when asked.")
    active: bool = True


class SourcePatch(In):
    name: str | None = Field(None, max_length=64)
    config: dict[str, Any] | None = Field(
        None, description="Replaces the config; a secret left out (or empty) keeps its stored value."
    )
    mapping: list[dict[str, Any]] | None = Field(None, max_length=500)
    keep_unmapped: bool | None = None
    case_type: str | None = Field(None, max_length=64)
    interval_minutes: int | None = Field(None, ge=0, le=10080)
    active: bool | None = None


class RunOut(Schema):
    id: int
    kind: str = Field(description="incremental, full, receive (one day of posts) or file.")
    trigger: str
    status: str = Field(description="running, succeeded or failed.")
    started_on: datetime
    finished_on: datetime | None
    pages: int
    records: int
    total: int | None = Field(description="What the source said it would send, when it said.")
    progress: float | None = Field(description="records / total (0–1), when the total is known.")
    created: int
    updated: int
    closed: int
    unchanged: int
    skipped: int
    resumed: int = Field(description="Times another worker went on with this run after its worker stopped.")
    watermark_before: datetime | None
    watermark_after: datetime | None
    error: str | None
    error_detail: str | None


class LogEntry(Schema):
    record: str = Field(description="The record's id (empty for a note about the run).")
    code: str
    reason: str
    page: int | None = None


class RunDetail(RunOut):
    log: list[LogEntry]
    log_dropped: int = Field(description="Log entries not kept (a run keeps 1,000).")


class SourceOut(Schema):
    id: int
    name: str
    type: str
    config: dict[str, Any] = Field(description="The settings, without secrets.")
    secrets_set: list[str] = Field(description="The secret settings that hold a value (never shown).")
    mapping: list[dict[str, Any]]
    keep_unmapped: bool
    case_type: str
    interval_minutes: int
    active: bool
    status: str = Field(description="new, ok or failing.")
    failures: int
    last_error: str | None
    last_error_detail: str | None
    last_run_on: datetime | None
    watermark: datetime | None = Field(description="Every change the source made before this is applied.")
    synced_until: datetime | None
    next_sync_on: datetime | None
    syncing: bool
    receiver_url: str | None = Field(description="Where its system posts cases (keys with write only).")
    last_run: RunOut | None


class SourceList(Schema):
    count: int
    items: list[SourceOut]


class RunList(Schema):
    count: int
    items: list[RunOut]


class SyncIn(In):
    full: bool = Field(False, description="Read everything again, not only what changed since the watermark.")


class FieldOut(Schema):
    name: str
    type: str
    required: bool
    secret: bool
    url: bool
    choices: list[str]
    default: Any = None
    help: str


class TypeOut(Schema):
    type: str
    title: str
    description: str
    reads: bool = Field(description="casemsg reads it on a schedule.")
    receives: bool = Field(description="Its system may post cases to the source's receiver URL.")
    needs_case_type: bool
    config: list[FieldOut]


class SampleOut(Schema):
    record: str
    outcome: str
    case: dict[str, Any] | None


class TestOut(Schema):
    ok: bool
    error: str | None
    message: str
    total: int | None
    records: int
    fields: list[str] = Field(description="The source's field names, as read (what a mapping's `from` names).")
    labels: dict[str, str] = Field(description="Field names as people read them (DHIS2's attributes).")
    targets: list[str] = Field(description="What a mapping's `to` may name: the seeds' contact properties first.")
    counts: dict[str, int] = Field(description="What a sync of these records would do now.")
    sample: list[SampleOut]
    skipped: list[LogEntry]


class ReceiveOut(Schema):
    received: int
    created: int
    updated: int
    closed: int
    unchanged: int
    skipped: int
    errors: list[LogEntry]


def _run(r: SourceRun) -> dict[str, Any]:
    return {
        "id": r.pk,
        "kind": r.kind,
        "trigger": r.trigger,
        "status": r.status,
        "started_on": r.started_on,
        "finished_on": r.finished_on,
        "pages": r.pages,
        "records": r.records,
        "total": r.total,
        "progress": r.progress,
        "created": r.created,
        "updated": r.updated,
        "closed": r.closed,
        "unchanged": r.unchanged,
        "skipped": r.skipped,
        "resumed": r.resumed,
        "watermark_before": r.watermark_before,
        "watermark_after": r.watermark_after,
        "error": r.error or None,
        "error_detail": r.error_detail or None,
    }


def _source(request: HttpRequest, s: Source, last: SourceRun | None) -> dict[str, Any]:
    path = services.receiver_path(s)
    return {
        "id": s.pk,
        "name": s.name,
        "type": s.type,
        "config": services.shown_config(s),
        "secrets_set": services.secrets_set(s),
        "mapping": s.mapping,
        "keep_unmapped": s.keep_unmapped,
        "case_type": s.case_type,
        "interval_minutes": s.interval_minutes,
        "active": s.active,
        "status": s.status,
        "failures": s.failures,
        "last_error": s.last_error or None,
        "last_error_detail": s.last_error_detail or None,
        "last_run_on": s.last_run_on,
        "watermark": s.watermark,
        "synced_until": s.synced_until,
        "next_sync_on": s.next_sync_on,
        "syncing": services.is_syncing(s),
        # the URL holds the source's secret key: keys that may change sources see it, as owners do on the page
        "receiver_url": request.build_absolute_uri(path) if path and has_scope(request, WRITE_SCOPE) else None,
        "last_run": _run(last) if last is not None else None,
    }


def _find(request: HttpRequest, project: str, source_id: int) -> Source:
    p = project_for(request, project)
    if not 0 < source_id < _MAX_ID:
        raise InputError(errors.SOURCE_NOT_FOUND, f"This project has no source {source_id}.", 404)
    return services.find_source(p, source_id)


def _one(request: HttpRequest, s: Source) -> dict[str, Any]:
    return _source(request, s, queries.latest_runs([s.pk]).get(s.pk))


@router.get("/projects/{project}/source-types", auth=READ, response=list[TypeOut])
def source_types(request: HttpRequest, project: str) -> list[dict[str, Any]]:
    """The source types and their settings (what `config` takes)."""
    project_for(request, project)
    return [
        {
            "type": t.type_name,
            "title": t.title,
            "description": t.description,
            "reads": t.pulls,
            "receives": t.receives,
            "needs_case_type": not t.record_case_type,
            "config": [
                {
                    "name": name,
                    "type": f.type,
                    "required": f.required,
                    "secret": f.secret,
                    "url": f.url,
                    "choices": list(f.choices),
                    "default": f.default,
                    "help": f.help,
                }
                for name, f in t.fields().items()
            ],
        }
        for t in SOURCE_TYPES.values()
    ]


@router.post("/projects/{project}/sources", auth=WRITE, response={201: SourceOut})
def add_source(request: HttpRequest, project: str, payload: SourceIn):
    """Add a source; its config is checked against its type, its URLs against internal addresses (422
    SOURCE_URL_NOT_ALLOWED), its mapping (422 INVALID_MAPPING). A source that is read syncs first at once."""
    p = project_for(request, project)
    s = services.add_source(
        p,
        payload.name,
        payload.type,
        payload.config,
        mapping_rules=payload.mapping,
        keep_unmapped=payload.keep_unmapped,
        case_type=payload.case_type,
        interval_minutes=payload.interval_minutes,
        active=payload.active,
    )
    return Status(201, _source(request, s, None))


@router.get("/projects/{project}/sources", auth=READ, response=SourceList)
def list_sources(request: HttpRequest, project: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    p = project_for(request, project)
    listed = paged(queries.sources(p), limit, offset)
    rows = list(listed["items"])
    latest = queries.latest_runs([s.pk for s in rows])
    return {"count": listed["count"], "items": [_source(request, s, latest.get(s.pk)) for s in rows]}


@router.get("/projects/{project}/sources/{source_id}", auth=READ, response=SourceOut)
def get_source(request: HttpRequest, project: str, source_id: int) -> dict[str, Any]:
    return _one(request, _find(request, project, source_id))


@router.patch("/projects/{project}/sources/{source_id}", auth=WRITE, response=SourceOut)
def update_source(request: HttpRequest, project: str, source_id: int, payload: SourcePatch) -> dict[str, Any]:
    """Change what is given; all or nothing. A config replaces the stored one, except that a secret left out
    keeps its value."""
    s = _find(request, project, source_id)
    services.update_source(
        s,
        name=payload.name,
        config=payload.config,
        mapping_rules=payload.mapping,
        keep_unmapped=payload.keep_unmapped,
        case_type=payload.case_type,
        interval_minutes=payload.interval_minutes,
        active=payload.active,
    )
    return _one(request, s)


@router.delete("/projects/{project}/sources/{source_id}", auth=WRITE, response={204: None})
def delete_source(request: HttpRequest, project: str, source_id: int):
    """Delete the source and its runs; the cases it wrote stay."""
    services.delete_source(_find(request, project, source_id))
    return Status(204, None)


@router.post("/projects/{project}/sources/{source_id}/sync", auth=WRITE, response={202: SourceOut})
def sync_source(request: HttpRequest, project: str, source_id: int, payload: SyncIn):
    """Sync now (`full`: read everything again). The worker starts it within a second; follow it in
    `last_run` or …/runs (its `progress`)."""
    s = _find(request, project, source_id)
    tasks.sync_now(s, full=payload.full, by="api")
    s.refresh_from_db()
    return Status(202, _one(request, s))


@router.post("/projects/{project}/sources/{source_id}/test", auth=WRITE, response=TestOut)
def test_source(request: HttpRequest, project: str, source_id: int) -> dict[str, Any]:
    """Connect, read one page of up to 20 records and show them mapped, with the fields read (for the
    mapping) and what a sync of them would do; nothing is written."""
    r = services.test_source(_find(request, project, source_id))
    return {
        "ok": r.ok,
        "error": r.error or None,
        "message": r.message,
        "total": r.total,
        "records": r.records,
        "fields": r.fields,
        "labels": r.labels,
        "targets": r.targets,
        "counts": r.counts,
        "sample": r.sample,
        "skipped": r.skipped,
    }


@router.get("/projects/{project}/sources/{source_id}/runs", auth=READ, response=RunList)
def list_runs(
    request: HttpRequest,
    project: str,
    source_id: int,
    kind: str = "",
    status: str = "",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """The source's runs, newest first (a source keeps its 500 newest)."""
    s = _find(request, project, source_id)
    listed = paged(queries.runs(s, kind=kind[:16], status=status[:16]), limit, offset)
    return {"count": listed["count"], "items": [_run(r) for r in listed["items"]]}


@router.get("/projects/{project}/sources/{source_id}/runs/{run_id}", auth=READ, response=RunDetail)
def get_run(request: HttpRequest, project: str, source_id: int, run_id: int) -> dict[str, Any]:
    """One run with its log: each skipped record's id and reason, and notes (went on after a stop, …)."""
    s = _find(request, project, source_id)
    if not 0 < run_id < _MAX_ID:
        raise InputError(errors.SOURCE_RUN_NOT_FOUND, f"Source {s.pk} has no run {run_id}.", 404)
    r = queries.run(s, run_id)
    return {**_run(r), "log": r.log, "log_dropped": r.log_dropped}


@router.post(
    "/sources/{key}/receive",
    auth=None,
    response={200: ReceiveOut, 400: ErrorOut, 403: ErrorOut, 422: ErrorOut},
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
def receive_cases(request: HttpRequest, key: str):
    """A source's system posts cases here: CommCare's Data Forwarding (one case per post), or the `push`
    type's signed `{"cases": [...]}`. The key in the URL is the source's secret; a post writes only to
    that source's project. 403 for a wrong key or signature."""
    return receive.receive(key, request.body, dict(request.headers))
