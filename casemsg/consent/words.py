"""The compliance vocabulary every gateway understands, and the project's own words. (The texts casemsg
answers them with are casemsg.consent.texts.)

A compliance keyword counts only as the *whole* message, one word, case-insensitive, trimmed, with any
punctuation around it ignored: "stop", " Stop ", "Stop." and "STOP!" opt out; "STOP please" does not (it
goes on to the project's keywords and surveys).
"""

from __future__ import annotations

import unicodedata

from casemsg.gateways import registry
from casemsg.gateways.models import Gateway
from casemsg.projects.models import Project

OPT_OUT_WORDS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
OPT_IN_WORDS = ["START", "UNSTOP", "YES"]
HELP_WORDS = ["HELP", "INFO"]
CONSENT_YES = ["YES", "Y", "1"]
CONSENT_NO = ["NO", "N", "0"]


def _strip_punctuation(word: str) -> str:
    """Drop punctuation around a word ("Stop." "¡ALTO!" "STOP!!"): people add it, and it must not hide a STOP."""
    start, end = 0, len(word)
    while start < end and unicodedata.category(word[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(word[end - 1]).startswith("P"):
        end -= 1
    return word[start:end]


def single_word(text: str) -> str | None:
    """The message as one upper-case word (punctuation around it ignored), or None when it has more (or
    no) words."""
    words = (text or "").split()
    if len(words) != 1:
        return None
    return _strip_punctuation(words[0]).upper() or None


def first_word(text: str) -> tuple[str, str]:
    """(FIRST WORD upper-case, the rest of the message)."""
    parts = (text or "").strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0].upper(), parts[1].strip() if len(parts) > 1 else ""


def _extra(words: object) -> list[str]:
    items = words if isinstance(words, list | tuple | set) else []
    return [str(w).strip().upper() for w in items if str(w).strip()]


def opt_out_words(project: Project | None = None, gateway: Gateway | None = None) -> set[str]:
    """The standard words, the project's own, the gateway's configured ones and those its provider acts on."""
    words = set(OPT_OUT_WORDS)
    if project is not None:
        words |= set(_extra(project.opt_out_keywords))
    if gateway is not None:
        words |= set(_extra((gateway.config or {}).get("opt_out_keywords")))
        words |= registry.extra_opt_out_words(gateway)
    return words


def opt_in_words(project: Project | None = None, gateway: Gateway | None = None) -> set[str]:
    words = set(OPT_IN_WORDS)
    if project is not None:
        words |= set(_extra(project.opt_in_keywords))
    if gateway is not None:
        words |= set(_extra((gateway.config or {}).get("opt_in_keywords")))
    return words
