"""Every keyword action, by name: one line per action module. The API accepts exactly these names, the
form offers them, the router runs their handlers, and `InboundConfig.ready` registers their texts.

A new action (CONTRIBUTING.md, "A new keyword action"):
1. one module in casemsg/inbound/actions/ with a `KeywordAction` subclass (base.py) and its `ACTION`;
2. one line below (and its import);
3. its module in the `inbound.actions` order of pyproject.toml's import contracts;
4. tests: tests/inbound/test_keyword_actions.py (the set of names) and one end to end.
"""

from __future__ import annotations

from typing import Final

from casemsg.consent.texts import SystemText
from casemsg.inbound.actions import reply, start_survey, update_case
from casemsg.inbound.actions.base import KeywordAction

ACTIONS: Final[dict[str, KeywordAction]] = {
    a.name: a
    for a in (
        reply.ACTION,
        update_case.ACTION,
        start_survey.ACTION,
    )
}


def texts() -> list[SystemText]:
    """The texts the actions send on their own, each once."""
    return list({t.key: t for a in ACTIONS.values() for t in a.texts}.values())
