"""XForms-style `relevant` and `constraint` expressions for SMS surveys.

Survey authors write the XPath 1.0 dialect they know from XLSForm: `${q}` refers to the answer of an
earlier question, `.` to the answer being checked, plus the XForms functions listed in
`SUPPORTED_FUNCTIONS`. We evaluate exactly the way an XForms engine does: the answers so far become a
small instance document `<data><q1>value</q1>...</data>`, `${q}` is rewritten to the path `/data/q`, and
`.` is the context node holding the current answer. Parsing is elementpath's XPath 1.0 parser, extended
(by subclassing, the way elementpath declares its own functions) with the XForms functions.

Deliberate deviations from plain XPath 1.0, chosen to match ODK Collect (the reference for XLSForm):

* **Dates and times are numbers in numeric contexts.** In plain XPath 1.0 `<`, `>`, `<=`, `>=` and
  arithmetic turn '2024-01-31' into NaN, so `. <= today()` would always be false. ODK converts dates to
  days since 1970-01-01, so we do the same: a string that is a valid ISO date (YYYY-MM-DD) converts to
  days since the epoch, and a time (HH:MM or HH:MM:SS) to the fraction of a day. `=` and `!=` between two
  strings still compare the strings, which is right for ISO dates since they are canonical.
* **Comparisons follow the XPath 1.0 rules in full** (section 3.4: a node-set against a number compares
  numbers, against a string compares strings, against a boolean compares booleans). elementpath's own
  1.0 comparison compares a node with a number as strings and raises on non-numeric strings; we replace
  the comparison and arithmetic operators so that `. = 10` is true for '10' and `'' > 3` is just false.
* **A question reference used as a boolean means "answered"**, as in ODK (JavaRosa unpacks a node-set to
  its value): `not(${q})` is true when q is unanswered. Plain XPath 1.0 would call any existing node true.
* `today()` returns the date the caller passes in (the survey's local date), as 'YYYY-MM-DD'; `now()` the
  time passed in (the contact's zone), as ODK writes a dateTime ('2024-03-10T09:30:00.000+03:00').
* **A union of references** (`${a} | ${b}`, what the XLSForm importer writes for a question of a repeat
  read from outside it) holds only the questions that were reached: an iteration that was never asked is
  no node at all, as in ODK, so `sum()` and `count()` see the iterations that exist.
* `jr:choice-name(value, 'q')` (or `choice-name`) is the label of the choice `value` of question q in the
  session's language, looked up through `choice_labels` (set by the caller around an evaluation).

**Values** (`evaluate_value`): what a `calculate` or a dynamic default holds, as a string (numbers as
XPath writes them: `3`, `0.5`, never `3.0`). **Choice filters** (`compile_choice_filter`, `filter_choices`):
a `choice_filter` is evaluated once per question over all its choices, as the predicate of a path to them
(`/data/c:choices/item[filter]`); a bare name in it (`county`, `name`) is a column of the choice.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import random
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from copy import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from elementpath import ElementPathError, XPath1Parser, XPathContext, XPathFunction, XPathNode, XPathToken

__all__ = [
    "Compiled",
    "ExpressionError",
    "SUPPORTED_FUNCTIONS",
    "choice_labels",
    "pulldata_lookup",
    "compile_choice_filter",
    "compile_expression",
    "evaluate_bool",
    "evaluate_value",
    "filter_choices",
    "find_references",
]

#: The names a survey question may have: ASCII XML-name-like, so `${q}` can become the path `/data/q`.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

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
        "abs", "acos", "asin", "atan", "atan2", "boolean-from-string", "choice-name", "coalesce", "cos",
        "count-non-empty", "count-selected", "date", "date-time", "decimal-date-time", "decimal-time", "ends-with",
        "exp", "exp10", "format-date", "format-date-time", "if", "int", "join", "log", "log10", "max", "min", "now",
        "once", "pi", "pow", "pulldata", "random", "regex", "selected", "selected-at", "sin", "sqrt", "substr", "tan",
        "today", "uuid",
    }
)  # fmt: skip
SUPPORTED_FUNCTIONS = XPATH_FUNCTIONS | XFORMS_FUNCTIONS

_ROOT = "data"
# The current answer lives in its own namespace so that it can never collide with a question's element.
_NS = "urn:casemsg:survey"
_CURRENT_TAG = "{urn:casemsg:survey}current"
_CHOICES_TAG = "{urn:casemsg:survey}choices"
_EPOCH = dt.date(1970, 1, 1)
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_ISO_TIME = re.compile(r"^\s*(\d{2}):(\d{2})(?::(\d{2}))?\s*$")
_ISO_DATETIME = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_XPATH_NUMBER = re.compile(r"^\s*-?(?:\d+(?:\.\d*)?|\.\d+)\s*$")  # XPath 1.0 `Number`, no exponent, no '+'
# `${name}` outside string literals; literals are matched first so that '${x}' inside quotes is left alone.
_SOURCE_TOKENS = re.compile(r"""'[^']*'|"[^"]*"|\$\{([^}]*)\}""")
# `jr:choice-name(` as ODK writes it: the prefix is dropped (outside string literals) before parsing.
_JR_FUNCTION = re.compile(r"""'[^']*'|"[^"]*"|\bjr:(?=choice-name\s*\()""")

#: The labels of choices for `choice-name()`: (question name, choice name) -> label, set by the caller
#: (the engine, in the session's language) around an evaluation; unset, choice-name() gives the name back.
choice_labels: ContextVar[Callable[[str, str], str] | None] = ContextVar("choice_labels", default=None)
#: pulldata(table, column, key column, key): the value, from the CSV tables attached to the survey (set by the
#: caller around an evaluation); unset, pulldata() gives ''.
pulldata_lookup: ContextVar[Callable[[str, str, str, str], str] | None] = ContextVar("pulldata_lookup", default=None)


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated. The message is a sentence for the author."""


class _NodeSet(tuple[str, ...]):
    """The string values of a node-set, in document order; XPath 1.0 only ever needs their strings."""


_Value = _NodeSet | bool | float | str


@dataclass(frozen=True)
class Compiled:
    """A checked expression, ready for `evaluate_bool`. Compile once per survey, evaluate per reply."""

    source: str
    references: tuple[str, ...]
    uses_current: bool
    xpath: str = field(repr=False)
    _root: XPathToken = field(repr=False, compare=False)
    # references used only inside a union (`${a} | ${b}`): a node only when answered (see the docstring)
    sparse: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    columns: frozenset[str] = field(default=frozenset(), repr=False, compare=False)  # a choice filter's


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


@method(function("coalesce", nargs=2))
def evaluate__coalesce(self: XPathFunction, context: Any = None) -> str:
    first = _to_string(_arg(self, 0, context))
    return first if first != "" else _to_string(_arg(self, 1, context))


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


###
# Compiling and evaluating


def find_references(expr: str) -> list[str]:
    """The `${name}` references of an expression, in order of first use (string literals are skipped)."""
    names: list[str] = []
    for m in _SOURCE_TOKENS.finditer(expr):
        name = m[1]
        if name is not None and name.strip() not in names:
            names.append(name.strip())
    return names


def _rewrite(expr: str) -> str:
    # Padding with spaces keeps `${a}-1` from becoming the single XPath name `a-1`.
    def sub(m: re.Match[str]) -> str:
        return m[0] if m[1] is None else f" /{_ROOT}/{m[1].strip()} "

    expr = _JR_FUNCTION.sub(lambda m: m[0] if m[0].startswith(("'", '"')) else "", expr)
    return _SOURCE_TOKENS.sub(sub, expr)


def _describe(err: ElementPathError) -> str:
    """elementpath's message without its location (which points into the rewritten text) and code."""
    text = str(err.message) if getattr(err, "message", None) else str(err)
    return re.sub(r"^\[err:\w+\]\s*", "", text).strip().rstrip(".")


def _is_reference_path(token: XPathToken, references: tuple[str, ...]) -> bool:
    """Is this the `/data/q` produced by rewriting `${q}`?"""
    if token.symbol != "/" or len(token) != 2:
        return False
    left, right = token[0], token[1]
    return (
        left.symbol == "/"
        and len(left) == 1
        and left[0].symbol == "(name)"
        and left[0].value == _ROOT
        and right.symbol == "(name)"
        and right.value in references
    )


def _union_references(token: XPathToken, references: tuple[str, ...]) -> list[str] | None:
    """The references of a union of references (`${a} | ${b} | ...`), or None if it is anything else."""
    if _is_reference_path(token, references):
        return [str(token[1].value)]
    if token.symbol != "|" or len(token) != 2:
        return None
    left, right = _union_references(token[0], references), _union_references(token[1], references)
    return None if left is None or right is None else left + right


def _filtered_references(token: XPathToken, references: tuple[str, ...]) -> tuple[list[str], XPathToken] | None:
    """A predicate on references: (their names, the predicate), or None if the token is anything else."""
    if token.symbol == "[" and len(token) == 2:
        target = token[0][0] if token[0].symbol == "(" and len(token[0]) == 1 else token[0]
        members = _union_references(target, references)
        return (members, token[1]) if members is not None else None
    if token.symbol == "/" and len(token) == 2 and token[1].symbol == "[" and len(token[1]) == 2:
        left, step = token[0], token[1]
        name = step[0]
        if (
            left.symbol == "/"
            and len(left) == 1
            and left[0].symbol == "(name)"
            and left[0].value == _ROOT
            and name.symbol == "(name)"
            and name.value in references
        ):
            return [str(name.value)], step[1]
    return None


@dataclass
class _Checked:
    uses_dot: bool = False
    in_union: set[str] = field(default_factory=set)
    outside_union: set[str] = field(default_factory=set)


def _check_tree(
    source: str,
    token: XPathToken,
    references: tuple[str, ...],
    allow_dot: bool,
    columns: frozenset[str] = frozenset(),
    out: _Checked | None = None,
) -> _Checked:
    """Reject what XPath allows but a survey cannot mean; notes whether `.` is used, and which references are
    used only in unions. `columns`: the bare names a choice filter may use (the choice's columns)."""
    out = out if out is not None else _Checked()
    if _is_reference_path(token, references):
        out.outside_union.add(str(token[1].value))
        return out
    if token.symbol == "|" and (members := _union_references(token, references)) is not None:
        out.in_union.update(members)
        return out
    if (filtered := _filtered_references(token, references)) is not None:
        # `${q}[. < 5]` and `(${a} | ${b})[. < 5]`: the nodes of the references that pass the predicate
        members, predicate = filtered
        out.in_union.update(members)
        inner = _check_tree(source, predicate, references, True, columns)
        out.in_union.update(inner.in_union)
        out.outside_union.update(inner.outside_union)
        return out
    symbol, label = token.symbol, str(token.label)
    if symbol == "(name)" and token.value in columns:
        return out
    if symbol == "(name)":
        raise ExpressionError(
            f"The expression {source!r} uses '{token.value}' on its own; write ${{{token.value}}} to use the "
            f"answer to question '{token.value}', or quote it ('{token.value}') if you mean the text."
        )
    if label in ("axis", "kind test") or symbol in ("/", "//", "..", "@", "[", "$", "|", "::", ":", "{"):
        raise ExpressionError(
            f"The expression {source!r} uses XPath paths, variables or axes, which surveys do not support; "
            "refer to questions with ${name}."
        )
    if symbol == "*" and len(token) == 0:
        raise ExpressionError(f"The expression {source!r} uses '*' as a wildcard; surveys only use it to multiply.")
    if "function" in label and symbol not in SUPPORTED_FUNCTIONS:
        raise ExpressionError(f"The expression {source!r} uses {symbol}(), which surveys do not support.")
    if symbol == "regex" and len(token) == 2 and token[1].symbol == "(string)":
        try:  # a literal pattern can be checked now rather than failing on a reply
            re.compile(str(token[1].value))
        except re.error as err:
            raise ExpressionError(f"The expression {source!r} has an invalid regular expression: {err}.") from None
    if symbol == "." and not allow_dot:
        raise ExpressionError(
            f"The expression {source!r} uses '.', which means the answer being checked and only makes sense "
            "in a constraint."
        )
    out.uses_dot = out.uses_dot or symbol == "."
    for child in token:
        _check_tree(source, child, references, allow_dot, columns, out)
    return out


def _bare_names(expr: str) -> set[str]:
    """The bare names of a choice filter (its choices' columns): the parser's `(name)` tokens."""
    names: set[str] = set()

    def visit(token: XPathToken) -> None:
        if token.symbol == "(name)":
            names.add(str(token.value))
        for child in token:
            visit(child)

    visit(_parse(expr, _rewrite(expr)))
    return names


def _parse(expr: str, xpath: str, namespaces: dict[str, str] | None = None) -> XPathToken:
    try:
        return XFormsParser(namespaces=namespaces).parse(xpath)
    except ElementPathError as err:
        reason = _describe(err)
        if m := re.search(r"unknown function '([^']+)'", reason):
            raise ExpressionError(f"The expression {expr!r} uses {m[1]}(), which surveys do not support.") from None
        raise ExpressionError(f"The expression {expr!r} is not valid: {reason}.") from None


def _checked_references(expr: str, known: set[str]) -> list[str]:
    if not isinstance(expr, str) or not expr.strip():
        raise ExpressionError("The expression is empty.")
    references = find_references(expr)
    for name in references:
        if not NAME_RE.match(name):
            raise ExpressionError(f"The expression {expr!r} refers to ${{{name}}}, which is not a question name.")
        if name not in known:
            raise ExpressionError(f"The expression {expr!r} refers to ${{{name}}}, which is not a known question.")
    return references


def compile_expression(expr: str, known: set[str], *, allow_dot: bool = True) -> Compiled:
    """Parse and check an expression.

    `known` is the set of question names the expression may refer to with `${name}` (for a survey: the
    questions before this one). `allow_dot=False` is for `relevant`, where there is no current answer.
    Raises ExpressionError with a sentence naming the problem.
    """
    references = _checked_references(expr, known)
    xpath = _rewrite(expr)
    root = _parse(expr, xpath)
    checked = _check_tree(expr, root, tuple(references), allow_dot)
    return Compiled(
        source=expr,
        references=tuple(references),
        uses_current=checked.uses_dot,
        xpath=xpath,
        _root=root,
        sparse=frozenset(checked.in_union - checked.outside_union),
    )


_CHOICES_PATH = f"/{_ROOT}/c:choices/item"


def compile_choice_filter(expr: str, known: set[str], columns: set[str]) -> Compiled:
    """A `choice_filter`: `${name}` an earlier answer, a bare name a column of the choice (`name`, and the
    choices sheet's own columns). Evaluated by `filter_choices`."""
    references = _checked_references(expr, known)
    # every bare name is a column of the choice, as in ODK (a column no choice has is an empty node-set)
    names = frozenset({*(c for c in columns if NAME_RE.match(c)), *_bare_names(expr)})
    checked = _check_tree(expr, _parse(expr, _rewrite(expr)), tuple(references), False, names)
    xpath = f"{_CHOICES_PATH}[{_rewrite(expr)}]"
    root = _parse(expr, xpath, {"c": _NS})
    return Compiled(
        source=expr,
        references=tuple(references),
        uses_current=False,
        xpath=xpath,
        _root=root,
        sparse=frozenset(checked.in_union - checked.outside_union),
        columns=names,
    )


def _instance(compiled: Compiled, answers: Mapping[str, str], current: str | None) -> tuple[ET.Element, ET.Element]:
    root = ET.Element(_ROOT)
    # Every referenced question gets a node, answered or not: in XForms an unanswered question is an
    # empty node, so `${q} = ''` is true rather than comparing against an empty node-set. A question read
    # only in a union is a node only when it was reached (an iteration of a repeat that exists).
    for name in compiled.references:
        if name in compiled.sparse and name not in answers:
            continue
        ET.SubElement(root, name).text = answers.get(name, "") or ""
    node = ET.SubElement(root, _CURRENT_TAG)
    node.text = current or ""
    return root, node


def _context(root: ET.Element, item: ET.Element | None, today: dt.date, now: dt.datetime | None) -> XPathContext:
    moment = now if now is not None else dt.datetime.combine(today, dt.time(12, 0))
    return XPathContext(root, item=item, current_dt=moment)


def _evaluate(
    compiled: Compiled, answers: Mapping[str, str], current: str | None, today: dt.date, now: dt.datetime | None
) -> _Value:
    root, node = _instance(compiled, answers, current)
    try:
        return _value(compiled._root, _context(root, node, today, now))
    except ElementPathError as err:
        raise ExpressionError(f"The expression {compiled.source!r} could not be evaluated: {_describe(err)}.") from None


def evaluate_bool(
    compiled: Compiled,
    answers: Mapping[str, str],
    current: str | None,
    today: dt.date,
    *,
    now: dt.datetime | None = None,
) -> bool:
    """Evaluate to a boolean, as XForms does for relevant and constraint.

    `answers` maps question names to answers as strings ('' or missing = unanswered; select_multiple as
    space-separated names; dates as YYYY-MM-DD). `current` is the answer being checked (the `.`). `now`
    (aware, in the contact's zone) is what now() gives; without it, noon of `today`.
    Raises ExpressionError if evaluation fails (for example a regex pattern built at run time is invalid).
    """
    return _to_boolean(_evaluate(compiled, answers, current, today, now))


def evaluate_value(
    compiled: Compiled,
    answers: Mapping[str, str],
    today: dt.date,
    *,
    current: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """Evaluate to a string, as XForms stores a `calculate` (numbers without a trailing '.0'; NaN is '')."""
    value = _evaluate(compiled, answers, current, today, now)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return ""
    return _to_string(value)


def filter_choices(
    compiled: Compiled,
    answers: Mapping[str, str],
    columns: list[Mapping[str, str]],
    today: dt.date,
    *,
    now: dt.datetime | None = None,
) -> list[int]:
    """The positions (0-based, in order) of the choices a choice filter keeps; `columns` holds each
    choice's columns ({'name': ..., 'county': ...}). One evaluation for all the choices."""
    root, node = _instance(compiled, answers, None)
    holder = ET.SubElement(root, _CHOICES_TAG)
    position: dict[int, int] = {}
    for i, choice in enumerate(columns):
        item = ET.SubElement(holder, "item")
        position[id(item)] = i
        for key in compiled.columns:
            ET.SubElement(item, key).text = choice.get(key, "")
    try:
        found = compiled._root.evaluate(_context(root, node, today, now))
    except ElementPathError as err:
        raise ExpressionError(
            f"The choice filter {compiled.source!r} could not be evaluated: {_describe(err)}."
        ) from None
    nodes = found if isinstance(found, list) else [found]
    kept = {position.get(id(getattr(n, "elem", None)), -1) for n in nodes if isinstance(n, XPathNode)}
    return sorted(kept - {-1})
