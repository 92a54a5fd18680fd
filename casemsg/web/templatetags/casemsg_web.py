"""Template filters for the operator pages."""

from __future__ import annotations

from django import template

from casemsg.web.views.common import ErrorView, error_view

register = template.Library()


@register.filter
def catalogue(code: str, detail: str = "") -> ErrorView | None:
    """`{% with e=m.error|catalogue:m.error_detail %}`: an error code as the catalogue words it."""
    return error_view(code, detail=detail or "") if code else None
