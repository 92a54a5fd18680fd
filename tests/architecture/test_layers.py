"""The layering habits a tool can check beyond import-linter's layers contract (pyproject.toml): no
import cycles between any two modules, and no import hidden in a function body to dodge one."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2] / "casemsg"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles_between_modules() -> None:
    graph = grimp.build_graph("casemsg")
    # A package's __init__ is not a module of its own here: they are all empty.
    assert _cycles(graph) == []


def _hidden_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        # AppConfig.ready is where Django wants signal receivers connected (models are loaded by then).
        if node.name == "ready" and path.name == "apps.py":
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("casemsg"):
                found.append(f"{path.relative_to(ROOT.parent)}:{inner.lineno} from {inner.module}")
            elif isinstance(inner, ast.Import) and any(a.name.startswith("casemsg") for a in inner.names):
                found.append(f"{path.relative_to(ROOT.parent)}:{inner.lineno} import")
    return found


def test_no_function_level_imports_of_casemsg() -> None:
    hidden = [h for p in sorted(ROOT.rglob("*.py")) if "migrations" not in p.parts for h in _hidden_imports(p)]
    # cli.py keeps `casemsg --help` fast by importing nothing of casemsg or Django until a command runs.
    hidden = [h for h in hidden if not h.startswith("casemsg/cli.py")]
    assert hidden == []
