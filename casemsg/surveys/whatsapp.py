"""A survey question as WhatsApp shows it: `select_one` with at most 3 choices as reply buttons, at most 10
as a list message, more as the numbered text every channel gets. Each button or row carries the choice's
name as its id, which the answer parser accepts like a typed number or label (`surveys.answers`), so a
tap and a typed answer are the same answer.

The engine attaches this to each question's message; the send path uses it only on WhatsApp, inside the
24-hour window (`casemsg.messaging.pipeline.whatsapp`): SMS and the text fallback send the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from casemsg.gateways.models import Gateway
from casemsg.surveys import flow
from casemsg.surveys.definition import Question
from casemsg.surveys.definition import Survey as Definition

MAX_BUTTONS = 3  # WhatsApp's reply buttons (titles ≤ 20 characters)
MAX_LIST_ROWS = 10  # a list message's rows (titles ≤ 24 characters)


def interactive(
    survey: Definition, the_plan: flow.Plan, q: Question, answers: Mapping[str, str], language: str, body: str
) -> dict[str, Any] | None:
    """The buttons or list of a select_one question (as `choices_for` filtered it), or None: numbered text."""
    if q.type != "select_one" or not q.choices or len(q.choices) > MAX_LIST_ROWS:
        return None
    titles = [flow.render(survey, the_plan, c.label, answers, language) or c.name for c in q.choices]
    kind = "buttons" if len(q.choices) <= MAX_BUTTONS else "list"
    limit = 20 if kind == "buttons" else 24
    choices = [{"id": c.name, "title": t[:limit]} for c, t in zip(q.choices, titles, strict=True)]
    return {"kind": kind, "body": body[:1024], "choices": choices}


def opening(gateway: Gateway | None) -> dict[str, Any] | None:
    """A survey's first message on WhatsApp: outside the 24-hour window the first question cannot go as
    text, so the gateway's `survey_template` (an approved template; its {{1}} is the case's name) goes
    instead. The person's answer opens the window; the question follows (as the answer it is not, with
    its buttons). None when the gateway names no survey template: outside the window the first question
    then fails with WHATSAPP_WINDOW_CLOSED."""
    name = str((gateway.config or {}).get("survey_template") or "") if gateway is not None else ""
    return {"template": name, "variables": ["{case.name}"]} if name else None
