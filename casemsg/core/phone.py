"""The seeds' phone number rule: international E.164 digits, country code first, no '+', spaces, dashes
or punctuation. `15551234567` and `919812345678` are valid, `1-206-617-1234` is not.

Validated with `phonenumbers` (core only: never the geocoder or carrier data, which are large).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

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


def check(value: object, *, auto_fix: bool = False) -> PhoneCheck:
    """Check a phone number string against the seeds' rule (see `_check`); results are cached, since
    the send pipeline checks the same numbers batch after batch and parsing dominates its cost."""
    # Shared between callers: treat the result as read-only (copy it with dataclasses.replace to change it).
    return _cached_check("" if value is None else str(value), auto_fix)


@lru_cache(maxsize=65536)
def _cached_check(value: str, auto_fix: bool) -> PhoneCheck:
    return _check(value, auto_fix=auto_fix)


def _check(value: object, *, auto_fix: bool = False) -> PhoneCheck:
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
        parsed = phonenumbers.parse("+" + s, None)
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
    result.region = phonenumbers.region_code_for_number(parsed)
    if not phonenumbers.is_valid_number(parsed):
        # The seeds' own example 15551234567 is in no assigned range, yet it must be accepted.
        result.warnings.append(
            f"{s} has a possible length but is in no assigned number range for country code {cc}; "
            "check that it is a real number."
        )
    return result


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
    return check(value).number


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
