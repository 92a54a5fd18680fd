"""Every error code the code can produce is in the catalogue (casemsg/core/errors.py), and is written as
the catalogue's constant (`errors.CASE_NOT_FOUND`), never as a bare string: a new code cannot skip the
catalogue, and so cannot be missing from docs/errors.md, `casemsg errors` or GET /api/v1/errors.

The scan reads casemsg/ with `ast` (nothing is imported) and looks at every place a code is produced:

- the code argument of `InputError(…)`, `Problem(…)` (contact status), `Choice(…)` (gateway routing),
  `fail(m, …)` (send pipeline checks), `error_body(…)` (API), `errors.as_dict(…)` / `errors.get(…)`;
- any `error=` or `delay_reason=` keyword (`SendResult`, `StatusUpdate`, `QuerySet.update`, …);
- any assignment to an `.error` or `.delay_reason` attribute, or to a variable named `code`;

through `a or b`, `a if c else b` and tuple assignments. Beyond those sites, no string literal anywhere
in casemsg/ may equal a catalogue code (tables such as a gateway's provider-code map use constants too).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from casemsg.core import errors

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "casemsg"
CATALOGUE_FILE = PACKAGE / "core" / "errors.py"
ERRORS_MODULE = "casemsg.core.errors"

# (defining module, name) -> (position of the code argument, its keyword name)
CODE_CALLABLES: dict[tuple[str, str], tuple[int, str]] = {
    (ERRORS_MODULE, "InputError"): (0, "code"),
    (ERRORS_MODULE, "as_dict"): (0, "code"),
    (ERRORS_MODULE, "get"): (0, "code"),
    ("casemsg.contacts.status", "Problem"): (0, "code"),
    ("casemsg.gateways.routing", "Choice"): (1, "error"),
    ("casemsg.messaging.pipeline.checks", "fail"): (1, "code"),
    ("casemsg.api.core", "error_body"): (0, "code"),
}
CODE_KEYWORDS = {"error", "delay_reason"}  # in any call
CODE_ATTRIBUTES = {"error", "delay_reason"}  # x.error = …
CODE_VARIABLES = {"code"}  # code = …

# In the catalogue ahead of the code that will produce them (the scheduling and surveys areas, docs/architecture.md).
PLANNED = {errors.QUIET_HOURS, errors.SURVEY_EXPIRED}

# The request codes the API answered with before they were catalogued: they must stay.
REQUEST_CODES = """VALIDATION_ERROR CASE_NOT_FOUND FORBIDDEN UNAUTHENTICATED VALUE_TOO_LONG INVALID_VALUE
INVALID_PROPERTY CASE_EXISTS DUPLICATE_CASE_ID TOO_MANY_CASES RESERVED_KEYWORD UNKNOWN_GATEWAY_TYPE USERNAME_TAKEN
CONSENT_ALREADY_RECORDED HTTP_ERROR INVALID_SLUG PROJECT_EXISTS CASE_TYPE_REQUIRED INVALID_CASE_ID
MOBILE_WORKER_NOT_FOUND USERNAME_REQUIRED MESSAGE_NOT_FOUND KEYWORD_NOT_FOUND KEYWORD_EXISTS INVALID_GATEWAY_NAME
INVALID_GATEWAY_CONFIG GATEWAY_EXISTS INVALID_PREFIX INVALID_WEBHOOK INBOUND_NOT_SUPPORTED STATUS_NOT_SUPPORTED
KEY_NOT_FOUND""".split()


@dataclass
class Scan:
    produced: dict[str, list[str]] = field(default_factory=dict)  # code -> where
    referenced: set[str] = field(default_factory=set)  # every errors.X in the tree
    bare: list[str] = field(default_factory=list)  # a string literal where a code is produced
    literals: list[str] = field(default_factory=list)  # a string literal equal to a code, anywhere
    unknown: list[str] = field(default_factory=list)  # errors.X that is not a code
    statuses: list[tuple[str, str, int]] = field(default_factory=list)  # (code, where, status) of InputError
    sites: int = 0


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class _Scanner(ast.NodeVisitor):
    def __init__(self, scan: Scan, module: str, where: str):
        self.scan, self.module, self.where = scan, module, where
        self.names: dict[str, tuple[str, str]] = {}  # local name -> (module, name) it stands for
        self.modules: dict[str, str] = {}  # local name -> module it is bound to

    # --- names -----------------------------------------------------------------------------------
    def bind(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    self.names[a.asname or a.name] = (node.module, a.name)
                    self.modules[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.modules[a.asname] = a.name
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
                self.names[node.name] = (self.module, node.name)

    def callee(self, func: ast.expr) -> tuple[str, str] | None:
        if isinstance(func, ast.Name):
            return self.names.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in self.modules:
            return (self.modules[func.value.id], func.attr)
        return None

    def at(self, node: ast.AST) -> str:
        return f"{self.where}:{getattr(node, 'lineno', '?')}"

    # --- a value where a code is produced ----------------------------------------------------------
    def produce(self, value: ast.expr | None) -> list[str]:
        """Check one produced value; returns the codes it can be."""
        if value is None:
            return []
        if isinstance(value, ast.BoolOp):
            return [c for v in value.values for c in self.produce(v)]
        if isinstance(value, ast.IfExp):
            return self.produce(value.body) + self.produce(value.orelse)
        self.scan.sites += 1
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            if value.value:  # "" clears a code
                self.scan.bare.append(f"{self.at(value)}: {value.value!r}")
                self.scan.produced.setdefault(value.value, []).append(self.at(value))
                return [value.value]
            return []
        code = self.constant(value)
        if code is not None:
            self.scan.produced.setdefault(code, []).append(self.at(value))
            return [code]
        return []  # computed (chk.error, r.error, problem.code, …): checked where it was produced

    def constant(self, node: ast.expr) -> str | None:
        """The code an `errors.X` (or an imported `X`) stands for."""
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and self.modules.get(node.value.id) == ERRORS_MODULE
            and node.attr.isupper()
        ):
            return node.attr
        if isinstance(node, ast.Name) and self.names.get(node.id, ("", ""))[0] == ERRORS_MODULE and node.id.isupper():
            return self.names[node.id][1]
        return None

    # --- visitors ----------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        target = self.callee(node.func)
        if target in CODE_CALLABLES:
            pos, kw = CODE_CALLABLES[target]
            arg = (
                node.args[pos] if len(node.args) > pos else next((k.value for k in node.keywords if k.arg == kw), None)
            )
            codes = self.produce(arg)
            if target == (ERRORS_MODULE, "InputError"):
                status = (
                    node.args[2]
                    if len(node.args) > 2
                    else next((k.value for k in node.keywords if k.arg == "status"), ast.Constant(422))
                )
                if isinstance(status, ast.Constant) and isinstance(status.value, int):
                    self.scan.statuses += [(c, self.at(node), status.value) for c in codes]
        for k in node.keywords:
            if k.arg in CODE_KEYWORDS:
                self.produce(k.value)
        self.generic_visit(node)

    def _assign(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List):
            for t, v in zip(target.elts, value.elts, strict=False):
                self._assign(t, v)
        elif (isinstance(target, ast.Attribute) and target.attr in CODE_ATTRIBUTES) or (
            isinstance(target, ast.Name) and target.id in CODE_VARIABLES
        ):
            self.produce(value)

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._assign(t, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._assign(node.target, node.value)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and self.modules.get(node.value.id) == ERRORS_MODULE:
            if node.attr.isupper() and node.attr not in ("CATALOGUE", "KIND_TITLES"):
                self.scan.referenced.add(node.attr)
                if node.attr not in errors.CATALOGUE:
                    self.scan.unknown.append(f"{self.at(node)}: errors.{node.attr}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == ERRORS_MODULE:
            for a in node.names:
                if a.name.isupper() and a.name not in ("CATALOGUE", "KIND_TITLES"):
                    self.scan.referenced.add(a.name)
                    if a.name not in errors.CATALOGUE:
                        self.scan.unknown.append(f"{self.at(node)}: {a.name}")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value in errors.CATALOGUE:
            self.scan.literals.append(f"{self.at(node)}: {node.value!r}")

    def visit_Module(self, node: ast.Module) -> None:
        for stmt in node.body:
            # `__all__ = ["INVALID_TIME_ZONE", …]` names a module's constants: not a code literal
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets
            ):
                continue
            self.visit(stmt)


def scan_source(source: str, module: str, where: str, scan: Scan | None = None) -> Scan:
    scan = scan or Scan()
    tree = ast.parse(source, filename=where)
    s = _Scanner(scan, module, where)
    s.bind(tree)
    s.visit(tree)
    return scan


@pytest.fixture(scope="module")
def scan() -> Scan:
    result = Scan()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == CATALOGUE_FILE or "migrations" in path.parts:
            continue
        scan_source(path.read_text(encoding="utf-8"), _module_name(path), str(path.relative_to(ROOT)), result)
    return result


# --- the catalogue itself ------------------------------------------------------------------------------
def test_constants_and_entries_match_one_to_one():
    constants = {n: v for n, v in vars(errors).items() if n.isupper() and isinstance(v, str)}
    assert constants == {c: c for c in errors.CATALOGUE}
    assert len(errors.CATALOGUE) == len(errors._CATALOGUE)  # no code listed twice
    errors._check_catalogue()


def test_every_entry_has_a_kind_and_request_errors_a_status():
    kinds = {e.kind for e in errors.CATALOGUE.values()}
    assert kinds == {"problem", "request"}
    for e in errors.CATALOGUE.values():
        if e.kind == "request":
            assert e.status is not None, e.code
            assert not e.delay, e.code
        assert e.status is None or 400 <= e.status < 500, e.code
    assert set(REQUEST_CODES) <= {e.code for e in errors.of_kind("request")}
    assert errors.of_kind("problem") + errors.of_kind("request") == sorted(
        errors.CATALOGUE.values(), key=lambda e: e.kind != "problem"
    )


def test_markdown_shows_the_two_kinds_in_two_sections():
    md = errors.catalogue_markdown()
    problems, requests = md.split(f"## {errors.KIND_TITLES['request']}\n")
    assert f"## {errors.KIND_TITLES['problem']}\n" in problems
    for e in errors.CATALOGUE.values():
        assert f"### `{e.code}`" in (problems if e.kind == "problem" else requests), e.code
    assert "*HTTP status:* 404." in requests


# --- the scanner finds what it should ---------------------------------------------------------------
SAMPLE = """
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.contacts.status import Problem

def fail(m, code, detail=""): ...

def f(m, chk, r):
    raise InputError("BRAND_NEW", "a message")
    fail(m, chk.error or "ALSO_NEW")
    Problem(errors.NO_CONSENT)
    SendResult(1, "failed", error="GATEWAY_ERROR")
    m.delay_reason = "LATER"
    m.status, m.error = "failed", errors.NOT_A_CODE
    code = errors.INVALID_PHONE_NUMBER if chk else "PHONE_OPTED_OUT"
    m.error = ""
    raise InputError(errors.CASE_NOT_FOUND, "gone", 409)
"""


def test_the_scanner_finds_every_kind_of_site():
    s = scan_source(SAMPLE, "casemsg.messaging.pipeline.checks", "sample.py")
    assert [b.split(": ")[1] for b in s.bare] == [
        "'BRAND_NEW'",
        "'ALSO_NEW'",
        "'GATEWAY_ERROR'",
        "'LATER'",
        "'PHONE_OPTED_OUT'",
    ]
    assert {"NO_CONSENT", "INVALID_PHONE_NUMBER", "CASE_NOT_FOUND"} <= set(s.produced)
    assert s.unknown == ["sample.py:14: errors.NOT_A_CODE"]
    assert ("CASE_NOT_FOUND", "sample.py:17", 409) in s.statuses
    assert {lit.split(": ")[1] for lit in s.literals} == {"'GATEWAY_ERROR'", "'PHONE_OPTED_OUT'"}
    # a survey's own Problem(path, message) is not the contact status's Problem(code)
    other = scan_source('from casemsg.surveys.definition import Problem\nProblem("q1", "x")\n', "m", "o.py")
    assert other.bare == [] and other.sites == 0


# --- the tree ---------------------------------------------------------------------------------------
def test_the_scan_sees_the_produce_sites(scan):
    assert scan.sites > 150, scan.sites
    for code in ("CASE_NOT_FOUND", "NO_CONSENT", "GATEWAY_ERROR", "RATE_LIMITED", "SENDING_OUTCOME_UNKNOWN"):
        assert code in scan.produced, code


def test_every_code_the_code_produces_is_in_the_catalogue(scan):
    missing = {c: where for c, where in scan.produced.items() if c not in errors.CATALOGUE}
    assert not missing, f"codes missing from casemsg/core/errors.py (add an entry and a constant): {missing}"
    assert not scan.unknown, f"errors.X that are not catalogue codes: {scan.unknown}"


def test_no_code_is_a_bare_string(scan):
    assert not scan.bare, (
        "produce sites with a bare string: use the catalogue's constant (errors.X), adding the code to "
        f"casemsg/core/errors.py if it is new: {scan.bare}"
    )
    assert not scan.literals, f"catalogue codes spelled as strings: use errors.X instead: {scan.literals}"


def test_request_errors_answer_with_the_catalogues_status(scan):
    wrong = [
        (code, where, status)
        for code, where, status in scan.statuses
        if errors.CATALOGUE.get(code) is not None and errors.CATALOGUE[code].status != status
    ]
    assert not wrong, f"InputError status differs from the catalogue entry's: {wrong}"


def test_every_catalogue_code_is_used(scan):
    unused = set(errors.CATALOGUE) - scan.referenced
    assert unused <= PLANNED, f"catalogue codes nothing produces (remove them, or list them in PLANNED): {unused}"
