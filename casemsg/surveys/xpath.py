"""The XPath dialect of survey expressions: XPath 1.0 as XForms evaluates it, on elementpath's XPath 1.0
parser (`XFormsParser`), with the XForms/ODK functions. `expressions.py` compiles and evaluates survey
expressions with it; see its docstring for the deviations from plain XPath 1.0 (dates as numbers, full
XPath 1.0 comparisons, a reference as a boolean meaning "answered").

(Over 500 lines: elementpath allows one parser class per module, and every function is registered on it
here: the conversions, the operators and the functions are one table.)
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import operator
import random
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from copy import copy
from decimal import Decimal
from typing import Any

from elementpath import XPath1Parser, XPathFunction, XPathNode, XPathToken

__all__ = [
    "SUPPORTED_FUNCTIONS",
    "XFormsParser",
    "choice_labels",
    "pulldata_lookup",
]

#: XPath 1.0 core functions that make sense for answers (node-identity functions like position() do not).
XPATH_FUNCTIONS = frozenset(
    {
        "boolean", "ceiling", "concat", "contains", "count", "false", "floor", "normalize-space", "not",
        "number", "round", "starts-with", "string", "string-length", "substring", "substring-after",
        "substring-before", "sum", "translate", "true",
    }
)  # fmt: skip
#: The XForms/ODK functions we add to XPath 1.0.
XFORMS_FUNCTIONS = frozenset(
    {
        "abs", "acos", "add-date", "asin", "atan", "atan2", "boolean-from-string", "choice-name", "coalesce", "cos",
        "count-non-empty", "count-selected", "date", "date-time", "decimal-date-time", "decimal-time",
        "difference-in-months", "ends-with", "exp", "exp10", "format-date", "format-date-time", "if", "int", "join",
        "log", "log10", "max", "min", "now",
        "once", "pi", "pow", "pulldata", "random", "regex", "selected", "selected-at", "sin", "sqrt", "substr", "tan",
        "today", "uuid",
    }
)  # fmt: skip
SUPPORTED_FUNCTIONS = XPATH_FUNCTIONS | XFORMS_FUNCTIONS

_EPOCH = dt.date(1970, 1, 1)
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_ISO_TIME = re.compile(r"^\s*(\d{2}):(\d{2})(?::(\d{2}))?\s*$")
_ISO_DATETIME = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_XPATH_NUMBER = re.compile(r"^\s*-?(?:\d+(?:\.\d*)?|\.\d+)\s*$")  # XPath 1.0 `Number`, no exponent, no '+'

#: The labels of choices for `choice-name()`: (question name, choice name) -> label, set by the caller
#: (the engine, in the session's language) around an evaluation; unset, choice-name() gives the name back.
choice_labels: ContextVar[Callable[[str, str], str] | None] = ContextVar("choice_labels", default=None)
#: pulldata(table, column, key column, key): the value, from the CSV tables attached to the survey (set by the
#: caller around an evaluation); unset, pulldata() gives ''.
pulldata_lookup: ContextVar[Callable[[str, str, str, str], str] | None] = ContextVar("pulldata_lookup", default=None)


class _NodeSet(tuple[str, ...]):
    """The string values of a node-set, in document order; XPath 1.0 only ever needs their strings."""


_Value = _NodeSet | bool | float | str


###
# XPath 1.0 conversions (section 4 of the recommendation), with the ODK date/time extension.


def _to_number(value: _Value) -> float:
    if isinstance(value, _NodeSet):
        return _to_number(value[0]) if value else math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    if _XPATH_NUMBER.match(value):
        return float(value)
    if m := _ISO_DATE.match(value):
        try:
            return float((dt.date(int(m[1]), int(m[2]), int(m[3])) - _EPOCH).days)
        except ValueError:
            return math.nan
    if m := _ISO_TIME.match(value):
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
        if h < 24 and mi < 60 and s < 60:
            return (h * 3600 + mi * 60 + s) / 86400
    if (moment := _datetime(value)) is not None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds() / 86400
    return math.nan


def _datetime(value: str) -> dt.datetime | None:
    """An ISO dateTime as ODK writes it ('2024-03-10T09:30:00.000+03:00'), or None."""
    m = _ISO_DATETIME.match(value)
    if m is None:
        return None
    try:
        return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def _to_string(value: _Value) -> str:
    if isinstance(value, _NodeSet):
        return value[0] if value else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")  # XPath 1.0 never uses exponent notation
    return value


def _to_boolean(value: _Value) -> bool:
    if isinstance(value, _NodeSet):
        # ODK, not XPath 1.0: JavaRosa unpacks a node-set to its value first, so `${q}` used as a boolean
        # means "q is answered". XLSForm authors rely on that; an always-true reference would be useless.
        return len(value) > 0 and value[0] != ""
    if isinstance(value, float):
        return not math.isnan(value) and value != 0
    return bool(value)


def _value(token: XPathToken, context: Any) -> _Value:
    """Evaluate a sub-expression and reduce elementpath's result to one of the four XPath 1.0 types."""
    result = token.evaluate(copy(context))
    if isinstance(result, XPathNode):
        return _NodeSet((token.string_value(result),))
    if isinstance(result, list):
        if all(isinstance(item, XPathNode) for item in result):
            return _NodeSet(token.string_value(item) for item in result)
        if len(result) == 1:
            result = result[0]
        else:
            raise token.error("XPTY0004", "a sequence of values is not an XPath 1.0 value")
    if isinstance(result, bool | str):
        return result
    if isinstance(result, int | float | Decimal):
        return float(result)
    return str(result)


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _compare_atomic(symbol: str, left: bool | float | str, right: bool | float | str) -> bool:
    op = _COMPARATORS[symbol]
    if symbol in ("=", "!="):
        if isinstance(left, bool) or isinstance(right, bool):
            return op(_to_boolean(left), _to_boolean(right))
        if isinstance(left, float) or isinstance(right, float):
            return op(_to_number(left), _to_number(right))
        return op(left, right)
    return op(_to_number(left), _to_number(right))


def _compare(symbol: str, left: _Value, right: _Value) -> bool:
    """XPath 1.0 section 3.4, including the existential rule for node-sets."""
    if isinstance(left, _NodeSet):
        if isinstance(right, _NodeSet):
            return any(_compare_atomic(symbol, a, b) for a in left for b in right)
        if isinstance(right, bool):
            return _compare_atomic(symbol, _to_boolean(left), right)
        return any(_compare_atomic(symbol, a, right) for a in left)
    if isinstance(right, _NodeSet):
        if isinstance(left, bool):
            return _compare_atomic(symbol, left, _to_boolean(right))
        return any(_compare_atomic(symbol, left, b) for b in right)
    return _compare_atomic(symbol, left, right)


def _arithmetic(symbol: str, a: float, b: float) -> float:
    # Python raises where IEEE 754 (and so XPath) gives an infinity or NaN.
    if symbol == "+":
        return a + b
    if symbol == "-":
        return a - b
    if symbol == "*":
        return a * b
    if symbol == "div":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
        return a / b
    if b == 0 or math.isinf(a) or math.isnan(b):
        return math.nan
    return math.fmod(a, b)  # XPath `mod` truncates, keeping the sign of the dividend, like fmod


###
# The parser: XPath 1.0 plus the XForms functions. elementpath allows one parser class per module.


class XFormsParser(XPath1Parser):
    """elementpath's XPath 1.0 parser with XForms functions and XPath 1.0-exact comparisons."""

    symbol_table = dict(XPath1Parser.symbol_table)  # our own table: registrations never touch XPath1Parser
    function_signatures = dict(XPath1Parser.function_signatures)


def _subclass_operator(symbol: str) -> None:
    """Replace a shared operator class with a subclass of it in our table only, so overriding its
    `evaluate` leaves XPath1Parser (used elsewhere in the process) untouched."""
    base = XFormsParser.symbol_table.pop(symbol)
    XFormsParser.register(symbol, bases=(base,), label=base.label, lbp=base.lbp, rbp=base.rbp)


_OVERRIDDEN = ("=", "!=", "<", ">", "<=", ">=", "+", "-", "*", "div", "mod", "and", "or", "not", "boolean", "number")
for _symbol in _OVERRIDDEN:
    _subclass_operator(_symbol)
XFormsParser.symbol_table.pop("round")  # XForms' round() takes an optional number of digits: ours below

method = XFormsParser.method
function = XFormsParser.function


@method("=")
@method("!=")
@method("<")
@method(">")
@method("<=")
@method(">=")
def evaluate__comparison(self: XPathToken, context: Any = None) -> bool:
    return _compare(self.symbol, _value(self[0], context), _value(self[1], context))


@method("and")
@method("or")
def evaluate__logical(self: XPathToken, context: Any = None) -> bool:
    left = _to_boolean(_value(self[0], context))
    if left is (self.symbol == "or"):  # short-circuit, as XPath specifies
        return left
    return _to_boolean(_value(self[1], context))


@method("not")
@method("boolean")
def evaluate__boolean(self: XPathToken, context: Any = None) -> bool:
    value = _to_boolean(_value(self[0], context))
    return not value if self.symbol == "not" else value


@method("+")
@method("-")
@method("div")
@method("mod")
def evaluate__arithmetic(self: XPathToken, context: Any = None) -> float:
    if len(self) == 1:  # unary + and -
        number = _to_number(_value(self[0], context))
        return -number if self.symbol == "-" else number
    return _arithmetic(self.symbol, _to_number(_value(self[0], context)), _to_number(_value(self[1], context)))


@method("*")
def evaluate__asterisk(self: XPathToken, context: Any = None) -> Any:
    if len(self) == 2:
        return _arithmetic("*", _to_number(_value(self[0], context)), _to_number(_value(self[1], context)))
    return XPathToken.evaluate(self, context)  # a wildcard; compile_expression rejects those anyway


@method("number")
def evaluate__number(self: XPathToken, context: Any = None) -> float:
    if len(self) == 0:
        if context is None:
            raise self.missing_context()
        return _to_number(_NodeSet((self.string_value(context.item),)))
    return _to_number(_value(self[0], context))


def _arg(self: XPathFunction, index: int, context: Any) -> _Value:
    return _value(self[index], self.context if self.context is not None else context)


@method(function("selected", nargs=2))
def evaluate__selected(self: XPathFunction, context: Any = None) -> bool:
    """selected(list, name): is `name` one of the space-separated names of a select_multiple answer."""
    return _to_string(_arg(self, 1, context)).strip() in _to_string(_arg(self, 0, context)).split()


@method(function("count-selected", nargs=1))
def evaluate__count_selected(self: XPathFunction, context: Any = None) -> float:
    return float(len(_to_string(_arg(self, 0, context)).split()))


@method(function("regex", nargs=2))
def evaluate__regex(self: XPathFunction, context: Any = None) -> bool:
    # JavaRosa uses Matcher.find(): the pattern may match anywhere unless the author anchors it.
    pattern = _to_string(_arg(self, 1, context))
    try:
        return re.search(pattern, _to_string(_arg(self, 0, context))) is not None
    except re.error as err:
        raise self.error("FORX0002", f"invalid regular expression {pattern!r}: {err}") from None


@method(function("today", nargs=0))
def evaluate__today(self: XPathFunction, context: Any = None) -> str:
    if context is None:
        raise self.missing_context()  # keeps parse-time static evaluation from freezing a date
    return str(context.current_dt.date().isoformat())


@method(function("if", nargs=3))
def evaluate__if(self: XPathFunction, context: Any = None) -> Any:
    # Only the chosen branch is evaluated, as in XForms.
    ctx = self.context if self.context is not None else context
    branch = self[1] if _to_boolean(_value(self[0], ctx)) else self[2]
    return branch.evaluate(copy(ctx))


@method(function("coalesce", nargs=(2, None)))
def evaluate__coalesce(self: XPathFunction, context: Any = None) -> str:
    """The first non-empty argument (XForms has two; Enketo, and so CHT's forms, take more)."""
    for i in range(len(self)):
        value = _to_string(_arg(self, i, context))
        if value != "":
            return value
    return ""


@method(function("date", nargs=1))
def evaluate__date(self: XPathFunction, context: Any = None) -> str:
    """date(x): a number of days since 1970-01-01, or an ISO date, as 'YYYY-MM-DD' ('' if neither)."""
    value = _arg(self, 0, context)
    if not isinstance(value, float) and not isinstance(value, bool):
        text = _to_string(value)
        if _ISO_DATE.match(text) and not math.isnan(_to_number(text)):
            return text.strip()
        if (moment := _datetime(text)) is not None:
            return moment.date().isoformat()
    number = _to_number(value)
    if math.isnan(number) or math.isinf(number):
        return ""
    try:
        return (_EPOCH + dt.timedelta(days=math.floor(number))).isoformat()
    except OverflowError:
        return ""


@method(function("int", nargs=1))
def evaluate__int(self: XPathFunction, context: Any = None) -> float:
    number = _to_number(_arg(self, 0, context))
    return number if math.isnan(number) or math.isinf(number) else float(math.trunc(number))


def _numbers(self: XPathFunction, context: Any) -> list[float]:
    """Every argument's numbers, node-sets unpacked (min, max)."""
    out: list[float] = []
    for i in range(len(self)):
        value = _arg(self, i, context)
        out.extend(_to_number(v) for v in value) if isinstance(value, _NodeSet) else out.append(_to_number(value))
    return out


@method(function("min", nargs=(1, None)))
@method(function("max", nargs=(1, None)))
def evaluate__min_max(self: XPathFunction, context: Any = None) -> float:
    numbers = _numbers(self, context)
    if not numbers or any(math.isnan(n) for n in numbers):
        return math.nan
    return min(numbers) if self.symbol == "min" else max(numbers)


@method(function("round", nargs=(1, 2)))
def evaluate__round(self: XPathFunction, context: Any = None) -> float:
    number = _to_number(_arg(self, 0, context))
    digits = int(_to_number(_arg(self, 1, context))) if len(self) == 2 else 0
    if math.isnan(number) or math.isinf(number):
        return number
    scale = 10.0**digits
    return math.floor(number * scale + 0.5) / scale  # XPath rounds half up (towards positive infinity)


_MATH: dict[str, Callable[..., float]] = {
    "abs": abs, "sqrt": math.sqrt, "exp": math.exp, "exp10": lambda x: 10.0**x, "log": math.log,
    "log10": math.log10, "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "pow": math.pow, "atan2": math.atan2,
}  # fmt: skip


@method(function("abs", nargs=1))
@method(function("sqrt", nargs=1))
@method(function("exp", nargs=1))
@method(function("exp10", nargs=1))
@method(function("log", nargs=1))
@method(function("log10", nargs=1))
@method(function("sin", nargs=1))
@method(function("cos", nargs=1))
@method(function("tan", nargs=1))
@method(function("asin", nargs=1))
@method(function("acos", nargs=1))
@method(function("atan", nargs=1))
@method(function("pow", nargs=2))
@method(function("atan2", nargs=2))
def evaluate__math(self: XPathFunction, context: Any = None) -> float:
    args = [_to_number(_arg(self, i, context)) for i in range(len(self))]
    try:
        return float(_MATH[self.symbol](*args))
    except (ValueError, OverflowError, ZeroDivisionError):
        return math.nan


@method(function("pi", nargs=0))
def evaluate__pi(self: XPathFunction, context: Any = None) -> float:
    return math.pi


@method(function("random", nargs=0))
def evaluate__random(self: XPathFunction, context: Any = None) -> float:
    if context is None:
        raise self.missing_context()  # never folded into a constant at parse time
    return random.random()  # noqa: S311 — a form's random(), not a secret


@method(function("uuid", nargs=(0, 1)))
def evaluate__uuid(self: XPathFunction, context: Any = None) -> str:
    if context is None:
        raise self.missing_context()
    return str(uuid.uuid4())


@method(function("once", nargs=1))
def evaluate__once(self: XPathFunction, context: Any = None) -> _Value:
    # a calculate is evaluated once, when the survey reaches it: once(x) is x
    return _arg(self, 0, context)


@method(function("now", nargs=0))
def evaluate__now(self: XPathFunction, context: Any = None) -> str:
    if context is None:
        raise self.missing_context()
    return str(context.current_dt.isoformat(timespec="milliseconds"))


@method(function("substr", nargs=(2, 3)))
def evaluate__substr(self: XPathFunction, context: Any = None) -> str:
    """substr(text, start[, end]): 0-based, end excluded, as in JavaRosa."""
    text = _to_string(_arg(self, 0, context))
    start = _to_number(_arg(self, 1, context))
    end = _to_number(_arg(self, 2, context)) if len(self) == 3 else float(len(text))
    if math.isnan(start) or math.isnan(end):
        return ""
    return text[max(0, int(start)) : max(0, int(end))]


@method(function("ends-with", nargs=2))
def evaluate__ends_with(self: XPathFunction, context: Any = None) -> bool:
    return _to_string(_arg(self, 0, context)).endswith(_to_string(_arg(self, 1, context)))


@method(function("boolean-from-string", nargs=1))
def evaluate__boolean_from_string(self: XPathFunction, context: Any = None) -> bool:
    return _to_string(_arg(self, 0, context)).strip().lower() in ("true", "1")


@method(function("selected-at", nargs=2))
def evaluate__selected_at(self: XPathFunction, context: Any = None) -> str:
    names = _to_string(_arg(self, 0, context)).split()
    index = _to_number(_arg(self, 1, context))
    return names[int(index)] if not math.isnan(index) and 0 <= int(index) < len(names) else ""


@method(function("count-non-empty", nargs=1))
def evaluate__count_non_empty(self: XPathFunction, context: Any = None) -> float:
    value = _arg(self, 0, context)
    items = list(value) if isinstance(value, _NodeSet) else [_to_string(value)]
    return float(sum(1 for v in items if v != ""))


@method(function("join", nargs=(1, None)))
def evaluate__join(self: XPathFunction, context: Any = None) -> str:
    separator = _to_string(_arg(self, 0, context))
    parts: list[str] = []
    for i in range(1, len(self)):
        value = _arg(self, i, context)
        parts.extend(value) if isinstance(value, _NodeSet) else parts.append(_to_string(value))
    return separator.join(parts)


@method(function("choice-name", nargs=2))
def evaluate__choice_name(self: XPathFunction, context: Any = None) -> str:
    value = _to_string(_arg(self, 0, context))
    question = _to_string(_arg(self, 1, context)).strip().lstrip("$").strip("{}").rsplit("/", 1)[-1]
    labels = choice_labels.get()
    return labels(question, value) if labels is not None else value


@method(function("pulldata", nargs=4))
def evaluate__pulldata(self: XPathFunction, context: Any = None) -> str:
    if context is None:
        raise self.missing_context()
    table, column, key_column, key = (_to_string(_arg(self, i, context)) for i in range(4))
    lookup = pulldata_lookup.get()
    return lookup(table, column, key_column, key) if lookup is not None else ""


def _moment(value: _Value) -> dt.datetime | None:
    """A date, dateTime or number of days as a datetime, for format-date()."""
    text = "" if isinstance(value, float | bool) else _to_string(value)
    if (moment := _datetime(text)) is not None:
        return moment
    if _ISO_DATE.match(text):
        try:
            return dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return None
    number = _to_number(value)
    if math.isnan(number) or math.isinf(number):
        return None
    try:
        return dt.datetime(1970, 1, 1) + dt.timedelta(days=number)
    except OverflowError:
        return None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _format(moment: dt.datetime, pattern: str) -> str:
    """JavaRosa's format-date(-time) codes: %Y %y %m %n %b %d %e %a %H %h %M %S %3."""
    codes = {
        "Y": f"{moment.year:04d}", "y": f"{moment.year % 100:02d}", "m": f"{moment.month:02d}",
        "n": str(moment.month), "b": _MONTHS[moment.month - 1], "d": f"{moment.day:02d}", "e": str(moment.day),
        "a": _WEEKDAYS[moment.weekday()], "H": f"{moment.hour:02d}", "h": str(moment.hour),
        "M": f"{moment.minute:02d}", "S": f"{moment.second:02d}", "3": f"{moment.microsecond // 1000:03d}",
    }  # fmt: skip
    return re.sub(r"%(.)", lambda m: codes.get(m[1], m[0]), pattern)


@method(function("format-date", nargs=2))
@method(function("format-date-time", nargs=2))
def evaluate__format_date(self: XPathFunction, context: Any = None) -> str:
    moment = _moment(_arg(self, 0, context))
    return "" if moment is None else _format(moment, _to_string(_arg(self, 1, context)))


@method(function("decimal-date-time", nargs=1))
def evaluate__decimal_date_time(self: XPathFunction, context: Any = None) -> float:
    return _to_number(_arg(self, 0, context))


@method(function("decimal-time", nargs=1))
def evaluate__decimal_time(self: XPathFunction, context: Any = None) -> float:
    value = _to_string(_arg(self, 0, context))
    if (moment := _datetime(value)) is not None:
        return (moment.hour * 3600 + moment.minute * 60 + moment.second) / 86400
    return _to_number(value) if _ISO_TIME.match(value) else math.nan


@method(function("date-time", nargs=1))
def evaluate__date_time(self: XPathFunction, context: Any = None) -> str:
    moment = _moment(_arg(self, 0, context))
    return "" if moment is None else moment.isoformat(timespec="milliseconds")


# The Community Health Toolkit's date functions (Enketo's openrosa-xpath extensions), which its forms use.


@method(function("difference-in-months", nargs=2))
def evaluate__difference_in_months(self: XPathFunction, context: Any = None) -> float | str:
    """Whole months from the first date to the second ('' if either is not a date)."""
    start, end = _moment(_arg(self, 0, context)), _moment(_arg(self, 1, context))
    if start is None or end is None:
        return ""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day:
        months -= 1
    return float(months)


@method(function("add-date", nargs=(1, 6)))
def evaluate__add_date(self: XPathFunction, context: Any = None) -> str:
    """add-date(date, years, months, days, hours, minutes): the date moved by each (negative ones back)."""
    moment = _moment(_arg(self, 0, context))
    if moment is None:
        return ""
    steps = [_to_number(_arg(self, i, context)) if i < len(self) else 0.0 for i in range(1, 6)]
    if any(math.isnan(n) or math.isinf(n) for n in steps):
        return ""
    years, months, days, hours, minutes = (int(n) for n in steps)
    total = moment.year * 12 + moment.month - 1 + years * 12 + months
    year, month = divmod(total, 12)
    try:
        last = calendar.monthrange(year, month + 1)[1]
        moved = moment.replace(year=year, month=month + 1, day=min(moment.day, last))
        return (moved + dt.timedelta(days=days, hours=hours, minutes=minutes)).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError):
        return ""
