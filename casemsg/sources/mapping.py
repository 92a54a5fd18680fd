"""A source's field mapping: which source field becomes which case property, through which transforms.

A mapping is a list of rules, each `{"from": source field, "to": case property, "transform": …}`:

- `to` is a case property (the seeds' contact properties first: `contact_phone_number`, `language_code`,
  `time_zone`, `contact_phone_number_is_verified`, `commcare_email_address`), or one of the case's own
  fields `name`, `owner_id` (also written `owner`), `external_id`, `parent_id`;
- `transform` is one transform or a list of them, applied in order:
  - `{"type": "phone", "country": "KE"}` — a local number to E.164 digits with the country's code (the
    source's `default_country`, else the project's default country); a number already in
    international form stays; one that cannot be read is kept as it is (the contact status explains it);
  - `{"type": "date", "format": "%d/%m/%Y"}` — a date in that format (strftime codes; without `format`,
    ISO 8601, a date-time's date part) to `YYYY-MM-DD`; a value that is not such a date skips the record;
  - `{"type": "map", "values": {"yes": "1", "no": "0"}, "other": "keep" | "empty" | "skip"}` — a value map
    (matched exactly, then ignoring case and spaces around); `other` says what an unlisted value does;
  - `{"type": "bool"}` — yes/no, true/false, y/n, 1/0 to `1`/`0`;
  - `{"type": "text"}` — the value as text (the default).

Fields the mapping does not name are kept as case properties under their own names when the source's
`keep_unmapped` is on (CommCare's properties are the seeds' own names), dropped otherwise. A field the
record does not have leaves the case property as it is; a field whose value is null (or CommCare's
export `---`) removes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import phonenumbers

from casemsg.cases.services import CaseChange
from casemsg.core import errors, phone
from casemsg.core.errors import InputError

# Offered first when a mapping is made (the seeds' contact properties), then the source's own fields.
SEED_TARGETS = (
    "contact_phone_number",
    "language_code",
    "time_zone",
    "contact_phone_number_is_verified",
    "commcare_email_address",
    "owner_id",
)
CASE_FIELDS = ("name", "owner_id", "external_id", "parent_id")
_ALIASES = {"owner": "owner_id", "case_name": "name"}
TRANSFORMS = ("text", "phone", "date", "map", "bool")
MAX_RULES = 500
_TRUE = {"1", "yes", "y", "true", "t", "oui", "si", "ndiyo"}
_FALSE = {"0", "no", "n", "false", "f", "non", "hapana"}
_STRFTIME = re.compile(r"^(?:[^%]|%[aAbBdHIjmMpSyYfzZ%])*$")


class MappingError(Exception):
    """A record's value cannot go through its rule: the record is skipped, with this reason."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Transform:
    type: str = "text"
    country: str = ""
    format: str = ""
    values: tuple[tuple[str, str], ...] = ()
    other: str = "keep"


@dataclass(frozen=True)
class Rule:
    source: str
    target: str
    transforms: tuple[Transform, ...] = ()


@dataclass(frozen=True)
class Plan:
    rules: tuple[Rule, ...] = ()
    keep_unmapped: bool = True
    country: str = ""  # for phone transforms without their own
    case_type: str = ""  # overrides the record's own
    auto_normalize: bool = False  # the project's setting: cases.services normalizes phone numbers too
    project_country: str = ""  # the project's default country: cases.services stores its local numbers fixed

    @property
    def mapped_sources(self) -> frozenset[str]:
        return frozenset(r.source for r in self.rules)


def _bad(message: str) -> InputError:
    return InputError(errors.INVALID_MAPPING, message)


def _transform(raw: Any, where: str) -> Transform:
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise _bad(f'{where}: a transform is an object such as {{"type": "phone"}}.')
    kind = raw.get("type", "text")
    if kind not in TRANSFORMS:
        raise _bad(f"{where}: unknown transform '{kind}'; use one of {', '.join(TRANSFORMS)}.")
    allowed = {"type", "country", "format", "values", "other"}
    extra = sorted(set(raw) - allowed)
    if extra:
        raise _bad(f"{where}: unknown transform key '{extra[0]}'.")
    country = str(raw.get("country") or "").strip().upper()
    if country and country not in phonenumbers.SUPPORTED_REGIONS:
        raise _bad(f"{where}: '{country}' is not a country code (use ISO codes such as KE).")
    fmt = str(raw.get("format") or "")
    if fmt and (len(fmt) > 64 or not _STRFTIME.match(fmt) or "%" not in fmt):
        raise _bad(f"{where}: '{fmt[:64]}' is not a date format (use codes such as %d/%m/%Y).")
    values = raw.get("values") or {}
    if not isinstance(values, dict) or len(values) > 1000:
        raise _bad(f"{where}: 'values' is an object of at most 1,000 source value → case value pairs.")
    pairs = []
    for k, v in values.items():
        if not isinstance(v, str | int | float) or isinstance(v, bool) or len(str(k)) > 255 or len(str(v)) > 255:
            raise _bad(f"{where}: each value of 'values' is text of at most 255 characters.")
        pairs.append((str(k), str(v)))
    other = str(raw.get("other") or "keep")
    if other not in ("keep", "empty", "skip"):
        raise _bad(f"{where}: 'other' is keep, empty or skip.")
    if kind == "map" and not pairs:
        raise _bad(f"{where}: a map transform needs 'values'.")
    return Transform(kind, country, fmt, tuple(pairs), other)


def parse(raw: Any) -> tuple[Rule, ...]:
    """The rules of a stored or submitted mapping; raises InputError(INVALID_MAPPING) naming the problem."""
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        raise _bad('A mapping is a list of rules such as {"from": "phone", "to": "contact_phone_number"}.')
    if len(raw) > MAX_RULES:
        raise _bad(f"A mapping has at most {MAX_RULES} rules.")
    rules: list[Rule] = []
    targets: set[str] = set()
    for i, item in enumerate(raw, start=1):
        where = f"Rule {i}"
        if not isinstance(item, dict):
            raise _bad(f"{where} is not an object with 'from' and 'to'.")
        extra = sorted(set(item) - {"from", "to", "transform"})
        if extra:
            raise _bad(f"{where}: unknown key '{extra[0]}' (a rule has from, to and transform).")
        source = item.get("from")
        target = item.get("to")
        for name, value in (("from", source), ("to", target)):
            if not isinstance(value, str) or not value.strip() or len(value) > 255 or "\x00" in value:
                raise _bad(f"{where}: '{name}' must be a field name of 1 to 255 characters.")
        assert isinstance(source, str) and isinstance(target, str)
        target = _ALIASES.get(target.strip(), target.strip())
        if target in targets:
            raise _bad(f"{where}: '{target}' is the target of two rules.")
        targets.add(target)
        raw_t = item.get("transform")
        listed = raw_t if isinstance(raw_t, list) else ([] if raw_t in (None, "") else [raw_t])
        if len(listed) > 10:
            raise _bad(f"{where}: at most 10 transforms.")
        transforms = tuple(_transform(t, where) for t in listed)
        rules.append(Rule(source.strip(), target, transforms))
    return tuple(rules)


def dump(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """Rules as stored and shown (the input's shape, normalized)."""
    out = []
    for r in rules:
        ts = []
        for t in r.transforms:
            d: dict[str, Any] = {"type": t.type}
            if t.country:
                d["country"] = t.country
            if t.format:
                d["format"] = t.format
            if t.values:
                d["values"] = dict(t.values)
            if t.type == "map" and t.other != "keep":
                d["other"] = t.other
            ts.append(d)
        rule: dict[str, Any] = {"from": r.source, "to": r.target}
        if ts:
            rule["transform"] = ts[0] if len(ts) == 1 else ts
        out.append(rule)
    return out


# --- values ------------------------------------------------------------------------------------------
def plain(value: Any) -> str | None:
    """A source value as a case property value: text, '1'/'0' for booleans, a list's items joined by
    spaces (ODK's select-multiple), an object as JSON; None removes the property."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return " ".join(p for p in (plain(v) for v in value) if p)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _phone(value: str, country: str) -> str:
    text = value.strip()
    if not text:
        return text
    chk = phone.check(text)
    if chk.ok and chk.number:
        return chk.number
    try:
        parsed = phonenumbers.parse(text, country or None)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(parsed):
        return text
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _date(value: str, fmt: str, field_name: str) -> str:
    text = value.strip()
    if not text:
        return text
    try:
        if fmt:
            return datetime.strptime(text, fmt).date().isoformat()
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        shown = fmt or "YYYY-MM-DD"
        raise MappingError(
            errors.UNMAPPABLE_VALUE, f"{field_name}: '{text[:80]}' is not a date in the format {shown}."
        ) from None


def apply_transforms(value: Any, rule: Rule, country: str) -> str | None:
    out = plain(value)
    for t in rule.transforms:
        if out is None:
            return None
        if t.type == "phone":
            out = _phone(out, t.country or country)
        elif t.type == "date":
            out = _date(out, t.format, rule.source)
        elif t.type == "bool":
            low = out.strip().lower()
            if low in _TRUE:
                out = "1"
            elif low in _FALSE:
                out = "0"
            elif low:
                raise MappingError(errors.UNMAPPABLE_VALUE, f"{rule.source}: '{out[:80]}' is not yes or no.")
        elif t.type == "map":
            table = dict(t.values)
            if out in table:
                out = table[out]
            else:
                folded = {k.strip().lower(): v for k, v in t.values}
                key = out.strip().lower()
                if key in folded:
                    out = folded[key]
                elif t.other == "empty":
                    out = ""
                elif t.other == "skip":
                    raise MappingError(
                        errors.UNMAPPABLE_VALUE, f"{rule.source}: '{out[:80]}' is not one of the mapped values."
                    )
    return out


def to_change(record: Any, m: Plan) -> CaseChange:
    """The case change a record stands for under the mapping; raises MappingError."""
    fields: Mapping[str, Any] = record.fields
    props: dict[str, object | None] = {}
    if m.keep_unmapped:
        mapped = m.mapped_sources
        for key, value in fields.items():
            if key not in mapped:
                props[key] = plain(value)
    own: dict[str, str | None] = {}
    for rule in m.rules:
        if rule.source not in fields:
            continue
        value = apply_transforms(fields[rule.source], rule, m.country)
        if rule.target in CASE_FIELDS:
            own[rule.target] = value
        else:
            props[rule.target] = value
    name = own.get("name", record.name)
    return CaseChange(
        case_id=record.id,
        case_type=(m.case_type or record.case_type or None),
        name=name if name is not None else None,
        owner_id=own.get("owner_id", record.owner_id),
        external_id=own.get("external_id", record.external_id),
        parent_id=own.get("parent_id", record.parent_id),
        properties=props,
        closed=record.closed,
    )


def targets_offered(source_fields: Sequence[str]) -> list[str]:
    """The case properties a mapping form offers: the seeds' contact properties first, then the source's
    own field names."""
    seen = list(SEED_TARGETS)
    seen += [f for f in source_fields if f not in seen]
    return seen
