"""What a broadcast or an alert sends: an SMS, an email with a subject, a WhatsApp message (its approved
template outside the 24-hour window, variables bound to {case.…}), or an SMS survey — its declaration
(`ContentIn`), its rules (`parse_content`) and its normalised form (`Content`; `content_from_json` reads the
stored JSON back).

Texts and subjects are templates (`casemsg.messaging.render`): a malformed one is CANNOT_RENDER_MESSAGE, a
translation in a language the project does not have UNKNOWN_LANGUAGE_CODE, no text at all MESSAGE_BLANK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import Field

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import render
from casemsg.messaging.services import validate_whatsapp
from casemsg.projects.models import Project
from casemsg.scheduling.fields import MAX_TEXT, Declaration, declared, fail, language, mapping, only, whole
from casemsg.surveys.models import Survey

Channel = Literal["sms", "email", "whatsapp", "survey"]
CHANNELS: Final[tuple[Channel, ...]] = ("sms", "email", "whatsapp", "survey")
_EMAIL_ONLY: Final = frozenset({"subject"})
_WHATSAPP_ONLY: Final = frozenset({"whatsapp"})
_SURVEY_ONLY: Final = frozenset({"survey_id"})

_TEXT = "A template: {case.name}, {case.<property>}, {case.parent.<property>}, {recipient.name}."


class ContentIn(Declaration):
    """What to send: an SMS text, an email with a subject, or an SMS survey. `translations` are chosen by
    the recipient's language, then the broadcast's `default_language`, then the project's; `text` is the
    fallback. A survey (`channel: "survey"`, `survey_id`) starts a session of the survey's current version
    for each case at each occurrence; it is asked of cases only (its answers are saved to the case)."""

    channel: str = Field("sms", max_length=8, description=" | ".join(CHANNELS), examples=["sms"])
    survey_id: int | None = Field(None, description="survey only: the survey to start", examples=[None])
    text: str | None = Field(
        None, max_length=MAX_TEXT, description=_TEXT, examples=["Hello {case.name}, see you at the clinic."]
    )
    translations: dict[str, str] | None = Field(
        None, description="language code → text (the project's languages)", examples=[{"sw": "Habari {case.name}"}]
    )
    subject: str | dict[str, str] | None = Field(
        None, description='email only: a template, or {language: template} ("*" for the fallback)'
    )
    whatsapp: dict[str, Any] | None = Field(
        None,
        description="whatsapp only: the approved template sent outside the 24-hour window (text inside it), "
        '{"template": NAME, "language": "en", "variables": ["{case.name}"], "fallback_sms": true} '
        "(docs/whatsapp.md)",
    )


@dataclass(frozen=True)
class Content:
    """What to send: an SMS, an email with a subject (texts are templates: {case.name}, …), or an SMS
    survey (`survey_id`: each occurrence starts a session of the survey's current version)."""

    channel: Channel = "sms"
    text: str | None = None
    translations: Mapping[str, str] = field(default_factory=dict)
    subject: str = ""  # email: the untranslated subject
    subject_translations: Mapping[str, str] = field(default_factory=dict)
    survey_id: int | None = None
    # whatsapp: {"template", "language", "variables", "fallback_sms"} (messaging.services.validate_whatsapp)
    whatsapp: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel}
        if self.channel == "survey":
            return {**out, "survey_id": self.survey_id, **({"whatsapp": dict(self.whatsapp)} if self.whatsapp else {})}
        if self.text is not None:
            out["text"] = self.text
        if self.translations:
            out["translations"] = dict(self.translations)
        if self.channel == "whatsapp" and self.whatsapp:
            out["whatsapp"] = dict(self.whatsapp)
        if self.channel == "email":
            out["subject"] = dict(self.subject_translations) if self.subject_translations else self.subject
            if self.subject_translations and self.subject:
                out["subject"] = {**self.subject_translations, "*": self.subject}
        return out

    def subject_for(self, chain: Sequence[str]) -> str:
        """The subject template for the first language of `chain` that has one, else the untranslated one."""
        chosen, _lang = render.choose_text(
            {"translations": self.subject_translations, "text": self.subject}, list(chain)
        )
        return chosen or ""


def _template(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise fail(f"{where} must be a string.")
    if len(value) > MAX_TEXT:
        raise InputError(errors.VALUE_TOO_LONG, f"{where} is longer than {MAX_TEXT} characters.")
    problem = render.check_template(value)
    if problem:
        raise InputError(errors.CANNOT_RENDER_MESSAGE, f"{where} is not a valid template: {problem}.")
    return value


def _translations(value: object, project: Project, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for lang, text in mapping(value, where).items():
        language(lang, project, f"{where} language")
        out[lang] = _template(text, f"{where}.{lang}")
    return out


def parse_content(data: object, project: Project, default_language: str = "", where: str = "content") -> Content:
    """Validate an SMS or email content object; `default_language` is the owner's (already validated)."""
    d = mapping(data, where)
    channel = d.get("channel", "sms")
    if channel not in CHANNELS:
        raise fail(f"{where}.channel must be 'sms', 'email', 'whatsapp' or 'survey', not {channel!r}.")
    if channel == "survey":
        return _survey_content(d, project, where)
    not_here = _SURVEY_ONLY | (set() if channel == "email" else _EMAIL_ONLY)
    not_here |= set() if channel == "whatsapp" else _WHATSAPP_ONLY
    only(d, declared(ContentIn) - not_here, where)
    whatsapp = _whatsapp(d, where) if channel == "whatsapp" and d.get("whatsapp") is not None else {}
    text = _template(d["text"], f"{where}.text") if d.get("text") is not None else None
    translations = _translations(d.get("translations") or {}, project, f"{where}.translations")
    if not (text or "").strip() and not any(t.strip() for t in translations.values()):
        raise InputError(errors.MESSAGE_BLANK, f"{where} needs a non-empty text or translations.")
    fallback = [lang for lang in (default_language, project.default_language) if lang]
    if not (text or "").strip() and not any((translations.get(lang) or "").strip() for lang in fallback):
        raise fail(
            f"{where} needs a text, or a translation in the default language ({' or '.join(fallback)}), for "
            "recipients whose language has no translation."
        )
    subject, subject_translations = "", {}
    if channel == "email":
        raw = d.get("subject")
        if isinstance(raw, Mapping):
            subject_translations = {
                lang: _template(t, f"{where}.subject.{lang}") for lang, t in raw.items() if lang != "*"
            }
            for lang in subject_translations:
                language(lang, project, f"{where}.subject language")
            subject = _template(raw.get("*", ""), f"{where}.subject.*")
        elif raw is not None:
            subject = _template(raw, f"{where}.subject")
        if not subject.strip() and not any(t.strip() for t in subject_translations.values()):
            raise fail(f"{where}.subject is required for an email (a text, or {{language: text}}).")
    return Content(channel, text, translations, subject, subject_translations, whatsapp=whatsapp)


def _survey_content(d: Mapping[str, Any], project: Project, where: str) -> Content:
    only(d, {"channel"} | _SURVEY_ONLY | _WHATSAPP_ONLY, where)
    survey_id = whole(d.get("survey_id"), f"{where}.survey_id", 1, 2**63 - 1)
    if not Survey.objects.filter(project=project, pk=survey_id, builtin="", current_version__isnull=False).exists():
        raise InputError(errors.SURVEY_NOT_FOUND, f"{where}.survey_id: no survey {survey_id} in this project.", 404)
    # on WhatsApp, outside the 24-hour window: the approved template that opens the survey (instead of the
    # gateway's survey_template); its variables bound to {case.…}
    whatsapp = _whatsapp(d, where) if d.get("whatsapp") is not None else {}
    return Content("survey", survey_id=survey_id, whatsapp=whatsapp)


def _whatsapp(d: Mapping[str, Any], where: str) -> dict[str, Any]:
    whatsapp = dict(mapping(d["whatsapp"], f"{where}.whatsapp"))
    validate_whatsapp(whatsapp)  # the one-off message's rules: the template itself is checked at send time
    return {k: v for k, v in whatsapp.items() if v not in (None, "", [], {})}


def content_from_json(data: Mapping[str, Any]) -> Content:
    """Stored (normalised) content back to its dataclass, without re-validating."""
    raw = data.get("subject")
    subject, subject_translations = "", {}
    if isinstance(raw, Mapping):
        subject_translations = {k: v for k, v in raw.items() if k != "*"}
        subject = raw.get("*", "")
    elif isinstance(raw, str):
        subject = raw
    return Content(
        channel=data.get("channel", "sms"),
        text=data.get("text"),
        translations=dict(data.get("translations") or {}),
        subject=subject,
        subject_translations=subject_translations,
        survey_id=data.get("survey_id"),
        whatsapp=dict(data.get("whatsapp") or {}),
    )
