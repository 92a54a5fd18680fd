"""The texts the survey engine sends on its own, declared in the catalogue of casemsg.consent.texts (and
registered by `SurveysConfig.ready`): the re-prompt for each kind of wrong answer (their English defaults
are `answers.DEFAULT_MESSAGES`), the answer to `#STOP`, the notice of a session that expired (off
until the project writes it), and the words added to a question (`survey_prompt_<name>`: the value a skip
keeps, the acknowledgement asked for, the progress; their English defaults are `definition.DEFAULT_PROMPTS`,
and a survey's own `settings.prompts` come first).

A re-prompt is looked up in the survey's own `settings.error_messages` first, then in the project's texts
(`survey_<error>`, translated on the Texts page), then in casemsg's English; each along the session's
language, the survey's default language, English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from casemsg.consent import texts as system_texts
from casemsg.consent.texts import SystemText
from casemsg.projects.models import Project
from casemsg.surveys.answers import DEFAULT_MESSAGES, ERROR_CODES
from casemsg.surveys.definition import DEFAULT_PROMPTS, PROMPTS
from casemsg.surveys.models import SurveySession

_GROUP: Final = "Surveys"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_WHEN: Final[dict[str, str]] = {
    "required": "an answer was required but the reply was empty",
    "invalid_choice": "the reply is not one of the choices ({count}: how many there are)",
    "invalid_choices": "a reply to a several-choice question names something that is not a choice",
    "invalid_integer": "the question wants a whole number",
    "invalid_decimal": "the question wants a number",
    "invalid_date": "the question wants a date ({date_format}: the survey's date format, {example}: one date in it)",
    "invalid_time": "the question wants a time of day",
    "invalid_text": "the question wants some text",
    "constraint_failed": "the answer breaks the question's constraint (and the question has no message of its own)",
}

ENDED = SystemText(
    "survey_ended",
    "Survey ended (#STOP)",
    "The answer to #STOP, which ends the running survey only.",
    "The survey has ended. Reply STOP to receive no more messages.",
    group=_GROUP,
)


def _error_text(code: str) -> SystemText:
    default = DEFAULT_MESSAGES["en"][code]
    return SystemText(
        f"survey_{code}",
        "Survey re-prompt: " + code.replace("_", " "),
        f"Sent with the question again when {_WHEN.get(code, code.replace('_', ' '))}. A survey's own error "
        "messages come first.",
        default,
        placeholders=tuple(dict.fromkeys(_PLACEHOLDER.findall(default))),
        group=_GROUP,
    )


EXPIRED = SystemText(
    "survey_expired",
    "Survey expired",
    "Sent when a survey's time (its expire_after) runs out before the last answer. Off unless written; never "
    "for the opt-in question.",
    "",
    group=_GROUP,
)

_PROMPT_TEXTS: Final[dict[str, tuple[str, str]]] = {
    "keep": (
        "Survey: the value a skip keeps",
        "Said after a question that offers a value ({value}): {word} is the reply that keeps it (#SKIP, or 1 "
        "for a date or a time).",
    ),
    "acknowledge": ("Survey: acknowledge", "Said after a question that asks to be acknowledged (acknowledge)."),
    "progress": (
        "Survey: progress",
        "Said before each question of a survey that says its progress: {n} its place, {total} how many.",
    ),
}


def _prompt_text(name: str) -> SystemText:
    default = DEFAULT_PROMPTS[name]
    title, description = _PROMPT_TEXTS[name]
    return SystemText(
        f"survey_prompt_{name}",
        title,
        description + " A survey's own prompts come first.",
        default,
        placeholders=tuple(dict.fromkeys(_PLACEHOLDER.findall(default))),
        group=_GROUP,
    )


TEXTS: Final[tuple[SystemText, ...]] = (
    *(_error_text(code) for code in ERROR_CODES),
    ENDED,
    EXPIRED,
    *(_prompt_text(name) for name in PROMPTS),
)


def prompts(project: Project, survey_own: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """{language: {prompt: text}} for the words added to a question: the survey's own prompts over the
    project's texts (`survey_prompt_<name>`); casemsg's English (definition.DEFAULT_PROMPTS) is the last
    resort."""
    own = system_texts.own(project)
    out: dict[str, dict[str, str]] = {}
    for name in PROMPTS:
        for lang, text in own.get(f"survey_prompt_{name}", {}).items():
            if text.strip():
                out.setdefault(lang, {})[name] = text
    for lang, by_name in survey_own.items():
        out.setdefault(lang, {}).update(by_name)
    return out


def error_messages(project: Project, survey_own: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """{language: {error: text}} for `answers.error_message`: the survey's own messages over the project's
    texts (`survey_<error>`); casemsg's English defaults stay the last resort there."""
    own = system_texts.own(project)
    out: dict[str, dict[str, str]] = {}
    for code in ERROR_CODES:
        for lang, text in own.get(f"survey_{code}", {}).items():
            if text.strip():
                out.setdefault(lang, {})[code] = text
    for lang, by_code in survey_own.items():
        out.setdefault(lang, {}).update(by_code)
    return out


def ended(project: Project, language: str) -> str:
    """The answer to #STOP in the session's language (the project's texts' fallback chain)."""
    return system_texts.pick(project, ENDED.key, language)[0]


def expiry_told(session: SurveySession) -> bool:
    """Whether an expiring session's contact is told: the project wrote survey_expired, and the survey is
    the project's own (not the built-in opt-in question)."""
    return not session.survey_version.survey.builtin and system_texts.enabled(session.project, EXPIRED.key)


def expired(project: Project, language: str) -> str:
    """The survey_expired text in the session's language (the project's texts' fallback chain)."""
    return system_texts.pick(project, EXPIRED.key, language)[0]
