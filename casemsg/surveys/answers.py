"""Turning an SMS reply into a survey answer.

People answer on feature phones, so we accept what they naturally type and store one canonical string,
the same form the expressions and XForms use:

* select_one: the choice number (1..N), the choice name, or its label in ANY of the survey's languages,
  ignoring case, surrounding spaces and a trailing full stop (people switch languages mid-survey).
  Stored: the choice name.
* select_multiple: numbers/names/one-word labels separated by spaces or commas ('1 3', '1,3'), or the
  whole reply as one label. Duplicates are dropped. Stored: names in the order of the choices,
  space-separated.
* integer: optional sign, digits only ('1.5' and '1.0' are refused), within XForms' 32-bit int range.
  Stored without '+' or leading zeros.
* decimal: optional sign, and either '.' or ',' as the decimal separator ('61,5' is 61.5: much of the
  world writes decimals that way, and a reply is one number, so the comma cannot be a list separator).
  Thousands separators are refused, since '1,234' would otherwise be ambiguous. Stored like '61.5'.
* date: the survey's SMS date format (YYYYMMDD by default, DDMMYYYY or MMDDYYYY), as 8 digits or with
  '-', '/' or '.' between the parts (then day and month may have one digit). A reply starting with a
  4-digit year and separators is read as year-month-day whatever the format, since that is unambiguous.
  Impossible dates (20240230) are refused. Stored as ISO YYYY-MM-DD.
* time: HHMM or HH:MM (also H:MM, HMM and '.' as separator), 00:00 to 23:59. Stored as HH:MM.
* datetime: a date and a time as above, separated by a space or 'T' ('20240310 0930'). Stored as ODK writes
  a dateTime, in the contact's time zone: '2024-03-10T09:30:00.000+03:00'.
* rank: every choice, in order of preference, as for select_multiple ('3 1 2'). Stored: the names in the
  order given, space-separated.
* acknowledge: OK, 1, yes or Y (any case). Stored: 'OK', as ODK does.
* text: anything non-blank, stripped.

A blank reply is `required` for a required question and an empty (skipped) answer otherwise.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from casemsg.surveys.definition import ANSWER_ERRORS, DATE_FORMATS, Question

__all__ = [
    "DATE_FORMATS",
    "DEFAULT_MESSAGES",
    "ERROR_CODES",
    "Parsed",
    "error_message",
    "parse_answer",
]

ERROR_CODES = ANSWER_ERRORS  # (DATE_FORMATS and these are defined with the survey format, in definition.py)

#: English texts for every error code; `{placeholders}` come from `Parsed.params`. Projects override
#: or translate these per language with the `overrides` argument of `error_message`.
DEFAULT_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "required": "An answer is required. Please reply again.",
        "invalid_choice": "Please reply with the number of your choice, from 1 to {count}.",
        "invalid_choices": "Please reply with the numbers of your choices, from 1 to {count}, separated by spaces.",
        "invalid_integer": "Please reply with a whole number, like 12.",
        "invalid_decimal": "Please reply with a number, like 12.5.",
        "invalid_date": "Please reply with a date as {date_format}, for example {example}.",
        "invalid_time": "Please reply with a time as HHMM, for example 0930 or 1745.",
        "invalid_text": "Please reply with some text.",
        "constraint_failed": "That answer is not accepted. Please reply again.",
        "invalid_datetime": "Please reply with a date and a time as {date_format} HHMM, for example {example} 0930.",
        "invalid_acknowledge": "Please reply OK.",
    }
}

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # XForms `int` is 32-bit; ODK refuses bigger values too
_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)$")
_DATE_SEPARATED_RE = re.compile(r"^(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})$")
_TIME_RE = re.compile(r"^(\d{1,2})[:.](\d{2})$|^(\d{1,2})(\d{2})$")
_EXAMPLE = dt.date(2024, 3, 15)  # the date shown in the invalid_date message
_STRFTIME = {"YYYYMMDD": "%Y%m%d", "DDMMYYYY": "%d%m%Y", "MMDDYYYY": "%m%d%Y"}


@dataclass(frozen=True)
class Parsed:
    """The outcome of reading a reply: `value` is the canonical answer when `ok`; otherwise `error` is
    one of ERROR_CODES (stable, for statistics and message tables) and `params` fill its message."""

    ok: bool
    value: str
    error: str
    params: dict[str, str] = field(default_factory=dict, compare=False)


def _ok(value: str) -> Parsed:
    return Parsed(True, value, "")


def _fail(error: str, **params: str) -> Parsed:
    return Parsed(False, "", error, dict(params))


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _choice_lookup(question: Question) -> dict[str, str]:
    """Reply text -> choice name: a number is the choice's place in the list as sent (`1 No 2 Yes`), never
    a name or label that is a number (choices coded 0/1, 1/2/99); then names; then labels in any language,
    except a label two choices share ("Other" twice), which picks neither."""
    lookup: dict[str, str] = {}
    shared: set[str] = set()
    for choice in question.choices:
        for label in choice.label.values():
            key = _key(label)
            if not key or key.isdigit():
                continue
            if lookup.get(key, choice.name) != choice.name:
                shared.add(key)
            lookup[key] = choice.name
    for key in shared:
        del lookup[key]
    for choice in question.choices:
        if not _key(choice.name).isdigit():
            lookup[_key(choice.name)] = choice.name
    for position, choice in enumerate(question.choices, start=1):
        lookup[str(position)] = choice.name
    return lookup


def _clean_choice_reply(text: str) -> str:
    return _key(text).strip(".!;:")


def _parse_select_one(question: Question, reply: str) -> Parsed:
    name = _choice_lookup(question).get(_clean_choice_reply(reply))
    if name is None:
        return _fail("invalid_choice", count=str(len(question.choices)), reply=reply)
    return _ok(name)


def _parse_select_multiple(question: Question, reply: str) -> Parsed:
    lookup = _choice_lookup(question)
    whole = lookup.get(_clean_choice_reply(reply))
    if whole is not None:
        tokens: list[str | None] = [whole]
    else:
        tokens = [lookup.get(t.strip(".!;:")) for t in re.split(r"[\s,]+", _key(reply)) if t.strip(".!;:")]
    if not tokens or any(t is None for t in tokens):
        return _fail("invalid_choices", count=str(len(question.choices)), reply=reply)
    chosen = set(tokens)
    return _ok(" ".join(c.name for c in question.choices if c.name in chosen))


def _parse_integer(reply: str) -> Parsed:
    if not _INTEGER_RE.match(reply):
        return _fail("invalid_integer", reply=reply)
    number = int(reply)
    if not _INT_MIN <= number <= _INT_MAX:
        return _fail("invalid_integer", reply=reply)
    return _ok(str(number))


def _parse_decimal(reply: str) -> Parsed:
    if not _DECIMAL_RE.match(reply):
        return _fail("invalid_decimal", reply=reply)
    try:
        number = Decimal(reply.replace(",", "."))
    except InvalidOperation:
        return _fail("invalid_decimal", reply=reply)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _ok("0" if text in ("-0", "") else text)


def _date_parts(reply: str, date_format: str) -> tuple[int, int, int] | None:
    """(year, month, day) read from the reply in the given format, or None if it has the wrong shape."""
    if m := _DATE_SEPARATED_RE.match(reply):
        a, b, c = m[1], m[2], m[3]
        if len(a) == 4:
            return int(a), int(b), int(c)  # year first: unambiguous, whatever the project's format
        if len(c) != 4 or date_format == "YYYYMMDD":
            return None
        first, second = int(a), int(b)
    elif re.fullmatch(r"\d{8}", reply):
        if date_format == "YYYYMMDD":
            return int(reply[:4]), int(reply[4:6]), int(reply[6:])
        first, second, c = int(reply[:2]), int(reply[2:4]), reply[4:]
    else:
        return None
    day, month = (first, second) if date_format == "DDMMYYYY" else (second, first)
    return int(c), month, day


def _parse_date(reply: str, date_format: str) -> Parsed:
    parts = _date_parts(reply, date_format)
    example = _format_date(_EXAMPLE, date_format)
    if parts is None:
        return _fail("invalid_date", date_format=date_format, example=example, reply=reply)
    try:
        return _ok(dt.date(*parts).isoformat())
    except ValueError:  # 30 February, month 13, year 0
        return _fail("invalid_date", date_format=date_format, example=example, reply=reply)


def _format_date(date: dt.date, date_format: str) -> str:
    return date.strftime(_STRFTIME[date_format])


def _parse_time(reply: str) -> Parsed:
    m = _TIME_RE.match(reply)
    if m is None:
        return _fail("invalid_time", reply=reply)
    hours, minutes = (int(m[1]), int(m[2])) if m[1] is not None else (int(m[3]), int(m[4]))
    if hours > 23 or minutes > 59:
        return _fail("invalid_time", reply=reply)
    return _ok(f"{hours:02d}:{minutes:02d}")


def _parse_rank(question: Question, reply: str) -> Parsed:
    lookup = _choice_lookup(question)
    tokens = [lookup.get(t.strip(".!;:")) for t in re.split(r"[\s,]+", _key(reply)) if t.strip(".!;:")]
    names = [t for t in tokens if t is not None]
    if len(names) != len(tokens) or len(set(names)) != len(names) or len(names) != len(question.choices):
        return _fail("invalid_choices", count=str(len(question.choices)), reply=reply)
    return _ok(" ".join(names))


_ACKNOWLEDGED = {"ok", "okay", "1", "yes", "y"}


def _parse_datetime(reply: str, date_format: str, zone: str | None) -> Parsed:
    example = _format_date(_EXAMPLE, date_format)
    parts = re.split(r"\s+|T", reply.strip(), maxsplit=1)
    date = _parse_date(parts[0], date_format) if len(parts) == 2 else None
    time = _parse_time(parts[1].strip()) if len(parts) == 2 else None
    if date is None or time is None or not date.ok or not time.ok:
        return _fail("invalid_datetime", date_format=date_format, example=example, reply=reply)
    moment = dt.datetime.fromisoformat(f"{date.value}T{time.value}")
    if zone:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return _ok(moment.isoformat(timespec="milliseconds"))


def parse_answer(question: Question, reply: str, date_format: str = "YYYYMMDD", zone: str | None = None) -> Parsed:
    """Read an SMS reply as the answer to `question`; see the module docstring for what is accepted.

    `date_format` is the survey's SMS date format (settings.date_format), one of DATE_FORMATS; `zone` the
    contact's time zone (a dateTime is stored with its offset). Constraints are not checked here (they
    need the other answers): evaluate `question.compiled_constraint` on the parsed value.
    """
    if date_format not in DATE_FORMATS:
        raise ValueError(f"date_format must be one of {', '.join(DATE_FORMATS)}, not {date_format!r}")
    text = (reply or "").strip()
    if question.type == "note":
        return _ok("")  # notes are sent, not answered
    if not text:
        return _fail("required") if question.required else _ok("")
    if question.type == "select_one":
        return _parse_select_one(question, text)
    if question.type == "select_multiple":
        return _parse_select_multiple(question, text)
    if question.type == "integer":
        return _parse_integer(text)
    if question.type == "decimal":
        return _parse_decimal(text)
    if question.type == "date":
        return _parse_date(text, date_format)
    if question.type == "time":
        return _parse_time(text)
    if question.type == "datetime":
        return _parse_datetime(text, date_format, zone)
    if question.type == "rank":
        return _parse_rank(question, text)
    if question.type == "acknowledge":
        return _ok("OK") if _clean_choice_reply(text) in _ACKNOWLEDGED else _fail("invalid_acknowledge")
    return _ok(text)


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # a translation using an unknown placeholder still renders


def error_message(
    parsed: Parsed,
    language: str,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    fallback_language: str = "en",
) -> str:
    """The sentence explaining `parsed.error` in `language`.

    Looked up in `overrides[language]`, then the defaults for `language`, then the same for
    `fallback_language`, then the English default, so a missing translation never leaves a contact
    without a reply. `overrides` is {language: {error code: text}}.
    """
    if parsed.ok:
        return ""
    overrides = overrides or {}
    template = None
    for lang in (language, fallback_language, "en"):
        template = overrides.get(lang, {}).get(parsed.error) or DEFAULT_MESSAGES.get(lang, {}).get(parsed.error)
        if template:
            break
    if not template:
        raise KeyError(f"no message for error {parsed.error!r}")
    return template.format_map(_Params(parsed.params))
