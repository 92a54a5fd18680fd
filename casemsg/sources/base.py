"""The interface every source type implements (one module per type, like the gateway types).

A source type is a thin reader of one system's documented API. Its module declares everything about it
on its `SourceType` subclass:

- `type_name` (`casemsg sources add --type`, the API) and `title` (what a person reads);
- `config_schema`: each config key as a `Field` (type, required, help, `secret` for credentials, `url` for
  the addresses casemsg calls, checked by `casemsg.core.netguard`), read by the API's validation, the
  pages' forms and `casemsg sources add`; `validate_config` checks a config against it;
- `pulls` (casemsg reads pages from it on a schedule) and `receives` (it may post cases to the source's
  receiver URL), and `record_case_type` (whether its records carry a case type of their own);

and implements what it has of:

- `first(since)` → the cursor of the first page of what changed since `since` (None: everything), and
  `page(cursor)` → a `Page`: its records, the cursor of the next page (None after the last) and, when
  the system says, the total count and its clock (the `Date` of its answer);
- `verify_post(body, headers)` and `parse_post(body, headers)` for a receiver.

A record is a `Record`: the case id, the case fields the system has (type, name, owner, parent, closed),
its modification time on the system's clock (the watermark is made of these) and `fields`, the system's
properties by name, which the source's mapping turns into case properties (`casemsg.sources.mapping`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.sources.client import Client

if TYPE_CHECKING:
    from casemsg.sources.models import Source

FieldType = Literal["text", "number", "bool", "list"]
_PHRASES = {"text": "text", "number": "a number", "bool": "true or false", "list": "a list of text"}


@dataclass(frozen=True)
class Field:
    """One key of a source type's config."""

    type: FieldType = "text"
    required: bool = False
    help: str = ""
    secret: bool = False  # a password, token or key: write-only (never shown again once saved)
    url: bool = False  # casemsg calls this address: checked against internal addresses (netguard)
    choices: tuple[str, ...] = ()
    default: Any = None
    label: str = ""

    def problem(self, value: Any) -> str | None:
        """What the value must be instead (the end of "… must be …"), or None when it fits."""
        if value is None or value == "" or value == []:
            return None
        if self.type == "text":
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return _PHRASES["text"]
            if len(str(value)) > 2000:
                return "at most 2,000 characters"
            if self.choices and str(value) not in self.choices:
                return " or ".join(self.choices)
            return None
        if self.type == "number":
            if isinstance(value, bool):
                return _PHRASES["number"]
            try:
                number = float(value)
            except (TypeError, ValueError):
                return _PHRASES["number"]
            return None if 0 <= number <= 1_000_000_000 else "a number from 0 to 1,000,000,000"
        if self.type == "bool":
            return None if isinstance(value, bool) or value in (0, 1) else _PHRASES["bool"]
        if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value):
            return _PHRASES["list"]
        return None if len(value) <= 100 else "a list of at most 100 items"


@dataclass
class Record:
    """One case as the source has it."""

    id: str
    case_type: str = ""
    name: str | None = None
    owner_id: str | None = None
    external_id: str | None = None
    parent_id: str | None = None
    closed: bool | None = None
    modified: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # a field's name as people read it (DHIS2's attributes)
    problem: tuple[str, str] | None = None  # (catalogue code, reason): the record cannot be applied


@dataclass
class Page:
    records: list[Record]
    next: dict[str, Any] | None  # the cursor of the next page; None after the last
    total: int | None = None
    clock: datetime | None = None  # the source's clock when it answered


def parse_time(value: Any) -> datetime | None:
    """A system's timestamp (ISO 8601, with or without an offset, 'Z', micro- or milliseconds) in UTC;
    None when it is not one. A time without an offset is read as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        return None
    return d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)


def iso(d: datetime, places: int = 6) -> str:
    """UTC ISO 8601 with a Z, to `places` decimals of a second (3 for milliseconds)."""
    text = d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text[: len(text) - (6 - places)] if places < 6 else text).rstrip(".") + "Z"


# Keys every source type takes besides its own.
COMMON_CONFIG: dict[str, Field] = {
    "default_country": Field(
        help="The country of local phone numbers (ISO code, e.g. KE); default: the project's time zone's country."
    ),
    "overlap_seconds": Field(
        "number", default=120, help="Seconds before the watermark every incremental sync reads again (default 120)."
    ),
}


class SourceType:
    type_name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    config_schema: ClassVar[dict[str, Field]] = {}
    pulls: ClassVar[bool] = True
    receives: ClassVar[bool] = False
    # Whether its records carry their own case type (CommCare's case_type, ODK's entity list): without
    # one, a source of this type needs its `case_type`.
    record_case_type: ClassVar[bool] = False

    def __init__(self, source: Source, client: Client | None = None) -> None:
        self.source = source
        self.config: dict[str, Any] = dict(source.config or {})
        self._client = client

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("this source type needs an HTTP client here")
        return self._client

    def setting(self, key: str) -> Any:
        value = self.config.get(key)
        if value is None or value == "":
            return self.fields()[key].default
        return value

    @property
    def page_size(self) -> int:
        return max(1, min(int(float(self.setting("page_size") or 1000)), 10_000))

    # --- pulling -----------------------------------------------------------------------------------
    def first(self, since: datetime | None) -> dict[str, Any]:
        raise NotImplementedError(f"{self.type_name} sources are not read by casemsg")

    def page(self, cursor: dict[str, Any]) -> Page:
        raise NotImplementedError(f"{self.type_name} sources are not read by casemsg")

    # --- receiving ---------------------------------------------------------------------------------
    def verify_post(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise InputError(FORBIDDEN, 403) unless the post is the source's own."""
        raise InputError(errors.FORBIDDEN, "This source takes no posts.", 403)

    def parse_post(self, body: bytes, headers: Mapping[str, str]) -> list[Record]:
        raise InputError(errors.FORBIDDEN, "This source takes no posts.", 403)

    # --- the config --------------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> dict[str, Field]:
        """The type's config keys, then those every type takes."""
        return {**cls.config_schema, **COMMON_CONFIG}

    @classmethod
    def url_keys(cls) -> list[str]:
        return [k for k, f in cls.fields().items() if f.url]

    @classmethod
    def secret_keys(cls) -> list[str]:
        return [k for k, f in cls.fields().items() if f.secret]

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> None:
        """Checks beyond each field's own (e.g. one of two kinds of credentials); raise InputError."""
        return None

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Refuse (422 INVALID_SOURCE_CONFIG) unknown keys, missing required keys and values of the wrong type."""
        schema = cls.fields()
        unknown = sorted(set(config) - set(schema))
        if unknown:
            raise InputError(
                errors.INVALID_SOURCE_CONFIG,
                f"Unknown config key '{str(unknown[0])[:64]}' for a {cls.type_name} source; "
                f"its keys are {', '.join(schema)}.",
            )
        for key, f in schema.items():
            value = config.get(key)
            if f.required and (value is None or value == "" or value == []):
                raise InputError(errors.INVALID_SOURCE_CONFIG, f"A {cls.type_name} source needs '{key}': {f.help}")
            problem = f.problem(value)
            if problem is not None:
                raise InputError(errors.INVALID_SOURCE_CONFIG, f"'{key}' must be {problem}.")
        cls.check_config(config)

    @classmethod
    def shown_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The config as anyone may see it: secrets left out (write-only)."""
        schema = cls.fields()
        return {k: v for k, v in config.items() if k in schema and not schema[k].secret}

    @classmethod
    def merged_config(cls, new: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
        """An edit's config: a secret left out or empty keeps the stored one (it is never shown, so a form
        or a client cannot send it back)."""
        out = {k: v for k, v in new.items() if not (v is None or v == "")}
        for key in cls.secret_keys():
            if key not in out and stored.get(key):
                out[key] = stored[key]
        return out
