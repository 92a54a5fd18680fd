"""What every part of a broadcast or alert body shares: the limits, the base of the declarations, and the
field checks that refuse with a catalogue code and a sentence naming the field.

A body is described once, as pydantic models (`Declaration`): `specs.BroadcastIn` and `specs.AlertIn`,
built from their parts (`schedules.BroadcastScheduleIn`, `contents.ContentIn`,
`recipients.BroadcastRecipientsIn`, …). The declaration is the body's shape — its field names, their types
and lengths, their documentation — and is what the API takes as request bodies (so `/api/docs` shows it),
what the pages' forms build (`validated`) and what the parsers' unknown-field checks read (`declared`).
The rules beyond the shape (a time of day, a project's languages, a weekly schedule's weekdays, …) are the
parsers' (`specs.parse_broadcast`, `specs.parse_alert` and the parts' `parse_…`): they take the body as
JSON and normalise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects.models import Project

MAX_NAME: Final = 200  # a broadcast's or an alert's name
MAX_TEXT: Final = 10_000  # a template
MAX_LIST: Final = 10_000  # listed case ids or mobile workers
MAX_EVENTS: Final = 1_000  # offsets in one list, times in one day, count
MAX_CASE_TYPE: Final = 64
MAX_PROPERTY: Final = 255  # a case property's name
MAX_LANGUAGE: Final = 16
MAX_ZONE: Final = 64
MAX_TIME: Final = 8  # HH:MM:SS
MAX_DATE: Final = 10  # YYYY-MM-DD


class Declaration(BaseModel):
    """A part of a body as it comes in: an unknown field is refused."""

    model_config = ConfigDict(extra="forbid")


def declared(model: type[BaseModel]) -> frozenset[str]:
    """The field names a declaration allows, as the JSON spells them (aliases: `from`)."""
    return frozenset(f.alias or name for name, f in model.model_fields.items())


def required(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields a declaration requires, in its order."""
    return tuple(f.alias or name for name, f in model.model_fields.items() if f.is_required())


def max_length(model: type[BaseModel], name: str) -> int:
    """The declared maximum length of a text field (a form's field takes the same)."""
    for meta in model.model_fields[name].metadata:
        limit = getattr(meta, "max_length", None)
        if isinstance(limit, int):
            return limit
    raise LookupError(f"{model.__name__}.{name} declares no max_length")


def validated(model: type[Declaration], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` checked against the declaration and returned as the API would pass it on (the fields given,
    by their JSON names); a refusal is VALIDATION_ERROR with the API's sentence ("schedule.time: …")."""
    try:
        return model.model_validate(data).model_dump(exclude_unset=True, by_alias=True)
    except ValidationError as e:
        parts = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        raise InputError(errors.VALIDATION_ERROR, "; ".join(parts) or "Invalid request.") from None


# --------------------------------------------------------------------------------------------------
# Field checks (the parsers')
# --------------------------------------------------------------------------------------------------


def fail(message: str) -> InputError:
    return InputError(errors.VALIDATION_ERROR, message)


def mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(f"{where} must be an object.")
    return cast(Mapping[str, Any], value)


def only(data: Mapping[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise fail(f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.")


def whole(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise fail(f"{where} must be a whole number from {low} to {high}, not {value!r}.")
    return value


def listed(value: object, where: str, limit: int = MAX_EVENTS) -> list[Any]:
    if not isinstance(value, list):
        raise fail(f"{where} must be a list.")
    if len(value) > limit:
        raise fail(f"{where} has more than {limit} items.")
    return value


def language(value: object, project: Project, where: str) -> str:
    languages = list(project.sms_languages or [])
    if not isinstance(value, str) or value not in languages:
        raise InputError(
            errors.UNKNOWN_LANGUAGE_CODE,
            f"{where}: '{value}' is not one of the project's languages ({', '.join(languages)}).",
        )
    return value
