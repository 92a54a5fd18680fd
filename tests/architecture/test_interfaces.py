"""Interfaces stay thin (docs/architecture.md): the API, the pages and the CLI translate their input into
calls of the areas' `services` (to change something) and `queries` (to read something) and translate the
answer back. This test parses every module of casemsg/api, casemsg/web and casemsg/commands and holds
them to three rules:

1. **No ORM.** No `.objects` (or `_default_manager` / `_base_manager`), no `get_object_or_404`, no
   queryset-building call (`filter`, `order_by`, `annotate`, `values_list`, …, on a model, a related
   manager or a queryset a query returned) and no row written with `.save()` / `.delete()`. Using what an
   area answered is fine: count it, page it, iterate it, `refresh_from_db` a row a service wrote.
2. **Models are types.** A name imported from an area's `models` is used in annotations, `isinstance` and
   for its constants (`Message.FAILED`, `ConsentRecord.KINDS`), never called: no row built, no model
   method run.
3. **Only the areas' doors.** From an area an interface imports its `services`, `queries`, `models`,
   `tasks` (the worker runs the job loops, the pages and the API enqueue jobs), and the public modules
   named in PUBLIC below, each with what it is for; never `signals`, `apps` or `migrations`. `core` is
   shared by everyone and not an area.

An exception is allowed only in ALLOWED, with its reason, and an entry that no longer matches fails too (so
the list only shrinks)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INTERFACES = ("api", "web", "commands")
NOT_AREAS = {*INTERFACES, "core"}

MANAGERS = {"objects", "_default_manager", "_base_manager"}
SHORTCUTS = {"get_object_or_404", "get_list_or_404"}
# Calls that build a queryset (or write through one): on a model's manager, a related manager or a
# queryset an area answered. `values` only with arguments (a dict's .values() takes none).
BUILDERS = {
    "filter",
    "exclude",
    "annotate",
    "alias",
    "aggregate",
    "order_by",
    "select_related",
    "prefetch_related",
    "values_list",
    "in_bulk",
    "distinct",
    "only",
    "defer",
    "select_for_update",
    "get_or_create",
    "update_or_create",
    "bulk_create",
    "bulk_update",
    "extra",
    "raw",
    "union",
    "intersection",
    "difference",
    "none",
    "all",
}
# Row writes: `.save()` of any row, `.delete()` without arguments (Ninja's `router.delete(path)` has one).
WRITES = {"save", "delete"}

# The public modules of an area an interface may import besides services, queries, models and tasks.
PUBLIC: dict[str, dict[str, str]] = {
    "cases": {"importer": "the CSV import the page and `casemsg cases import` share (preview, then write)"},
    "consent": {
        "ledger": "the consent ledger's reads: its filter, CSV columns and counts",
        "verification": "sending a mobile worker's number its verification code",
        "texts": "the texts casemsg sends: their catalogue, each project's translations and their changes",
        "reports": "the consent and opt-out report (reads)",
    },
    "contacts": {"status": "a contact's status: the one answer to 'can it be messaged, and if not why'"},
    "events": {"deliver": "the deliverer loop `casemsg worker` runs, and the API's test event"},
    "gateways": {
        "base": "a gateway type's declarations (config fields, the digits of a number) forms are built from",
        "registry": "the table of gateway types",
        "cleaning": "the webhooks' raw payload and text rules",
    },
    "inbound": {
        "receive": "the provider webhooks' fast path: store, wake a worker",
        "router": "the inbound job: `casemsg worker` runs it, the phone simulator runs it at once",
        "sandbox": "the sandbox's simulated inbound messages and its reset of a test contact",
        "actions.registry": "the table of keyword actions the API, the form and the page offer",
        "actions.base": "a keyword action's declarations the keyword form is built from",
        "conversations": "the contacts who wrote and each one's thread (the conversations' reads and reply)",
        "inbox": "the inbox: its reads, states and labels",
    },
    "messaging": {
        "pipeline": "the send path's one door: status webhooks, the worker loop, the simulator's delivery",
        "render": "rendering a template for the send form's preview and its unknown fields",
        "segments": "an SMS's length, encoding and segments for the send form's preview",
        "reports": "the messaging history and the delivery reports (reads, their CSVs, the daily roll-up)",
    },
    "ops": {
        "doctor": "`casemsg doctor`'s checks",
        "heartbeat": "the worker's heartbeat `casemsg worker` writes",
        "leadership": "the ticker's lease: `casemsg worker` ticks only while it holds it",
    },
    "scheduling": {
        "specs": "the one declaration of a broadcast's and an alert's body: the API's bodies, the forms'",
        "fields": "the limits and field checks the body's declaration and the forms share",
        "contents": "what a broadcast sends: its declaration, read by the forms",
        "recipients": "who a broadcast reaches: its declaration, read by the forms",
        "rules": "an alert's criteria: their declaration, read by the forms",
        "schedules": "a schedule's declaration, read by the forms",
        "preflight": "checking a body before it is saved (the API's and the page's preflight)",
        "runner": "running an alert's rule now (`casemsg alerts run`)",
    },
    "sources": {
        "base": "a source type's declarations the source form is built from",
        "registry": "the table of source types",
        "mapping": "a source's property mapping: its declaration, read by the form",
        "exportfile": "a source's export file (the page's download, `casemsg sources`)",
        "receive": "the push receivers' fast path",
        "sync": "a sync run now (`casemsg sources sync`)",
    },
    "surveys": {
        "engine": "a session's outcomes and current question, and starting one",
        "consent": "the opt-in question sent as a survey (the API, the page, `casemsg consents request`)",
        "exports": "a survey's answers as a table (CSV, .xlsx)",
        "xlsform": "reading an XLSForm upload for the import page's preview",
    },
    "groups": {"conditions": "a dynamic group's conditions: their declaration, which the CLI reads"},
}
DOORS = {"services", "queries", "models", "tasks"}
NEVER = {"signals", "apps", "migrations"}

# (module, what) → why. `what` is the rule's word for the use: "objects", "get_object_or_404", a method
# name, or "import casemsg.x.y".
ALLOWED: dict[tuple[str, str], str] = {
    ("casemsg/commands/management/commands/users.py", "objects"): (
        "Django's auth User, not a casemsg area's model: the command finds or creates the account and checks "
        "its name and password with django.contrib.auth's own API and in its own words"
    ),
    ("casemsg/commands/management/commands/users.py", "save"): "Django's auth User (above)",
    ("casemsg/commands/management/commands/demo.py", "objects"): (
        "Django's auth User: the demo's login, created with django.contrib.auth's own API"
    ),
    ("casemsg/commands/management/commands/demo.py", "save"): "Django's auth User (above)",
    ("casemsg/api/conversations.py", "all"): (
        "an inbox item's labels in its schema's resolver: the rows come from inbound.inbox with their labels "
        "prefetched, so all() reads the prefetch (no query per row)"
    ),
}


def _modules() -> list[Path]:
    return sorted(p for name in INTERFACES for p in (ROOT / "casemsg" / name).rglob("*.py"))


def _imported(tree: ast.Module) -> list[str]:
    """Every casemsg module a file imports (`from casemsg.x import y` counts as casemsg.x.y: y may be a
    module; a name that is not one is checked as its module's)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("casemsg."):
            module = str(node.module)
            if len(module.split(".")) == 2:
                out += [f"{module}.{a.name}" for a in node.names]
            else:
                out.append(module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("casemsg.")]
    return out


def _model_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("casemsg."):
            parts = str(node.module).split(".")
            if parts[1] not in NOT_AREAS and parts[-1] == "models":
                names |= {a.asname or a.name for a in node.names}
    return names


def _chain(node: ast.expr) -> tuple[ast.expr, set[str]]:
    """The name a chain of calls and attributes starts from, and the attributes on the way."""
    attrs = set()
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        if isinstance(node, ast.Attribute):
            attrs.add(node.attr)
        node = node.func if isinstance(node, ast.Call) else node.value
    return node, attrs


def findings(path: Path, rel: str = "") -> list[tuple[str, int, str]]:
    """(module, line, what) for every use the rules refuse in one module."""
    rel = rel or str(path.relative_to(ROOT))
    tree = ast.parse(path.read_text(encoding="utf-8"), rel)
    models = _model_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in MANAGERS:
            found.append((rel, node.lineno, node.attr))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        root, attrs = _chain(func)
        if attrs & MANAGERS:
            continue  # a manager's chain is refused once, at its `.objects`
        if isinstance(func, ast.Name) and func.id in SHORTCUTS:
            found.append((rel, node.lineno, func.id))
        if isinstance(func, ast.Attribute):
            builds = func.attr in BUILDERS or (func.attr == "values" and (node.args or node.keywords))
            writes = func.attr in WRITES and not node.args
            if builds or writes:
                found.append((rel, node.lineno, func.attr))
        if isinstance(root, ast.Name) and root.id in models:
            found.append((rel, node.lineno, f"call of {root.id} (a model)"))
    for module in _imported(tree):
        parts = module.split(".")
        area, inside = parts[1], ".".join(parts[2:])
        if area in NOT_AREAS or not inside:
            continue
        first = parts[2]
        if first in NEVER or not (first in DOORS or inside in PUBLIC.get(area, {})):
            found.append((rel, 0, f"import {module}"))
    return found


def test_interfaces_use_only_services_and_queries() -> None:
    found = [f for p in _modules() for f in findings(p)]
    refused = [f"{rel}:{line} {what}" for rel, line, what in found if (rel, what) not in ALLOWED]
    assert refused == [], (
        "An interface reaches past an area's services and queries (docs/architecture.md, 'Interfaces stay "
        "thin'): move the read to the area's queries.py, the write to its services.py, or name a public "
        "module in PUBLIC with what it is for.\n" + "\n".join(refused)
    )


def test_every_exception_is_still_needed() -> None:
    used = Counter((rel, what) for p in _modules() for rel, _line, what in findings(p))
    # (a module not in the tree yet, e.g. another change's new page, is not checked)
    stale = sorted(f"{rel}: {what}" for rel, what in ALLOWED if (ROOT / rel).exists() and not used[(rel, what)])
    assert stale == [], "ALLOWED names uses that are gone: remove them\n" + "\n".join(stale)


def test_the_guard_sees_what_it_refuses(tmp_path: Path) -> None:
    """The rules themselves, on a module written to break each one."""
    bad = tmp_path / "probe.py"
    bad.write_text(
        "from django.shortcuts import get_object_or_404\n"
        "from casemsg.cases.models import Case\n"
        "from casemsg.cases import signals\n"
        "from casemsg.contacts.registry import sync\n"
        "def view(project, pk, qs, row):\n"
        "    Case.objects.first()\n"
        "    get_object_or_404(Case, pk=pk)\n"
        "    qs.filter(pk=pk).values('pk')\n"
        "    project.cases.all()\n"
        "    row.save()\n"
        "    Case(project=project)\n"
        "    {}.values()\n"
        "    return qs.count(), row.refresh_from_db()\n",
        encoding="utf-8",
    )
    whats = sorted(what for _rel, _line, what in findings(bad, "probe.py"))
    assert whats == sorted(
        [
            "objects",
            "get_object_or_404",
            "filter",
            "values",
            "all",
            "save",
            "call of Case (a model)",
            "import casemsg.cases.signals",
            "import casemsg.contacts.registry",
        ]
    )
