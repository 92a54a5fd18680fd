"""Who may do what on the pages: one table, checked in one place for every page of a project.

Every page whose URL names a project (`/projects/<slug>/…`, the `slug` keyword of casemsg.web.urls) passes
through ProjectAccessMiddleware before its view runs:

- an anonymous visitor is sent to the login page and brought back afterwards;
- a user without a role in the project gets 404, the same answer as for a project that does not exist, so
  other projects cannot even be discovered;
- a role below what RULES asks for the URL name and the request method gets 403.

Views can rely on `request.project` (the Project) and `request.project_role`; templates get `project_role`,
`can_edit` and `is_owner` from role_context, to hide the forms and buttons a role may not use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from casemsg.projects import queries as project_queries
from casemsg.projects.models import Membership
from casemsg.projects.services import role_of, role_rank

VIEWER, EDITOR, OWNER = Membership.VIEWER, Membership.EDITOR, Membership.OWNER
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# (role to read, role to change) per URL name of the `web` namespace. Reading is GET/HEAD/OPTIONS; every
# other method changes something. A URL name not listed here takes DEFAULT.
DEFAULT: tuple[str, str] = (VIEWER, EDITOR)
OWNER_WRITES: tuple[str, str] = (VIEWER, OWNER)
OWNER_ONLY: tuple[str, str] = (OWNER, OWNER)
RULES: dict[str, tuple[str, str]] = {
    # what only an owner may change: the project's settings, gateways and routes, its members
    "settings": OWNER_WRITES,
    "gateways": OWNER_WRITES,
    "gateway": OWNER_WRITES,
    "gateway_new": OWNER_WRITES,
    "gateway_test": OWNER_WRITES,
    "routes": OWNER_WRITES,
    "members": OWNER_WRITES,
    # API keys act for the whole project (every role's power): even their list is the owners' business
    "api_keys": OWNER_ONLY,
    # who changed which setting or key: the owners' business too (as the API's admin scope)
    "settings_audit": OWNER_ONLY,
    "settings_audit_csv": OWNER_ONLY,
}


def required_role(url_name: str | None, method: str) -> str:
    """The least role that may make this request."""
    read, write = RULES.get(url_name or "", DEFAULT)
    return read if method.upper() in SAFE_METHODS else write


class ProjectAccessMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or match.namespace != "web" or "slug" not in view_kwargs:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        project = project_queries.project(view_kwargs["slug"])
        role = role_of(request.user, project) if project is not None else None
        if project is None or role is None:
            raise Http404("No such project.")
        request.project = project  # type: ignore[attr-defined]
        request.project_role = role  # type: ignore[attr-defined]
        needed = required_role(match.url_name, request.method or "GET")
        if role_rank(role) < role_rank(needed):
            raise PermissionDenied(f"This needs the {needed} role in {project.slug}; you are {role}.")
        return None


def role_context(request: HttpRequest) -> dict[str, Any]:
    """What templates need to show a role only what it may use."""
    role = getattr(request, "project_role", None)
    return {
        "project_role": role,
        "can_edit": role_rank(role) >= role_rank(EDITOR),
        "is_owner": role_rank(role) >= role_rank(OWNER),
    }
