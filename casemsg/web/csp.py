"""A Content-Security-Policy on every answer: the pages run only casemsg's own files.

Every script and stylesheet is a file under static/ (no inline <script>, no on…= attribute, no <style>
element and no style="…" attribute in any template: `tests/web/test_csp.py` checks the templates, and the
all-pages Chromium test collects every CSP violation the browser reports). So if a value ever escaped its
escaping, the browser still would not run it. Pages may not be framed by another site (frame-ancestors
'none'; X-Frame-Options DENY says the same to older browsers), and forms post only to casemsg itself.

/api/docs (django-ninja's bundled Swagger UI) passes the same policy: its page loads its scripts from files
(swagger-ui-init.js reads its settings from a JSON <script>), and its components set styles through the DOM,
which a policy does not restrict (tests/web/test_browser_csp.py opens it in Chromium).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # the favicon is a data: URL; Chart.js draws on a canvas
        "font-src 'self'",
        "connect-src 'self'",  # htmx's requests
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: the Content-Security-Policy header on every answer that does not set its own."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if HEADER not in response:
            response[HEADER] = POLICY
        return response

    return middleware
