"""The interface every keyword action implements, and what its handler is given.

An action is one module with one `KeywordAction` subclass that declares
- `name` (stored on the keyword, taken by the API and the form) and `description` (one line);
- `params`: its parameters (`casemsg.core.fields.Param`: type, label, help, required, default), stored in
  the keyword's `params`; the API's body, the form's fields and the first checks are built from them;
- `texts`: the texts it sends on its own (`casemsg.consent.texts.SystemText`), translated by each project
  on its Texts page and registered in the catalogue by `InboundConfig.ready`;
and implements `check` (its own rules beyond the declaration, run when a keyword is saved), `handle` (run
by the router with a `KeywordContext`; returns the outcome) and, for a `choice` parameter, `choices`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from casemsg.cases.models import Case
from casemsg.consent.texts import SystemText
from casemsg.core import errors, fields
from casemsg.core.errors import InputError
from casemsg.core.fields import Param
from casemsg.gateways.models import Gateway
from casemsg.inbound.models import Keyword
from casemsg.messaging import render
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

# Sent by every action that needs the sender's case when the sender has none.
NOT_REGISTERED = SystemText(
    "keyword_not_registered",
    "Keyword from an unregistered number",
    "The answer to a keyword that needs the sender's case (update_case, start_survey, a survey's keyword) "
    "when no case of the project holds the number.",
    "We could not find your record; this number is not registered.",
    group="Keywords",
)


class SendText(Protocol):
    """Send one of the texts of the catalogue (casemsg.consent.texts) to the sender, in their language."""

    def __call__(self, key: str, values: Mapping[str, object] | None = None) -> None: ...


@dataclass
class KeywordContext:
    """What a handler gets when an inbound message's first word matched its keyword."""

    keyword: Keyword
    project: Project
    contact: Case | MobileWorker | None  # the sender, when known
    rest: str  # the words after the keyword
    send_reply: Callable[[dict[str, str]], None]  # {language: template} → sent in the sender's language
    send_text: SendText  # a catalogue text's key (and its placeholders' values) → sent in the sender's language
    contacts_changed: bool = False  # a handler sets it when it changed a contact (the router re-reads then)
    gateway: Gateway | None = None  # the gateway the message came in on

    @property
    def params(self) -> dict[str, str]:
        return dict(self.keyword.params or {})

    def answered(self) -> str:
        """How an action ends: the keyword's own reply, if it has one."""
        if self.keyword.reply:
            self.send_reply(self.keyword.reply)
        return f"keyword:{self.keyword.keyword}"


class KeywordAction(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    texts: ClassVar[tuple[SystemText, ...]] = ()

    def validate(
        self, params: Mapping[str, object] | None, reply: Mapping[str, str], project: Project
    ) -> dict[str, str]:
        """The parameters as stored: the declaration's checks (`fields.cleaned`), then the action's own
        `check`. Raises InputError."""
        article = "an" if self.name[:1] in "aeiou" else "a"
        values = fields.cleaned(self.params, params, f"{article} {self.name} keyword")
        self.check(values, reply, project)
        return values

    def check(self, params: dict[str, str], reply: Mapping[str, str], project: Project) -> None:
        """The action's own rules beyond its declaration (a survey that exists); raises InputError."""
        return None

    def choices(self, project: Project, param: Param) -> list[tuple[str, str]]:
        """(value, label) of a `choice` parameter for this project."""
        return []

    def summary(self, params: Mapping[str, str], labels: Mapping[str, Mapping[str, str]]) -> str:
        """One line for the Keywords page: what this keyword's parameters say. `labels`: for each `choice`
        parameter, {value: label} of the project's choices (read once for the whole list)."""
        parts = []
        for p in self.params:
            value = params.get(p.name, "")
            if p.type == "choice" and value:
                value = labels.get(p.name, {}).get(value, f"({p.label.lower()} {value} no longer exists)")
            if value:
                parts.append(f"{p.label}: {value}")
        return ", ".join(parts)

    @abstractmethod
    def handle(self, ctx: KeywordContext) -> str:
        """Do the action for one inbound message; returns the outcome (for the message's history)."""


def check_reply(reply: Mapping[str, str]) -> None:
    """Every action's reply is a template: `{case.name}`, `{case.<property>}`, `{recipient.name}`, `{rest}`
    (the words after the keyword). A placeholder of any other form is refused when the keyword is saved,
    rather than failing each reply later."""
    for lang, text in reply.items():
        problem = render.check_template(text, extra=("rest",))
        if problem:
            raise InputError(
                errors.CANNOT_RENDER_MESSAGE, f"The {lang} reply is not a valid template: {problem} (or {{rest}})."
            )
