"""The API's shared parts: the Ninja instance, bearer-key auth scoped to one project, input schemas
that refuse what the database cannot hold, one way to page a list, and errors shaped as
{"error": {"code": …, "message": …}} everywhere — documented in the OpenAPI for every operation."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.security import HttpBearer
from pydantic import model_validator

from casemsg.core import actor, errors, uploads
from casemsg.core.errors import InputError
from casemsg.projects import models as project_models
from casemsg.projects import queries as project_queries
from casemsg.projects import services as project_services
from casemsg.projects.models import ApiKey, Project


class ProjectKey(HttpBearer):
    """`Authorization: Bearer KEY`; a key belongs to exactly one project and has scopes.

    Every operation that takes a key declares the scope it needs by its auth: `auth=READ`, `SEND`, `WRITE`
    or `ADMIN` (below). A key without that scope is refused with 403 INSUFFICIENT_SCOPE before the handler
    runs. The API's default auth, for an operation that declares nothing, has no scope and refuses every
    key: a forgotten declaration closes the operation rather than opening it (and
    tests/api/test_scopes.py fails)."""

    def __init__(self, scope: str | None = None) -> None:
        if scope is not None and scope not in project_models.SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> Project | None:
        row = project_queries.live_key(token)
        if row is None:
            return None
        actor.set_current(actor.Actor("api", row.described()))
        request.casemsg_key = row  # type: ignore[attr-defined]  # for has_scope()
        if self.scope is None:
            raise InputError(errors.INSUFFICIENT_SCOPE, "This operation declares no scope; no key may call it.", 403)
        if not row.has_scope(self.scope):
            have = ", ".join(row.scopes or []) or "none"
            raise InputError(
                errors.INSUFFICIENT_SCOPE,
                f"This API key lacks the '{self.scope}' scope this operation needs (it has: {have}).",
                403,
            )
        project_services.note_key_used(row)
        return row.project


# The scope each operation declares (`@router.get(..., auth=READ)`).
READ = ProjectKey(project_models.READ)
SEND = ProjectKey(project_models.SEND)
WRITE = ProjectKey(project_models.WRITE)
ADMIN = ProjectKey(project_models.ADMIN)


def has_scope(request: HttpRequest, scope: str) -> bool:
    """Whether the request's key has this scope too (for a rule inside an operation: a settings change that
    weakens a legal rule needs admin)."""
    row: ApiKey | None = getattr(request, "casemsg_key", None)
    return row is not None and row.has_scope(scope)


class ErrorDetail(Schema):
    code: str = Field(description="A code of the error catalogue (GET /api/v1/errors).")
    message: str = Field(description="What is wrong, in a sentence.")


class ErrorOut(Schema):
    error: ErrorDetail


# --- input ----------------------------------------------------------------------------------------
def _refuse_unstorable(value: Any, where: str = "", codes: dict[str, str] | None = None) -> None:
    """NUL cannot be stored by PostgreSQL and a lone surrogate cannot be encoded: refuse both, in any
    string of a body, before a service or the database sees them. So with NaN and ±Infinity, which
    Python's JSON parser accepts but no JSON column stores."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(errors.INVALID_VALUE, f"{where or 'A value'} is {value}: only finite numbers are accepted.")
    if isinstance(value, str):
        problem = "a NUL character" if "\x00" in value else "an unpaired surrogate (not valid Unicode)"
        if "\x00" in value or _SURROGATE.search(value):
            # the innermost named field that has a code of its own decides (cases[0].properties.x → properties)
            names = [n for n in re.split(r"[.\[\]]", where) if n and not n.isdigit()]
            code = next((codes[n] for n in reversed(names) if codes and n in codes), errors.INVALID_VALUE)
            raise InputError(code, f"{where or 'A value'} contains {problem}.")
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_unstorable(k, f"a key of {where}" if where else "a key", codes)
            _refuse_unstorable(v, f"{where}.{k}" if where else str(k), codes)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _refuse_unstorable(v, f"{where}[{i}]", codes)


_SURROGATE = re.compile("[\ud800-\udfff]")


class In(Schema):
    """Every request body's schema: unknown fields are refused (a misspelt field is a 422 naming it, not
    silently ignored), and so are NUL characters, unpaired surrogates and NaN/Infinity anywhere in it (422
    INVALID_VALUE, or the field's own code in `field_codes`). Give each string field a `max_length`
    matching its column."""

    model_config = {**Schema.model_config, "extra": "forbid"}
    # The code a field's unstorable value answers with, where its service has a more precise one than
    # INVALID_VALUE (a case property: INVALID_PROPERTY; a phone number: INVALID_PHONE_NUMBER).
    field_codes: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        _refuse_unstorable(data if isinstance(data, dict | list) else None, "", cls.field_codes)
        return data


# --- paging ---------------------------------------------------------------------------------------
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000


def page(qs: Any, limit: int, offset: int) -> Any:
    """One page of a list: every list endpoint answers {count, items} and takes `limit` (1–500) and
    `offset` (0–10,000,000); anything else is a 422, never a database error."""
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise InputError(errors.VALIDATION_ERROR, f"limit must be 1–{MAX_LIMIT} and offset 0–{MAX_OFFSET:,}.")
    return qs[offset : offset + limit]


def paged(qs: Any, limit: int, offset: int) -> dict[str, Any]:
    """The one shape of every list: {"count": all matching, "items": this page}."""
    items = page(qs, limit, offset)
    return {"count": qs.count() if hasattr(qs, "count") and not isinstance(qs, list) else len(qs), "items": items}


def utc(value: datetime | None, name: str) -> datetime | None:
    """A time from a query parameter, in UTC: an offset PostgreSQL does not take (+16:42) or a time out
    of range is a 422, not a database error. A time without an offset is read as UTC."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (OverflowError, ValueError) as exc:
        raise InputError(errors.VALIDATION_ERROR, f"{name} is out of range.") from exc


class _ScopedSchema(OpenAPISchema):
    """Ninja's OpenAPI document, with each operation's scope in its security requirement
    ({"ProjectKey": ["write"]}, as OpenAPI 3.1 allows for any scheme)."""

    def operation_security(self, operation: Operation) -> list[dict[str, Any]] | None:
        result = super().operation_security(operation)
        scopes = [a.scope for a in operation.auth_callbacks if isinstance(a, ProjectKey) and a.scope]
        if result and scopes:
            return [{name: scopes} for item in result for name in item]
        return result


def _operation_scope(op: dict[str, Any]) -> str | None:
    """The scope an operation of the OpenAPI document declares, None for one without a key."""
    for requirement in op.get("security") or []:
        for scopes in requirement.values():
            if scopes:
                return str(scopes[0])
    return None


class CasemsgAPI(NinjaAPI):
    """Documents, on every operation, the scope it needs and the errors it can answer with (all in the
    ErrorOut shape)."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> Any:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        schema = _ScopedSchema(self, path_prefix)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
        components["ErrorOut"] = {
            "type": "object",
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
            "required": ["error"],
        }
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                codes = {422: "Invalid input (VALIDATION_ERROR and other input codes)."}
                if op.get("requestBody"):
                    codes[400] = "The body could not be read: not JSON, or not UTF-8 (HTTP_ERROR)."
                    codes[413] = "The body is larger than the API takes (REQUEST_TOO_LARGE)."
                if op.get("security"):
                    codes[401] = "No valid API key (UNAUTHENTICATED)."
                scope = _operation_scope(op)
                if scope:
                    codes[403] = f"The key lacks the '{scope}' scope (INSUFFICIENT_SCOPE)."
                    op["x-casemsg-scope"] = scope
                    note = f"Needs an API key with the `{scope}` scope."
                    op["description"] = f"{op['description']}\n\n{note}" if op.get("description") else note
                if "{project}" in path:
                    codes[403] = "The key belongs to another project (FORBIDDEN)" + (
                        f", or lacks the '{scope}' scope (INSUFFICIENT_SCOPE)." if scope else "."
                    )
                if "{project}" in path:
                    # a path id, or an id in the body (a case, a mobile worker, a survey), may name nothing
                    codes[404] = "Not found in this project."
                if path.startswith(("/api/v1/gateways/",)):
                    codes.update({400: "A body the provider format does not allow.", 403: "Unknown gateway or key."})
                    codes[404] = "Unknown gateway."
                responses = op.setdefault("responses", {})
                declared = {int(c) for c in responses}
                for code, text in codes.items():
                    if code not in declared:
                        responses[code] = {"description": text, **ref}
                for code, resp in responses.items():
                    if 400 <= int(code) < 500 and "content" not in resp:
                        resp.update(ref)
                _ = method
        return schema


api = CasemsgAPI(
    title="casemsg API",
    version="1",
    description="Case-based SMS and email messaging. Authenticate with `Authorization: Bearer KEY`; "
    "a key reaches only its own project, and only the operations its scopes allow (read, send, write, admin: "
    "each operation names the one it needs).",
    auth=ProjectKey(),  # no scope: an operation must declare its own (auth=READ, SEND, WRITE or ADMIN)
    urls_namespace="api",
    docs_url="/docs",
)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


@api.exception_handler(InputError)
def _input_error(request, exc: InputError):
    return api.create_response(request, error_body(exc.code, exc.message), status=exc.status)


@api.exception_handler(NinjaValidationError)
def _validation_error(request, exc: NinjaValidationError):
    parts = []
    for e in exc.errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "payload"))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return api.create_response(
        request, error_body(errors.VALIDATION_ERROR, "; ".join(parts) or "Invalid request."), status=422
    )


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return api.create_response(
        request,
        error_body(errors.UNAUTHENTICATED, "Send a valid project API key as 'Authorization: Bearer KEY'."),
        status=401,
    )


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return api.create_response(request, error_body(errors.HTTP_ERROR, str(exc)), status=exc.status_code)


def project_for(request: HttpRequest, slug: str) -> Project:
    """The path's project, which must be the key's own: a key never reaches another project."""
    project: Project = request.auth  # type: ignore[attr-defined]  # set by Ninja's auth (ProjectKey)
    if project.slug != slug:
        raise InputError(errors.FORBIDDEN, "This API key does not give access to that project.", 403)
    # PostgreSQL cannot compare with a string holding NUL (psycopg refuses it): answer 422 on every
    # database alike rather than a 500 on one of them. Bodies are checked by the services.
    if "\x00" in request.path or any("\x00" in k + "".join(v) for k, v in request.GET.lists()):
        raise InputError(errors.INVALID_VALUE, "The URL contains a NUL character.", 422)
    return project


# --- errors outside the API's own views -------------------------------------------------------------
# A non-JSON error under /api/ (Django's or a middleware's HTML or text) becomes this code.
_CODE_BY_STATUS = {
    400: (errors.HTTP_ERROR, "The request could not be read."),
    403: (errors.FORBIDDEN, "This request is not allowed."),
    413: (errors.REQUEST_TOO_LARGE, "The request's body is too large."),
}


def _exception_body(exc: Exception) -> tuple[int, dict] | None:
    """An exception Django raises while reading a request's body, in the API's error shape."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, error_body(errors.REQUEST_TOO_LARGE, f"A request body may be at most {limit:,} bytes.")
    if isinstance(exc, MultiPartParserError | BadRequest | SuspiciousOperation):
        return 400, error_body(errors.HTTP_ERROR, f"The request could not be read: {exc}")
    return None


def json_errors(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: under /api/, every refused request answers JSON in the API's error shape with a catalogue
    code, never Django's HTML or plain text: a 404 of an unknown path, a 405 of a wrong method, a body that
    cannot be read (400 HTTP_ERROR), any other 4xx. A body over the limits (413 REQUEST_TOO_LARGE) or a
    multipart body without a boundary (400) is refused at the door, from its headers, before anything —
    the provider webhooks' fast path included — reads it (casemsg.core.uploads.body_refusal)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return get_response(request)
        refused = uploads.body_refusal(
            request.content_type or "", dict(request.content_params or {}), request.META.get("CONTENT_LENGTH")
        )
        if refused is not None:
            status, code, message = refused
            return JsonResponse(error_body(code, message), status=status)
        response = get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code == 404:
            body = error_body(errors.NOT_FOUND, f"There is no API endpoint at {request.path}.")
        elif response.status_code == 405:
            allowed = response.get("Allow", "")
            body = error_body(
                errors.METHOD_NOT_ALLOWED, f"{request.method} is not allowed here; use {allowed or 'another method'}."
            )
        elif response.status_code >= 500:
            return response  # a fault of casemsg, not of the request: no request-error code describes it
        else:
            code, message = _CODE_BY_STATUS.get(response.status_code, _CODE_BY_STATUS[400])
            body = error_body(code, message)
        out = JsonResponse(body, status=response.status_code)
        if response.has_header("Allow"):
            out["Allow"] = response["Allow"]
        return out

    def process_exception(request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """A view's exception while reading the body (Ninja lets these through), answered in JSON."""
        if not request.path.startswith("/api/"):
            return None
        answer = _exception_body(exc)
        return None if answer is None else JsonResponse(answer[1], status=answer[0])

    middleware.process_exception = process_exception  # type: ignore[attr-defined]  # Django calls it
    return middleware
