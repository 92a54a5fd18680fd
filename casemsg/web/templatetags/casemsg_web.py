"""Template filters and tags for the operator pages.

`{% when value %}` is the one way a page shows a time (tests/web/test_times_rule.py fails on a template that
prints a datetime any other way): the instant on the project's clock, labelled with its zone —
``<time datetime="2026-12-07T11:05:00+00:00">2026-12-07 14:05 EAT</time>``. The words come from
`casemsg.core.wallclock.shown`, which the CLI listings use too; the API stays UTC ISO 8601.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from casemsg.core import wallclock
from casemsg.web.views.common import ErrorView, error_view

register = template.Library()


@register.filter
def catalogue(code: str, detail: str = "") -> ErrorView | None:
    """`{% with e=m.error|catalogue:m.error_detail %}`: an error code as the catalogue words it."""
    return error_view(code, detail=detail or "") if code else None


def page_zone(context: template.Context) -> str:
    """The zone a page shows its times in: the project's (its default time zone), else UTC."""
    project = context.get("project")
    return str(getattr(project, "default_time_zone", "") or "UTC")


def when_html(value: datetime, zone: str, fmt: str = "minute") -> SafeString:
    """What `{% when %}` renders, for the cells built in Python (casemsg/web/tables.py)."""
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), wallclock.shown(value, zone, fmt))


@register.simple_tag(takes_context=True)
def when(context: template.Context, value: Any, fmt: str = "minute", zone: str = "", empty: str = "—") -> SafeString:
    """`{% when m.created_on %}` → "2026-12-07 14:05 EAT" in a <time> element (its datetime attribute the
    instant in UTC). `fmt`: minute (default), second, time, time_s, date. `zone`: another zone than the
    project's (a recipient's own clock). None or "" shows `empty`."""
    if value is None or value == "":
        return format_html("{}", empty)
    if isinstance(value, datetime):
        return when_html(value, zone or page_zone(context), fmt)
    if isinstance(value, date):  # a day is already the zone's day: shown as it is
        return format_html('<time datetime="{}">{}</time>', value.isoformat(), value.isoformat())
    return format_html("{}", value)


@register.simple_tag(takes_context=True)
def zone_label(context: template.Context, zone: str = "") -> str:
    """The abbreviation of the page's zone now ("EAT"), for a column header: "When (EAT)"."""
    return wallclock.wall(timezone.now(), zone or page_zone(context)).abbreviation
