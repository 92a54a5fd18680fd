"""XForms-style `relevant` and `constraint` expressions for SMS surveys.

Survey authors write the XPath 1.0 dialect they know from XLSForm: `${q}` refers to the answer of an
earlier question, `.` to the answer being checked, plus the XForms functions listed in
`SUPPORTED_FUNCTIONS`. We evaluate exactly the way an XForms engine does: the answers so far become a
small instance document `<data><q1>value</q1>...</data>`, `${q}` is rewritten to the path `/data/q`, and
`.` is the context node holding the current answer. Parsing is elementpath's XPath 1.0 parser, extended
(by subclassing, the way elementpath declares its own functions) with the XForms functions (`xpath.py`).

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
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

from elementpath import ElementPathError, XPathContext, XPathNode, XPathToken

from casemsg.surveys.xpath import (
    SUPPORTED_FUNCTIONS,
    XFormsParser,
    _to_boolean,
    _to_string,
    _Value,
    _value,
    choice_labels,
    pulldata_lookup,
)

__all__ = [
    "Compiled",
    "ExpressionError",
    "SUPPORTED_FUNCTIONS",
    "XFormsParser",
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

_ROOT = "data"
# The current answer lives in its own namespace so that it can never collide with a question's element.
_NS = "urn:casemsg:survey"
_CURRENT_TAG = "{urn:casemsg:survey}current"
_CHOICES_TAG = "{urn:casemsg:survey}choices"
# `${name}` outside string literals; literals are matched first so that '${x}' inside quotes is left alone.
_SOURCE_TOKENS = re.compile(r"""'[^']*'|"[^"]*"|\$\{([^}]*)\}""")
# `jr:choice-name(` as ODK writes it: the prefix is dropped (outside string literals) before parsing.
_JR_FUNCTION = re.compile(r"""'[^']*'|"[^"]*"|\bjr:(?=choice-name\s*\()""")


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated. The message is a sentence for the author."""


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
