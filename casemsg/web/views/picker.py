"""The searchable case picker: wherever a page asks for a case (starting a survey for it, adding it to a
static group, opening it in the phone simulator), a search box finds it by part of its name, case id or
phone number, or its whole external id (`cases.queries.cases`, the cases list's own search), and a click
picks it. htmx does the work (no script of casemsg's own): typing asks `case_pick` for at most `RESULTS`
matches of the page's project; a match is a button whose click asks `case_pick` again with `pick=` and swaps
the whole picker for one holding that case id in the form's field (`web/_case_picker.html`). Without
JavaScript the field is a plain text box for the case id."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from casemsg.cases import queries as case_queries
from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.projects.models import Project
from casemsg.web.views.common import project_or_404, staff_required

RESULTS = 10  # matches shown: a picker is not a list page ("type more" beyond)
MAX_QUERY = 100
FIELD = re.compile(r"[a-z][a-z_]{0,39}")  # the form field the picked case id goes into


def picker(
    project: Project,
    field: str,
    value: str = "",
    label: str = "Case",
    help_text: str = "",
    key: str = "",
    swapped: bool = False,
) -> dict[str, Any]:
    """What `web/_case_picker.html` needs, for a view's context: the form field's name, its value (a case
    id), its label, and the case it names (shown beside it). `key` names the picker's elements (default: the
    field) when the page has another field of that name."""
    chosen = case_queries.case(project, value) if value else None
    key = key or field
    query = urlencode({"field": field, "key": key, "label": label, "help": help_text})  # kept through the swaps
    out = {"field": field, "key": key, "value": value, "label": label, "help": help_text, "chosen": chosen}
    return {**out, "query": query, "swapped": swapped}


def _bad(message: str) -> HttpResponse:
    return HttpResponse(f"{errors.VALIDATION_ERROR}: {message}", status=400, content_type="text/plain")


@require_GET
@staff_required
def case_pick(request: HttpRequest, slug: str) -> HttpResponse:
    """`?field=case_id&pick_q=ash` (field: case_id by default): the project's cases matching, as a list of
    buttons; `?field=…&pick=m-1`: the picker again, with that case picked. `key`, `label` and `help` carry the
    picker's element names and words through the swap."""
    project = project_or_404(slug)
    field, key = request.GET.get("field") or "case_id", request.GET.get("key", "")
    if not FIELD.fullmatch(field) or not FIELD.fullmatch(key or field):
        return _bad("field and key must be form field names (a-z and _).")
    label = request.GET.get("label", "")[:60] or "Case"
    help_text = request.GET.get("help", "")[:200]
    if "pick" in request.GET:
        p = picker(project, field, request.GET["pick"][:64], label, help_text, key, swapped=True)
        return render(request, "web/_case_picker.html", {"project": project, "picker": p})
    q = request.GET.get("pick_q", "").strip()[:MAX_QUERY]
    found: list[Case] = []
    if q:
        qs = case_queries.cases(project, case_queries.CaseFilter(search=q, order="recently_modified"))
        found = list(qs[: RESULTS + 1])
    context = {
        "project": project,
        "q": q,
        "results": found[:RESULTS],
        "more": len(found) > RESULTS,
        "picker": picker(project, field, "", label, help_text, key),
    }
    return render(request, "web/_case_picker_results.html", context)
