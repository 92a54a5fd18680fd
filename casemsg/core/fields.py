"""Declared parameters: the values a plug-in module takes (a keyword action's parameters), each declared
once with its type, label, help and whether it is required. The checks, the API's description and the
pages' form fields are built from the declaration (as a gateway type's form is from its `config_schema`,
casemsg.gateways.base.ConfigField), so a new parameter is one line where its module declares it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from casemsg.core import errors
from casemsg.core.errors import InputError

ParamType = Literal["text", "choice"]
TYPES: Final[tuple[ParamType, ...]] = ("text", "choice")


@dataclass(frozen=True)
class Param:
    """One parameter: `text` (free text, at most `max_length` characters) or `choice` (one of the values
    its module offers for a project, e.g. the project's surveys)."""

    name: str
    label: str
    type: ParamType = "text"
    help: str = ""
    required: bool = False
    default: str = ""  # taken when the value is absent or empty
    max_length: int = 255

    def describe(self) -> str:
        """One line for the API's documentation: `name` (required): help."""
        return f"{self.name}{' (required)' if self.required else ''}: {self.help or self.label}"


def cleaned(params: Sequence[Param], given: Mapping[str, object] | None, what: str) -> dict[str, str]:
    """The values as stored: every declared parameter, as text (a number is taken as its text), trimmed,
    the default for an absent or empty one. `what` names the owner in a refusal ("an update_case keyword").
    Refused (422 VALIDATION_ERROR): a name that is not declared, a value that is not text, one too long,
    a required one missing."""
    declared = {p.name: p for p in params}
    given = given or {}
    unknown = [name for name in given if name not in declared]
    if unknown:
        names = ", ".join(declared) or "none"
        raise InputError(
            errors.VALIDATION_ERROR, f"params.{unknown[0]} is not a parameter of {what}; its parameters: {names}."
        )
    out: dict[str, str] = {}
    for p in params:
        value = given.get(p.name)
        if value is None:
            value = ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InputError(errors.VALIDATION_ERROR, f"params.{p.name} must be text.")
        text = str(value).strip()
        if "\x00" in text:
            raise InputError(errors.VALIDATION_ERROR, f"params.{p.name} contains a NUL character.")
        if len(text) > p.max_length:
            raise InputError(errors.VALUE_TOO_LONG, f"params.{p.name} is longer than {p.max_length} characters.")
        text = text or p.default
        if p.required and not text:
            raise InputError(errors.VALIDATION_ERROR, f"{what[:1].upper()}{what[1:]} needs {p.name}.")
        out[p.name] = text
    return out
