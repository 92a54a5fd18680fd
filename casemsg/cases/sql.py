"""SQL over a case's JSON properties, shared by the two places that filter cases in the database: the
alerts' criteria (scheduling.rules) and the dynamic groups' conditions (groups.conditions).

A property is text as people typed it, so a comparison as a date or a number first checks, in the same
expression, that the text IS one: a text that is not is never cast, and no database error can follow
from a case's odd value. The patterns are read the same way by Python, PostgreSQL and SQLite.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Expression, Func, Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.sql.compiler import SQLCompiler

# A Gregorian date YYYY-MM-DD, 0001-01-01 to 9999-12-31, as one expression both Python and PostgreSQL read the
# same way ([0-9], not \d, which is any Unicode digit in Python): months of 31, 30 and 28 days, then 29 February
# in leap years (divisible by 4; centuries only when divisible by 400).
_YEAR = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"  # 31 days
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"  # 30 days
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"  # February, 28
)
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
DATE_PATTERN: Final = rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
DATE_RE: Final = re.compile(DATE_PATTERN)
# A decimal number as a property holds it: the digits PostgreSQL's numeric and SQLite's REAL both read
NUMBER_PATTERN: Final = r"^[-+]?[0-9]{1,18}(?:\.[0-9]{1,18})?$"
NUMBER_RE: Final = re.compile(NUMBER_PATTERN)


def property_text(name: str) -> Cast:
    """A case property as SQL text (NULL when the case does not have it)."""
    # KeyTextTransform takes the name literally (see cases.queries); Cast keeps it a plain text comparison.
    return Cast(KeyTextTransform(name, "properties"), output_field=TextField())


class IsDate(Func):
    """TRUE when the text is a Gregorian date YYYY-MM-DD (see DATE_PATTERN); NULL/FALSE otherwise."""

    output_field = BooleanField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "sqlite":
            # date() with a modifier normalises an impossible date (2023-02-29 -> 2023-03-01), so it no longer
            # equals the text; year 0000, which SQLite accepts and Python refuses, is cut off.
            return f"(date({sql}, '+0 days') = {sql} AND {sql} >= '0001-01-01')", (*params, *params, *params)
        if connection.vendor == "postgresql":
            return f"({sql} ~ %s)", (*params, f"^{DATE_PATTERN}$")
        return f"({sql} REGEXP %s)", (*params, f"^{DATE_PATTERN}$")


def is_date(expression: Expression) -> Q:
    return Q(IsDate(expression))


class NumberCompare(Func):
    """TRUE when the text is a decimal number (NUMBER_PATTERN) and `op` the value; NULL otherwise (a text
    that is not a number is never cast, so no database error)."""

    output_field = BooleanField()

    def __init__(self, expression: Expression, op: str, value: Decimal) -> None:
        super().__init__(expression)
        self.op, self.value = op, value

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            cast, test, value = "numeric", f"{sql} ~ %s", str(self.value)
            return f"(CASE WHEN {test} THEN CAST({sql} AS {cast}) END {self.op} CAST(%s AS numeric))", (
                *params,
                NUMBER_PATTERN,
                *params,
                value,
            )
        return f"(CASE WHEN {sql} REGEXP %s THEN CAST({sql} AS REAL) END {self.op} %s)", (
            *params,
            NUMBER_PATTERN,
            *params,
            float(self.value),
        )
