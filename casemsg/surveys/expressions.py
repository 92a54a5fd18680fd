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
* `today()` returns the date the caller passes in (the survey's local date), as 'YYYY-MM-DD'.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from copy import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from elementpath import ElementPathError, XPath1Parser, XPathContext, XPathFunction, XPathNode, XPathToken

__all__ = [
    "Compiled",
    "ExpressionError",
    "SUPPORTED_FUNCTIONS",
    "compile_expression",
    "evaluate_bool",
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
XFORMS_FUNCTIONS = frozenset({"coalesce", "count-selected", "date", "if", "int", "regex", "selected", "today"})
SUPPORTED_FUNCTIONS = XPATH_FUNCTIONS | XFORMS_FUNCTIONS

_ROOT = "data"
# The current answer lives in its own namespace so that it can never collide with a question's element.
_CURRENT_TAG = "{urn:casemsg:survey}current"
_EPOCH = dt.date(1970, 1, 1)
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_ISO_TIME = re.compile(r"^\s*(\d{2}):(\d{2})(?::(\d{2}))?\s*$")
_XPATH_NUMBER = re.compile(r"^\s*-?(?:\d+(?:\.\d*)?|\.\d+)\s*$")  # XPath 1.0 `Number`, no exponent, no '+'
# `${name}` outside string literals; literals are matched first so that '${x}' inside quotes is left alone.
_SOURCE_TOKENS = re.compile(r"""'[^']*'|"[^"]*"|\$\{([^}]*)\}""")


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
    return math.nan


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


def _check_tree(source: str, token: XPathToken, references: tuple[str, ...], allow_dot: bool) -> bool:
    """Reject what XPath allows but a survey cannot mean; returns whether `.` is used."""
    if _is_reference_path(token, references):
        return False
    symbol, label = token.symbol, str(token.label)
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
    uses_dot = symbol == "."
    if uses_dot and not allow_dot:
        raise ExpressionError(
            f"The expression {source!r} uses '.', which means the answer being checked and only makes sense "
            "in a constraint."
        )
    for child in token:
        uses_dot = _check_tree(source, child, references, allow_dot) or uses_dot
    return uses_dot


def compile_expression(expr: str, known: set[str], *, allow_dot: bool = True) -> Compiled:
    """Parse and check an expression.

    `known` is the set of question names the expression may refer to with `${name}` (for a survey: the
    questions before this one). `allow_dot=False` is for `relevant`, where there is no current answer.
    Raises ExpressionError with a sentence naming the problem.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ExpressionError("The expression is empty.")
    references = find_references(expr)
    for name in references:
        if not NAME_RE.match(name):
            raise ExpressionError(f"The expression {expr!r} refers to ${{{name}}}, which is not a question name.")
        if name not in known:
            raise ExpressionError(f"The expression {expr!r} refers to ${{{name}}}, which is not a known question.")
    xpath = _rewrite(expr)
    try:
        root = XFormsParser().parse(xpath)
    except ElementPathError as err:
        reason = _describe(err)
        if m := re.search(r"unknown function '([^']+)'", reason):
            raise ExpressionError(f"The expression {expr!r} uses {m[1]}(), which surveys do not support.") from None
        raise ExpressionError(f"The expression {expr!r} is not valid: {reason}.") from None
    uses_current = _check_tree(expr, root, tuple(references), allow_dot)
    return Compiled(source=expr, references=tuple(references), uses_current=uses_current, xpath=xpath, _root=root)


def _instance(compiled: Compiled, answers: dict[str, str], current: str | None) -> tuple[ET.Element, ET.Element]:
    root = ET.Element(_ROOT)
    # Every referenced question gets a node, answered or not: in XForms an unanswered question is an
    # empty node, so `${q} = ''` is true rather than comparing against an empty node-set.
    for name in dict.fromkeys([*compiled.references, *(n for n in answers if NAME_RE.match(n))]):
        ET.SubElement(root, name).text = answers.get(name, "") or ""
    node = ET.SubElement(root, _CURRENT_TAG)
    node.text = current or ""
    return root, node


def evaluate_bool(compiled: Compiled, answers: dict[str, str], current: str | None, today: dt.date) -> bool:
    """Evaluate to a boolean, as XForms does for relevant and constraint.

    `answers` maps question names to answers as strings ('' or missing = unanswered; select_multiple as
    space-separated names; dates as YYYY-MM-DD). `current` is the answer being checked (the `.`).
    Raises ExpressionError if evaluation fails (for example a regex pattern built at run time is invalid).
    """
    root, node = _instance(compiled, answers, current)
    context = XPathContext(root, item=node, current_dt=dt.datetime.combine(today, dt.time(12, 0)))
    try:
        value = _value(compiled._root, context)
    except ElementPathError as err:
        raise ExpressionError(f"The expression {compiled.source!r} could not be evaluated: {_describe(err)}.") from None
    return _to_boolean(value)
