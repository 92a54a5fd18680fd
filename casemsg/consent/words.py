"""The compliance vocabulary every gateway understands, and the project keywords.

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

DEFAULT_TEXTS = {
    "opt_out_confirmation": "You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
    "opt_in_confirmation": "You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
    "help_text": "Reply STOP to unsubscribe, START to subscribe again.",
    "opt_in_question": "Do you consent to receiving SMS messaging? Reply YES or NO.",
    "consent_thanks": "Thank you. Reply STOP at any time to unsubscribe.",
}


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


def texts(project: Project | None, name: str) -> dict[str, str]:
    """A compliance text as translations: the project's own, else the default in English."""
    own = getattr(project, name, None) if project is not None else None
    if isinstance(own, dict) and any(v for v in own.values()):
        return {k: v for k, v in own.items() if v}
    if isinstance(own, str) and own.strip():
        return {"en": own}
    return {"en": DEFAULT_TEXTS[name]}
