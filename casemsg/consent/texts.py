"""Every text casemsg itself sends, in every language: one home.

* **The catalogue**: each text casemsg sends on its own (the STOP and START confirmations, HELP, the opt-in
  question, the verification code, survey re-prompts, the keyword actions' replies, …) is one `SystemText`:
  its key, what a person reads about it, its English default and the placeholders it may use. The texts of
  this module are the built-in ones; an area above declares its own beside the code that sends them and
  registers them once, in its `AppConfig.ready` (the survey engine's, each keyword action's).
* **The project's own translations**, per key and language, in `Project.texts` ({key: {language: text}}),
  changed only through `update` (checked, written with an audit entry per text, as settings are).
* **The fallback chain**, in `pick`: the contact's language, then the project's default language, then
  English — the project's own texts along that chain first, then casemsg's English default.

A text whose change weakens a legal rule: one the law requires (`legal`: the STOP confirmation, HELP, the
opt-in question, the START confirmation, the verification code) may never be emptied (422 TEXT_REQUIRED);
one that tells the person how to opt out (`names_opt_out`) needs the owner role or an API key with the
admin scope to stop naming an opt-out word in some language (403 WEAKENS_LEGAL_RULE). Every other change
needs write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.db import transaction

from casemsg.consent import words
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects import services as project_services
from casemsg.projects.models import Project

MAX_TEXT: Final = 1600  # ten SMS segments
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TOKEN = re.compile(r"\w+")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,55}")
AUDIT_PREFIX: Final = "texts."  # an audit entry's setting: texts.<key>


@dataclass(frozen=True)
class SystemText:
    """One text casemsg sends on its own: what the catalogue, the Texts page, the API and a translator's
    file show about it, and the rules its translations follow."""

    key: str
    title: str  # what a person reads ("STOP confirmation")
    description: str  # when it is sent
    default: str  # the English text; "" for a text that is off until the project writes one
    placeholders: tuple[str, ...] = ()  # the {name}s it may use, filled when it is sent
    needs: tuple[str, ...] = ()  # the placeholders every translation must use (the code of a code text)
    legal: bool = False  # the law requires it: never empty
    names_opt_out: bool = False  # it tells how to opt out: dropping the opt-out word weakens a legal rule
    group: str = "Replies"

    @property
    def optional(self) -> bool:
        """Off (nothing is sent) until the project writes it."""
        return not self.default


# --- the catalogue ---------------------------------------------------------------------------------
_COMPLIANCE, _CONSENT, _VERIFICATION, _INBOUND = "Opt-out and help", "Consent", "Number verification", "Replies"

BUILT_IN: Final[tuple[SystemText, ...]] = (
    SystemText(
        "opt_out_confirmation",
        "STOP confirmation",
        "The one answer to an opt-out word (STOP, the project's own, the gateway's). Required by law: it may "
        "be reworded and translated, never emptied.",
        "You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
        legal=True,
        group=_COMPLIANCE,
    ),
    SystemText(
        "opt_in_confirmation",
        "START confirmation",
        "The answer to an opt-in word (START, UNSTOP, YES after a STOP) that lifted the opt-out. It must keep "
        "telling how to opt out again.",
        "You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
        legal=True,
        names_opt_out=True,
        group=_COMPLIANCE,
    ),
    SystemText(
        "help_text",
        "HELP answer",
        "The answer to HELP or INFO. It must keep telling how to opt out.",
        "Reply STOP to unsubscribe, START to subscribe again.",
        legal=True,
        names_opt_out=True,
        group=_COMPLIANCE,
    ),
    SystemText(
        "opt_in_question",
        "Opt-in question",
        "The consent question an opt-in request asks (the one SMS a number without consent may get).",
        "Do you consent to receiving SMS messaging? Reply YES or NO.",
        legal=True,
        group=_CONSENT,
    ),
    SystemText(
        "consent_thanks",
        "Consent thanks",
        "The answer to a YES to the opt-in question. It must keep telling how to opt out.",
        "Thank you. Reply STOP at any time to unsubscribe.",
        names_opt_out=True,
        group=_CONSENT,
    ),
    SystemText(
        "verification_code",
        "Verification code",
        "The code a mobile worker's number is verified with; {code} is the code.",
        "Your verification code is {code}. Reply with this code to verify your phone number.",
        placeholders=("code",),
        needs=("code",),
        legal=True,
        group=_VERIFICATION,
    ),
    SystemText(
        "number_verified",
        "Number verified",
        "The answer to the right verification code.",
        "Your phone number is verified.",
        group=_VERIFICATION,
    ),
    SystemText(
        "wrong_code",
        "Wrong code",
        "The answer to a verification code that is not the one sent.",
        "That code is not right; please check it and reply again.",
        group=_VERIFICATION,
    ),
    SystemText(
        "unknown_sender_reply",
        "Unknown sender",
        "The answer to a message from a number no contact of the project holds for two-way SMS. Off unless written.",
        "",
        group=_INBOUND,
    ),
    SystemText(
        "catch_all_reply",
        "Catch-all reply",
        "The answer to a known contact's message that no keyword, survey or question took (an unknown "
        "keyword). Off unless written.",
        "",
        group=_INBOUND,
    ),
)

_CATALOGUE: dict[str, SystemText] = {t.key: t for t in BUILT_IN}


def register(*texts: SystemText) -> None:
    """Add the texts an area above declares (its AppConfig.ready calls this once). The same declaration
    twice is fine; two different ones for one key are a programming error."""
    for t in texts:
        if not _KEY.fullmatch(t.key):
            raise ValueError(f"system text key {t.key!r}: lowercase letters, digits and _, at most 56")
        known = _CATALOGUE.get(t.key)
        if known is not None and known != t:
            raise ValueError(f"system text {t.key!r} is declared twice, differently")
        _CATALOGUE[t.key] = t


def catalogue() -> list[SystemText]:
    """Every text casemsg sends, in the order declared (built-in first, then the areas' own)."""
    return list(_CATALOGUE.values())


def get(key: str) -> SystemText:
    t = _CATALOGUE.get(key)
    if t is None:
        raise InputError(
            errors.TEXT_NOT_FOUND, f"'{key}' is not a text casemsg sends; list them with GET …/texts.", 404
        )
    return t


# --- reading: the project's own, the fallback chain ---------------------------------------------------
def own(project: Project | None) -> dict[str, dict[str, str]]:
    """The project's own translations, {key: {language: text}} (keys the catalogue no longer has left out)."""
    stored = project.texts if project is not None else None
    if not isinstance(stored, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for key, by_lang in stored.items():
        if key in _CATALOGUE and isinstance(by_lang, dict):
            out[key] = {str(lang): str(text) for lang, text in by_lang.items() if isinstance(text, str)}
    return out


def chain(project: Project | None, language: str) -> list[str]:
    """The languages tried, in order: the contact's, the project's default, English."""
    default = project.default_language if project is not None else "en"
    return list(dict.fromkeys(lang for lang in (language, default, "en") if lang))


def raw(project: Project | None, key: str, language: str) -> tuple[str, str]:
    """(text, language) as written, before its placeholders are filled: the project's own along the chain,
    then casemsg's English default. ("", …) means nothing is sent: an optional text not written, or a
    language the project silenced."""
    return _along(project, get(key), own(project).get(key, {}), language)


def _along(project: Project | None, t: SystemText, mine: Mapping[str, str], language: str) -> tuple[str, str]:
    for lang in chain(project, language):
        if lang in mine:
            return mine[lang], lang
    return t.default, "en"


def fill(text: str, values: Mapping[str, object]) -> str:
    """The text with its placeholders replaced (a placeholder without a value stays as written)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def pick(project: Project | None, key: str, language: str = "", **values: object) -> tuple[str, str]:
    """The text to send to a contact whose language is `language`, its placeholders filled, and the language
    it is in. "" when nothing is to be sent."""
    text, lang = raw(project, key, language)
    return fill(text, values), lang


def enabled(project: Project | None, key: str) -> bool:
    """Whether the text is sent at all to someone: an optional text only once the project wrote it."""
    t = get(key)
    return bool(t.default) or any(v.strip() for v in own(project).get(key, {}).values())


def languages(project: Project) -> list[str]:
    """The languages a project's texts are written in: its SMS languages, with English (the last fallback)."""
    return list(dict.fromkeys([*(project.sms_languages or []), "en"]))


def translations(project: Project, key: str) -> dict[str, str]:
    """{language: text} for each of the project's languages: what a contact of that language is sent (as
    written, placeholders not filled; languages that get nothing left out)."""
    out = {}
    for lang in languages(project):
        text, _used = raw(project, key, lang)
        if text.strip():
            out[lang] = text
    return out


def listing(project: Project) -> list[dict[str, Any]]:
    """Every text as GET …/texts shows it: the catalogue's facts, the project's own translations, and what a
    contact of each of the project's languages is sent (`effective`, {language: {text, from}})."""
    mine = own(project)
    return [_shown(project, t, mine.get(t.key, {})) for t in catalogue()]


def shown(project: Project, key: str) -> dict[str, Any]:
    t = get(key)
    return _shown(project, t, own(project).get(key, {}))


def _shown(project: Project, t: SystemText, mine: dict[str, str]) -> dict[str, Any]:
    effective = {}
    for lang in languages(project):
        text, used = raw(project, t.key, lang)
        effective[lang] = {"text": text, "language": used, "own": used in mine}
    return {
        "key": t.key,
        "title": t.title,
        "group": t.group,
        "description": t.description,
        "default": t.default,
        "placeholders": list(t.placeholders),
        "legal": t.legal,
        "names_opt_out": t.names_opt_out,
        "optional": t.optional,
        "translations": dict(mine),
        "effective": effective,
    }


# --- writing -------------------------------------------------------------------------------------------
def names_opt_out_word(project: Project, text: str) -> bool:
    """Whether the text names one of the project's opt-out words (STOP, …, its own words)."""
    opt_out = words.opt_out_words(project)
    return any(token.upper() in opt_out for token in _TOKEN.findall(text))


def check(project: Project, key: str, language: str, text: str | None) -> str | None:
    """A translation as stored (None: remove it), or InputError: where (`texts.KEY.LANG: …`) and why."""
    t = get(key)
    where = f"texts.{key}.{language}"
    if language not in languages(project):
        raise InputError(
            errors.VALIDATION_ERROR,
            f"{where}: '{language}' is not one of the project's languages ({', '.join(languages(project))}); "
            "add it to the settings' languages first.",
        )
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError(errors.VALIDATION_ERROR, f"{where}: a text, or null to go back to the default.")
    text = text.strip()
    if "\x00" in text:
        raise InputError(errors.VALIDATION_ERROR, f"{where}: contains a NUL character.")
    if len(text) > MAX_TEXT:
        raise InputError(errors.VALUE_TOO_LONG, f"{where}: {len(text)} characters; at most {MAX_TEXT}.")
    if not text:
        if t.legal:
            raise InputError(
                errors.TEXT_REQUIRED,
                f"{where}: the {t.title} may not be empty: the law requires it. Reword it, or send null to "
                "go back to casemsg's default.",
            )
        return ""  # nothing is sent in this language
    for name in _PLACEHOLDER.findall(text):
        if name not in t.placeholders:
            allowed = ", ".join("{" + p + "}" for p in t.placeholders) or "none"
            sentence = f"{{{name}}} is not a placeholder of this text (it may use {allowed})."
            raise InputError(errors.VALIDATION_ERROR, f"{where}: {sentence}")
    for name in t.needs:
        if "{" + name + "}" not in text:
            raise InputError(errors.VALIDATION_ERROR, f"{where}: the text must contain {{{name}}}.")
    return text


def _changes(value: object) -> dict[str, dict[str, str | None]]:
    if not isinstance(value, dict):
        raise InputError(errors.VALIDATION_ERROR, "texts: give {key: {language: text or null}}.")
    out: dict[str, dict[str, str | None]] = {}
    for key, by_lang in value.items():
        get(str(key))
        if not isinstance(by_lang, dict):
            raise InputError(errors.VALIDATION_ERROR, f"texts.{key}: give {{language: text or null}}.")
        out[str(key)] = {str(lang): text for lang, text in by_lang.items()}
    return out


def weakenings(project: Project, key: str, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The languages in which the change from `before` to `after` (the project's own translations of `key`)
    stops telling how to opt out: a legal rule weakened."""
    t = get(key)
    if not t.names_opt_out:
        return []
    out = []
    for lang in languages(project):
        old, _l = _along(project, t, before, lang)
        new, _l = _along(project, t, after, lang)
        if names_opt_out_word(project, old) and not names_opt_out_word(project, new):
            out.append(lang)
    return out


def update(project: Project, changes: object, *, may_weaken: bool = False) -> Project:
    """Change any of the project's translations, all or nothing: `changes` is {key: {language: text}}, a
    text of null removing the project's own (the fallback chain applies again). Each text is checked (the
    first wrong one is a 422 naming `texts.KEY.LANG`); a change that stops a text telling how to opt out is
    403 WEAKENS_LEGAL_RULE unless `may_weaken` (the owner on the pages, an API key with admin, the command
    line). One audit entry per text whose translations changed (setting `texts.KEY`), in the same
    transaction."""
    wanted = _changes(changes)
    with transaction.atomic():
        current = Project.objects.select_for_update().get(pk=project.pk)
        mine = own(current)
        stored: dict[str, dict[str, str]] = {k: dict(v) for k, v in mine.items()}
        entries: list[tuple[str, Any, Any, bool]] = []
        weak: list[str] = []
        for key, by_lang in wanted.items():
            before = dict(mine.get(key, {}))
            after = dict(before)
            for lang, text in by_lang.items():
                checked = check(current, key, lang, text)
                if checked is None:
                    after.pop(lang, None)
                else:
                    after[lang] = checked
            if after == before:
                continue
            langs = weakenings(current, key, before, after)
            if langs:
                weak.append(f"texts.{key}.{langs[0]}: no longer names an opt-out word (in {', '.join(langs)})")
            stored[key] = after
            if not after:
                del stored[key]
            entries.append((AUDIT_PREFIX + key, before or None, after or None, bool(langs)))
        if weak and not may_weaken:
            raise InputError(
                errors.WEAKENS_LEGAL_RULE,
                f"{weak[0]}; a text that tells how to opt out must keep naming an opt-out word (such as STOP): "
                "this change needs the owner role on the pages or an API key with the admin scope.",
                403,
            )
        if entries:
            project_services.save_texts(current, stored, entries)
    project.texts = current.texts
    return project


def update_one(project: Project, key: str, by_language: object, *, may_weaken: bool = False) -> Project:
    """`update` for one text: {language: text or null}."""
    get(key)
    return update(project, {key: by_language}, may_weaken=may_weaken)
