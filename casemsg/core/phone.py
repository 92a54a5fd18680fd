"""The seeds' phone number rule: international E.164 digits, country code first, no '+', spaces, dashes
or punctuation. `15551234567` and `919812345678` are valid, `1-206-617-1234` is not.

A project's **default country** (ISO 3166 alpha-2, set from its time zone when it is created: Africa/Nairobi
→ KE) reads a local number: `local_fix("0711 222 333", "KE")` is 254711222333, which the write paths store
(cases, mobile workers, source sync) and `describe()` shows ("0711 222 333 → +254 711 222333 (Kenya, the
project's default country)"); `check(value, country=…)` offers the same correction for a value stored before.

Validated with `phonenumbers` (core only: never the geocoder or carrier data, which are large); the time
zones' countries and the countries' names come from the tz database's zone.tab and iso3166.tab (the
`tzdata` package, else the system's zoneinfo).
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult
from phonenumbers import phonenumberutil as _pnu
from phonenumbers.phonemetadata import PhoneMetadata

from casemsg.core import errors

# The United States and its territories: numbers here need recorded opt-in consent.
DEFAULT_CONSENT_REGIONS = ["US", "PR", "GU", "VI", "AS", "MP", "UM"]

_PUNCTUATION = {
    "-": "dashes",
    " ": "spaces",
    "(": "brackets",
    ")": "brackets",
    "[": "brackets",
    "]": "brackets",
    ".": "dots",
    "/": "slashes",
}


@dataclass
class PhoneCheck:
    """The outcome of checking one phone number string."""

    raw: str
    number: str | None = None  # normalized E.164 digits when valid
    error: str | None = None  # an error code from the catalogue
    message: str = ""
    fix: str | None = None
    suggestion: str | None = None  # the corrected value, when one is obvious
    region: str | None = None
    country_code: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.number is not None


# Digits of other scripts (Arabic-Indic, Devanagari, full-width, …): not removed but rewritten as 0-9.
_OTHER_DIGITS = "digits other than 0-9"
# E.164: at most 15 digits, country code included.
MAX_DIGITS = 15


def _what_to_remove(value: str) -> list[str]:
    found: list[str] = []
    for ch in value:
        if ch.isascii() and ch.isdigit():
            continue
        name = _PUNCTUATION.get(ch)
        if name is None:
            if unicodedata.decimal(ch, None) is not None:
                name = _OTHER_DIGITS
            elif ch.isalpha():
                name = "letters"
            else:
                name = "punctuation" if ch.isascii() else "other characters"
        if name not in found:
            found.append(name)
    return found


def _fix_action(bad: list[str]) -> str:
    parts = []
    remove = [b for b in bad if b != _OTHER_DIGITS]
    if remove:
        parts.append(f"remove the {_join(remove)}")
    if _OTHER_DIGITS in bad:
        parts.append("write the digits as 0-9")
    action = " and ".join(parts)
    return action[:1].upper() + action[1:]


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def check(value: object, *, auto_fix: bool = False, country: str = "") -> PhoneCheck:
    """Check a phone number string against the seeds' rule (see `_check`); results are cached, since
    the send pipeline checks the same numbers batch after batch and parsing dominates its cost.

    `country`, the project's default country: a value that is no international number but a local
    number of that country is still refused (it is stored so, and cannot be sent), with the international
    number as its suggestion and `local_fix(…).describe()` as its fix — the one-click fix of the case page.
    """
    # Shared between callers: treat the result as read-only (copy it with dataclasses.replace to change it).
    text = "" if value is None else str(value)
    result = _cached_check(text, auto_fix)
    if not country or result.ok or result.suggestion:
        return result
    fix = local_fix(text, country)
    if fix is None:
        return result
    return replace(
        result,
        error=errors.INVALID_PHONE_NUMBER,
        suggestion=fix.number,
        message=(
            f"'{text.strip()}' is a local number of {fix.country_name}, the project's default country; "
            "a stored number starts with the country code."
        ),
        fix=fix.describe(),
    )


@lru_cache(maxsize=65536)
def _cached_check(value: str, auto_fix: bool) -> PhoneCheck:
    return _check(value, auto_fix=auto_fix)


# --- the project's default country -------------------------------------------------------------------
@dataclass(frozen=True)
class LocalFix:
    """A local number read with the project's default country: what was written and what it stands for."""

    raw: str
    number: str  # E.164 digits, no '+' (as stored)
    country: str  # ISO 3166 alpha-2

    @property
    def shown(self) -> str:
        """The number as people read it: +254 711 222333."""
        parsed = phonenumbers.parse("+" + self.number, None)
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

    @property
    def country_name(self) -> str:
        return country_name(self.country)

    def describe(self) -> str:
        """'0711 222 333 → +254 711 222333 (Kenya, the project's default country)'."""
        return f"{self.raw.strip()} → {self.shown} ({self.country_name}, the project's default country)"


def local_fix(value: object, country: str) -> LocalFix | None:
    """The international number a local number of `country` stands for, or None: when the country is
    blank, the value is already an international number (or one with an obvious fix of its own, such as
    1-206-617-1234), starts with + or 00 (written internationally), has letters, or is no valid number of
    the country. `0711 222 333` in KE is 254711222333; so is `711222333`."""
    raw = "" if value is None else str(value)
    return _local_fix(raw, (country or "").upper()) if country else None


@lru_cache(maxsize=65536)
def _local_fix(raw: str, country: str) -> LocalFix | None:
    s = raw.strip()
    if not s or s.startswith(("+", "00")) or country not in phonenumbers.SUPPORTED_REGIONS:
        return None
    international = _cached_check(raw, False)
    if international.ok or international.suggestion:
        return None
    if any(ch.isalpha() for ch in s) or any(
        not (ch.isdigit() or ch in _PUNCTUATION) and unicodedata.decimal(ch, None) is None for ch in s
    ):
        return None
    digits = "".join(str(unicodedata.decimal(ch)) for ch in s if unicodedata.decimal(ch, None) is not None)
    if not digits or len(digits) > MAX_DIGITS:
        return None
    try:
        parsed = phonenumbers.parse(digits, country)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return LocalFix(
        raw=raw, number=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:], country=country
    )


def is_country(code: object) -> bool:
    """Whether `code` is an ISO 3166 alpha-2 code of a country with phone numbers ('KE', 'US'; upper case)."""
    return isinstance(code, str) and code in phonenumbers.SUPPORTED_REGIONS


def _tz_table(name: str) -> str:
    """A table of the tz database: the tzdata package's copy, else the system's zoneinfo directory's."""
    try:
        return resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    for base in zoneinfo.TZPATH:
        try:
            return (Path(base) / name).read_text(encoding="utf-8")
        except OSError:
            continue
    return ""


def _rows(name: str) -> list[list[str]]:
    return [line.split("\t") for line in _tz_table(name).splitlines() if line and not line.startswith("#")]


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    # zone.tab names one country per zone (zone1970.tab may name several: Europe/Brussels is BE, LU, NL).
    return {r[2]: r[0] for r in _rows("zone.tab") if len(r) >= 3}


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    return {r[0]: r[1] for r in _rows("iso3166.tab") if len(r) >= 2}


def country_of_zone(zone: str) -> str:
    """The country of a time zone by the tz database ('Africa/Nairobi' → 'KE'); '' for UTC, Etc/… and the
    zones of no one country. Only a country with phone numbers is answered."""
    code = _zone_countries().get(zone or "", "")
    return code if is_country(code) else ""


def country_choices() -> list[tuple[str, str]]:
    """("", "None") then every country with phone numbers as (code, "Name (CODE)"), by name: a form's select."""
    named = sorted((country_name(c), c) for c in phonenumbers.SUPPORTED_REGIONS if c != "001")
    return [("", "None: numbers must start with the country code"), *((c, f"{n} ({c})") for n, c in named)]


def country_name(code: str) -> str:
    """A country's name by the tz database's iso3166.tab ('KE' → 'Kenya'); the code itself when unknown."""
    return _country_names().get(code, code)


def _check(value: object, *, auto_fix: bool = False, number_only: bool = False) -> PhoneCheck:
    """Check a phone number string against the seeds' rule.

    `auto_fix` (the project's "auto-normalize phone numbers" setting) accepts a number whose only fault
    is a national leading zero after the country code, or punctuation around otherwise valid digits,
    and stores the corrected value.
    """
    raw = "" if value is None else str(value)
    result = PhoneCheck(raw=raw)
    s = raw.strip()
    if s.startswith("+"):
        s = s[1:]
    if not s:
        result.error = errors.NO_PHONE_NUMBER
        result.message = "No phone number is set."
        return result

    if not s.isdigit() or not s.isascii():
        bad = _what_to_remove(s)
        digits = "".join(str(unicodedata.decimal(ch)) for ch in s if unicodedata.decimal(ch, None) is not None)
        inner = check(digits, auto_fix=auto_fix) if digits and "letters" not in bad else None
        if inner is not None and inner.ok and auto_fix:
            return replace(inner, raw=raw, warnings=[*inner.warnings, f"'{raw}' was normalized to {inner.number}."])
        result.error = errors.INVALID_PHONE_NUMBER
        result.message = (
            f"'{raw}' is not a valid phone number: use digits only, country code first, "
            f"with no spaces, dashes or punctuation (it contains {_join(bad)})."
        )
        # Suggest the bare digits only when they form a real, assigned number: stripping "(206) 617 1234"
        # gives 2066171234, which parses as an Egyptian number and would be a misleading suggestion.
        if inner is not None and ((inner.ok and not inner.warnings) or inner.suggestion):
            result.suggestion = inner.number or inner.suggestion
            result.fix = f"{_fix_action(bad)}: {result.suggestion}"
        else:
            result.fix = f"{_fix_action(bad)} and write the number as country code then national number."
        return result

    if len(s) > MAX_DIGITS:
        result.error = errors.INVALID_PHONE_NUMBER
        result.message = f"'{raw}' has {len(s)} digits; an international number has at most {MAX_DIGITS}."
        result.fix = "Check the number for extra digits."
        return result

    try:
        parsed = _parse_international(s)
    except NumberParseException:
        result.error = errors.INVALID_PHONE_NUMBER
        result.message = f"'{raw}' does not start with a known country code."
        result.fix = "Start the number with the country code (for example 1 for the USA or 91 for India)."
        if s.startswith("00") and len(s) > 2:
            # 00 is the international call prefix dialled before the country code in most countries.
            inner = check(s[2:])
            if inner.ok:
                result.suggestion = inner.number
                result.fix = f"Remove the leading 00 (the international call prefix): {inner.number}"
        return result

    cc = parsed.country_code
    result.country_code = cc
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        result.error = errors.INVALID_PHONE_NUMBER
        result.message = f"'{raw}' is too short for a phone number with country code {cc}."
        result.fix = "Write the whole number: country code, then the full national number."
        return result
    if reason in (ValidationResult.TOO_LONG, ValidationResult.INVALID_LENGTH):
        result.error = errors.INVALID_PHONE_NUMBER
        result.message = f"'{raw}' has an impossible length for a phone number with country code {cc}."
        result.fix = "Check the number for extra or missing digits."
        return result

    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    if e164 != s:
        # phonenumbers drops a national trunk prefix ("0") that people often keep after the country
        # code: 9109812345678 is really 919812345678.
        national = s[len(str(cc)) :]
        # The corrected number only needs to be possible: like 15551234567 it is then accepted with a
        # warning, so the fix must name it (the older seed's 910981231234 → 91981231234).
        if national.startswith("0") and phonenumbers.is_possible_number(parsed):
            if auto_fix:
                s = e164
                result.warnings.append(f"'{raw}' was normalized to {e164} (national leading 0 removed).")
            else:
                result.error = errors.INVALID_PHONE_NUMBER
                result.suggestion = e164
                result.message = (
                    f"'{raw}' keeps the national leading 0 after the country code {cc}; international numbers drop it."
                )
                result.fix = f"Remove the leading 0 of the national number: {e164}"
                return result
        else:
            result.error = errors.INVALID_PHONE_NUMBER
            result.message = f"'{raw}' is not a valid phone number for country code {cc}."
            result.fix = "Check the number with the person."
            return result

    result.number = s
    if number_only:
        # the number is decided: region and the assigned-range warning are for pages and consent, not for
        # `normalized_number` (the registry of every imported case), where they were half the check's cost
        return result
    result.region = phonenumbers.region_code_for_number(parsed)
    # is_valid_number(parsed) would look the region up again (for +1, one validation per region of the
    # code); with the region at hand it is exactly is_valid_number_for_region
    if result.region is None or not phonenumbers.is_valid_number_for_region(parsed, result.region):
        # The seeds' own example 15551234567 is in no assigned range, yet it must be accepted.
        result.warnings.append(
            f"{s} has a possible length but is in no assigned number range for country code {cc}; "
            "check that it is a real number."
        )
    return result


def _parse_international(digits: str) -> phonenumbers.PhoneNumber:
    """`phonenumbers.parse("+" + digits)`, with a fast path for the common case.

    A bulk import checks every number once, and phonenumbers' parse is most of that cost: it runs
    regular expressions for punctuation, extensions and viability that a string of digits cannot need.
    For digits whose national part keeps no national prefix (nothing phonenumbers would strip) and no
    leading zero, the result is plainly the country code and the rest as a number; every other input
    goes through parse itself. A test compares the two over every country code."""
    if len(digits) > 2:
        cc, rest = _pnu._extract_country_code(digits)
        if cc and len(rest) >= 2 and rest[0] != "0":
            prefix = _national_prefix(cc)
            if prefix is None or prefix.match(rest) is None:
                return phonenumbers.PhoneNumber(country_code=cc, national_number=int(rest))
    return phonenumbers.parse("+" + digits, None)


@lru_cache(maxsize=512)
def _national_prefix(cc: int) -> re.Pattern[str] | None:
    """The national prefix phonenumbers would strip after this country code, compiled (None: none)."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(cc, phonenumbers.region_code_for_country_code(cc))
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(prefix) if prefix else None


def needs_consent(check_result: PhoneCheck, consent_regions: list[str] | None) -> bool:
    """Whether SMS to this number requires recorded opt-in consent.

    A +1 number whose region cannot be determined counts as consent-required: it may well be a US
    number, and sending without consent is the failure that matters.
    """
    if not check_result.ok:
        return False
    regions = set(DEFAULT_CONSENT_REGIONS if consent_regions is None else consent_regions)
    if check_result.region in regions:
        return True
    if check_result.region is None and check_result.country_code == 1:
        # Any consent region sharing country code 1 (the US, its territories, Canada, …) may be the one.
        return bool(regions & set(phonenumbers.region_codes_for_country_code(1)))
    return False


_E164 = re.compile(r"^\d{7,15}$")


def looks_like_e164(value: str) -> bool:
    """Cheap pre-check for hot paths (inbound routing); full validation is `check`."""
    return bool(_E164.match(value))


@functools.lru_cache(maxsize=65536)
def _normalized(value: str) -> str | None:
    return _check(value, number_only=True).number


def normalized_number(value: object) -> str | None:
    """`check(value).number`, memoized.

    Parsing with phonenumbers is the costliest step of syncing a case, and the same numbers come back
    again and again (every update of a case, re-imports, numbers shared by a household). The check is a
    pure function of the string (check starts with str(value)), so caching it is safe."""
    return None if value is None else _normalized(str(value))


def number_key(value: object) -> str:
    """The number a written phone value stands for, to tell whether two values are the same number: its
    E.164 digits when valid, else its digits alone — `+1 206-617-1234`, `1-206-617-1234` and `12066171234`
    are one number (consent and verification stay with it); `0711…` and `254711…` are not known to be."""
    raw = "" if value is None else str(value)
    return normalized_number(raw) or re.sub(r"\D", "", raw)
