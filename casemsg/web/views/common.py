"""What every operator page shares: login, the project from the URL, error-code views, the error pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template import loader

from casemsg.contacts.status import ChannelStatus, ContactStatus, Problem, describe_holder
from casemsg.core import errors
from casemsg.projects import queries as project_queries
from casemsg.projects.models import Project

View = TypeVar("View", bound=Callable[..., HttpResponseBase])
Found = TypeVar("Found")


def staff_required(view: View) -> View:
    """A logged-in user: anonymous visitors go to the login page (settings.LOGIN_URL) and come back
    afterwards. (The old name stays for the views that use it.) What the user may see and do in a project
    is their role there, checked for every project page by casemsg.web.access, not here."""
    return login_required(view)


login_required_page = staff_required


# --- the error pages (handler403/404/500 in casemsg.urls) ------------------------------------------
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "web/errors/403.html", {"reason": str(exception or "")}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: most often a form left open past a logout or a new login."""
    sentence = "The form was too old (or the browser sent no cookie). Reload the page and try again."
    return render(request, "web/errors/403.html", {"reason": sentence}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The exception's text is not shown: it may name a URL pattern or a lookup.
    return render(request, "web/errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Rendered without the request's context: the failure may be the database the context needs. No
    # detail of the error is shown (it is in the log).
    return HttpResponseServerError(loader.get_template("web/errors/500.html").render({}))


def project_or_404(slug: str) -> Project:
    """Every page is scoped to the project in its URL; all lookups below filter on it."""
    return found_or_404(project_queries.project(slug))


def found_or_404(found: Found | None) -> Found:
    """What an area's lookup found (scoped to the page's project), or the 404 page."""
    if found is None:
        raise Http404
    return found


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def paginate(request: HttpRequest, items, per_page: int) -> Page:
    # get_page() turns a bad or out-of-range ?page= into the first or last page instead of an error.
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def valid_filters(form: Form) -> dict[str, Any]:
    """The filter fields that validated: a bad one shows its error on the page and is ignored, so the
    rest of the filters still apply."""
    if not form.is_bound:
        return {}
    form.is_valid()
    return form.cleaned_data


def with_query(url: str, **params: str | int) -> str:
    return f"{url}?{urlencode(params)}"


def query_without_page(request: HttpRequest) -> str:
    """The current filters as a query string, so pagination links keep them."""
    q = request.GET.copy()
    q.pop("page", None)
    return q.urlencode()


@dataclass
class ErrorView:
    """A catalogue code as a page shows it: code, title, and the specific detail and fix when known."""

    code: str
    title: str
    description: str
    fix: str
    detail: str = ""
    delay: bool = False


def error_view(code: str, detail: str = "", fix: str | None = None) -> ErrorView:
    e = errors.CATALOGUE.get(code)
    if e is None:
        # A code outside the catalogue (e.g. from an older row) must still render, not break the page.
        return ErrorView(code=code, title=code, description="", fix=fix or "", detail=detail)
    return ErrorView(
        code=e.code, title=e.title, description=e.description, fix=fix or e.fix, detail=detail, delay=e.delay
    )


def problem_view(p: Problem) -> ErrorView:
    return error_view(p.code, detail=p.detail or "", fix=p.fix)


@dataclass
class ChannelView:
    name: str
    ok: bool
    error: ErrorView | None


def channel_views(st: ContactStatus) -> list[ChannelView]:
    def one(name: str, ch: ChannelStatus) -> ChannelView:
        return ChannelView(name, ch.ok, problem_view(ch.error) if ch.error else None)

    return [one("SMS", st.sms), one("Two-way SMS", st.two_way_sms), one("Email", st.email)]


@dataclass
class StatusView:
    """A contact's full status for a detail page: every channel, every problem with its fix."""

    channels: list[ChannelView]
    warnings: list[ErrorView]
    phone_number: str | None
    verified: bool
    two_way: bool
    two_way_owner: str | None
    needs_consent: bool
    email_address: str
    time_zone: str
    time_zone_source: str
    language_code: str
    language_source: str
    gateway: str | None


def status_view(st: ContactStatus) -> StatusView:
    owner = None
    if st.two_way_owner is not None:
        owner = describe_holder(st.two_way_owner, st.contact.project_id)
    return StatusView(
        channels=channel_views(st),
        warnings=[problem_view(w) for w in st.warnings],
        phone_number=st.phone_number,
        verified=st.verified,
        two_way=st.two_way,
        two_way_owner=owner,
        needs_consent=st.needs_consent,
        email_address=st.email_address,
        time_zone=st.time_zone,
        time_zone_source=st.time_zone_source,
        language_code=st.language_code,
        language_source=st.language_source,
        gateway=st.gateway,
    )


def attach_project(contacts: Sequence, project: Project) -> None:
    """contacts.status reads `contact.project`; the page already has it, so spare one query per row."""
    for c in contacts:
        c.project = project
