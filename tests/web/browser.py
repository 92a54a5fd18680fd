"""Helpers for the browser tests: Debian's Chromium through Playwright, logged in through casemsg's own login page.

from tests.web.browser import CHROMIUM_MISSING, browser_session, login, assert_no_overflow, ...

pytestmark = CHROMIUM_MISSING
sync_api = pytest.importorskip("playwright.sync_api")

@pytest.mark.django_db(transaction=True)
def test_x(live_server):
    ...  # every ORM call before Playwright starts: its sync API runs an event loop in this thread
    with browser_session() as browser:
        page = new_page(browser, PHONE)
        outside = watch_external_requests(page)
        login(page, live_server, "ann", "pw-ann-1")
        page.goto(live_server.url + "/projects/p/")
        assert_no_overflow(page)
        assert_every_field_labelled(page)
        assert outside == []
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.urls import Resolver404, URLPattern, resolve, reverse

from casemsg.web import urls as web_urls

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
LOGIN_PATH = "/accounts/login/"

# Put `pytestmark = CHROMIUM_MISSING` in a browser test module.
CHROMIUM_MISSING = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
)


@contextmanager
def browser_session() -> Iterator[Any]:
    """A headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright  # optional (dev) dependency: import only when used

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, viewport: dict[str, int] = DESKTOP) -> Any:
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(15_000)
    return page


def login(page: Any, live_server: Any, username: str, password: str) -> None:
    """Log in through casemsg's login page and wait until it has sent us on."""
    page.goto(f"{live_server.url}{LOGIN_PATH}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form#login button[type=submit]")
    page.wait_for_url(lambda url: LOGIN_PATH not in url)


def watch_external_requests(page: Any) -> list[str]:
    """Record (and abort) every request the page makes to anywhere but 127.0.0.1/localhost; the returned
    list fills as the page loads. Aborting keeps a test from waiting on the outside world."""
    outside: list[str] = []

    def check(route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", check)
    return outside


_CSP_LISTENER = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile || ''}:${e.lineNumber}`));"""


def watch_csp_violations(page: Any) -> list[str]:
    """Record every Content-Security-Policy violation the page's documents report (what the browser refused
    to run or apply), with the page's URL; the returned list fills as pages load. Chromium reports each as a
    console error and as a securitypolicyviolation event: both are listened to."""
    seen: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            seen.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.add_init_script(_CSP_LISTENER)
    return seen


def csp_events(page: Any) -> list[str]:
    """The securitypolicyviolation events of the current document (after watch_csp_violations)."""
    return [f"{page.url}: {v}" for v in page.evaluate("window.__cspViolations || []")]


def overflow(page: Any) -> tuple[int, int]:
    """(scrollWidth, innerWidth) of the document: a page scrolls sideways when the first is larger."""
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return int(width), int(inner)


def assert_no_overflow(page: Any) -> None:
    # the stylesheet decides the widths: measure once it has loaded (a selector can match before that)
    page.wait_for_load_state("load")
    width, inner = overflow(page)
    if width > inner:
        culprits = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                 .filter(e => { for (let p = e.parentElement; p; p = p.parentElement) {
                     if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return false; }
                   return true; })
                 .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                    + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''))"""
        )
        raise AssertionError(f"{page.url} is {width}px wide at a {inner}px viewport; too wide: {culprits}")


UNLABELLED_JS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => !['hidden', 'submit', 'button', 'reset', 'image'].includes(e.type))
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')
               && !e.getAttribute('title'))
  .map(e => e.outerHTML.slice(0, 120))"""


def unlabelled_fields(page: Any) -> list[str]:
    """Every visible-type field without a <label>, aria-label, aria-labelledby or title."""
    return list(page.evaluate(UNLABELLED_JS))


def assert_every_field_labelled(page: Any) -> None:
    missing = unlabelled_fields(page)
    assert not missing, f"{page.url}: fields without a label: {missing}"


# --- every page of a project ---------------------------------------------------------------------
def project_patterns() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(URL name, route, [(converter, kwarg) besides slug]) of every page under /projects/<slug>/ in
    casemsg.web.urls."""
    out = []
    for p in web_urls.urlpatterns:
        route = str(p.pattern)
        if isinstance(p, URLPattern) and "<slug:slug>" in route:
            params = [
                (conv or "str", name) for conv, name in re.findall(r"<(?:(\w+):)?(\w+)>", route) if name != "slug"
            ]
            out.append((p.name or "", route, params))
    return out


_HREF = re.compile(r"""href=["']([^"'#]+)""")


def discover_pages(client: Any, slug: str, ids: dict[str, Any] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """One URL per project page that answers a GET with HTML, for a logged-in test client (run it before
    Playwright starts). URLs come from reverse() with the ids given, else from the first link to that
    page found on the pages already known. Returns (html pages by URL name, the rest by name with the
    reason: "POST only", "redirect", "fragment", "text/csv", or a failure such as "no link found" or
    "GET … answered 500")."""
    ids = ids or {}
    found: dict[str, str] = {}
    pending: dict[str, list[tuple[str, str]]] = {}
    for name, _route, params in project_patterns():
        if all(k in ids for _c, k in params):
            found[name] = reverse(f"web:{name}", kwargs={"slug": slug, **{k: ids[k] for _c, k in params}})
        else:
            pending[name] = params
    pages: dict[str, str] = {}
    other: dict[str, str] = {}
    seen: set[str] = set()
    queue = list(found.items())
    while queue:
        name, url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        r = client.get(url)
        kind = r.get("Content-Type", "")
        if r.status_code == 405:
            other[name] = "POST only"
            continue
        if r.status_code in (301, 302, 303):
            other[name] = "redirect"
            continue
        if r.status_code != 200:
            other[name] = f"GET {url} answered {r.status_code}"
            continue
        if not kind.startswith("text/html"):
            other[name] = kind.split(";")[0]
            continue
        html = r.content.decode()
        if "<html" not in html[:500].lower():
            other[name] = "fragment"  # a part of a page that htmx swaps in, not a page of its own
            continue
        pages.setdefault(name, url)
        for href in _HREF.findall(html):
            href = href.replace("&amp;", "&").split("?")[0]
            if not href.startswith(f"/projects/{slug}/"):
                continue
            try:
                match = resolve(href)
            except Resolver404:
                continue
            if match.namespace == "web" and match.url_name in pending:
                pending.pop(match.url_name)
                queue.append((match.url_name, href))
    for name, params in pending.items():
        # no link to it: a POST-only endpoint answers 405 at any id; anything else lacks test data
        placeholder = {k: (1 if c == "int" else "x") for c, k in params}
        r = client.get(reverse(f"web:{name}", kwargs={"slug": slug, **placeholder}))
        other[name] = "POST only" if r.status_code == 405 else f"no link found ({', '.join(k for _c, k in params)})"
    return pages, other
