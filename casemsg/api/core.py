"""The API's shared parts: the Ninja instance, bearer-key auth scoped to one project, and errors shaped
as {"error": {"code": …, "message": …}} everywhere."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from casemsg.core.errors import InputError
from casemsg.projects.models import ApiKey, Project, hash_key


class ProjectKey(HttpBearer):
    """`Authorization: Bearer KEY`; a key belongs to exactly one project."""

    def authenticate(self, request: HttpRequest, token: str) -> Project | None:
        row = ApiKey.objects.select_related("project").filter(key_hash=hash_key(token), revoked=False).first()
        return row.project if row else None


api = NinjaAPI(
    title="casemsg API",
    version="1",
    description="Case-based SMS and email messaging. Authenticate with `Authorization: Bearer KEY`; "
    "a key reaches only its own project.",
    auth=ProjectKey(),
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
        request, error_body("VALIDATION_ERROR", "; ".join(parts) or "Invalid request."), status=422
    )


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return api.create_response(
        request,
        error_body("UNAUTHENTICATED", "Send a valid project API key as 'Authorization: Bearer KEY'."),
        status=401,
    )


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return api.create_response(request, error_body("HTTP_ERROR", str(exc)), status=exc.status_code)


def project_for(request: HttpRequest, slug: str) -> Project:
    """The path's project, which must be the key's own: a key never reaches another project."""
    project: Project = request.auth
    if project.slug != slug:
        raise InputError("FORBIDDEN", "This API key does not give access to that project.", 403)
    # PostgreSQL cannot compare with a string holding NUL (psycopg refuses it): answer 422 on every
    # database alike rather than a 500 on one of them. Bodies are checked by the services.
    if "\x00" in request.path or any("\x00" in k + "".join(v) for k, v in request.GET.lists()):
        raise InputError("INVALID_VALUE", "The URL contains a NUL character.", 422)
    return project


def page(qs, limit: int, offset: int, max_limit: int = 1000):
    """One page of a list, after checking the paging parameters (a negative offset must be a 422, not
    Django's "negative indexing" error and a 500)."""
    if not 1 <= limit <= max_limit or offset < 0:
        raise InputError("VALIDATION_ERROR", f"limit must be 1–{max_limit:,} and offset ≥ 0.")
    return qs[offset : offset + limit]
