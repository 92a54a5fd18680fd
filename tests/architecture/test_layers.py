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


def _contracts() -> list[dict[str, object]]:
    import tomllib

    config = tomllib.loads((ROOT.parent / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["importlinter"]["contracts"])


def test_no_optional_layers() -> None:
    """A layer in parentheses is optional to import-linter: a renamed area would pass silently."""
    for contract in _contracts():
        for layer in contract.get("layers", []):
            assert "(" not in str(layer), f"{contract['name']}: optional layer {layer}"


def test_every_module_of_a_layered_area_is_in_its_order() -> None:
    """An area with its own order (a layers contract with `containers`) names each of its modules, so a
    new module is placed in the order rather than left unchecked."""
    checked = 0
    for contract in _contracts():
        for container in contract.get("containers", []):
            named = {part.strip() for layer in contract["layers"] for part in str(layer).replace(":", "|").split("|")}
            folder = ROOT.parent / str(container).replace(".", "/")
            modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
            modules |= {p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
            modules -= {"migrations", "management"}
            assert modules <= named, f"{container}: not in its order: {sorted(modules - named)}"
            checked += 1
    assert checked >= 8
