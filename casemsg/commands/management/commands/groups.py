"""`casemsg groups list|show|create|update|delete|add|remove|import|members --project P …`.

- `list`: the project's groups by name: id, kind, members now, name, the group in words;
- `show GROUP`: one group (by id or name), its members counted now and the first of them;
- `create NAME --static` or `create NAME --case-type T [--where CONDITION …] [--contact STATE …]`: a static
  group (its first members with `--case-id`), or a dynamic one. A condition is `PROPERTY OPERATOR [VALUE]`
  (`district equals North`, `edd within_next_days 30`, `district in North,East`, `phone is_set`); a contact
  state is `can_receive_sms`, `has_consent`, `opted_out` (or `not_…` for the opposite);
- `update GROUP [--name …] [--where …] [--contact …]`: rename, or replace a dynamic group's conditions;
- `delete GROUP`: refused while a broadcast or an alert uses it;
- `add GROUP CASE_ID …`, `remove GROUP CASE_ID …`: a static group's members; `import GROUP FILE.csv`: add
  the cases a CSV lists (a `case_id` column, or the first column);
- `members GROUP [--limit N]`: the group's cases now (case id, type, name).

`--json` prints what the API answers.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from casemsg.commands import lookup
from casemsg.core import actor, errors
from casemsg.core.errors import InputError
from casemsg.groups import conditions, queries, services
from casemsg.groups.models import Group
from casemsg.projects.models import Project


def _condition(words: list[str]) -> dict[str, Any]:
    """`PROPERTY OPERATOR [VALUE]` as a condition: `in` takes a comma-separated list, the days operators a
    whole number, the number operators a number (the service checks them)."""
    if len(words) < 2:
        raise CommandError("--where takes PROPERTY OPERATOR [VALUE], e.g. --where district equals North")
    prop, op, *rest = words
    out: dict[str, Any] = {"property": prop, "operator": op}
    if rest:
        value = " ".join(rest)
        if op == "in":
            out["value"] = [v.strip() for v in value.split(",") if v.strip()]
        elif op in ("within_next_days", "within_last_days") and value.strip().lstrip("-").isdigit():
            out["value"] = int(value)
        else:
            out["value"] = value
    return out


def _contact(state: str) -> dict[str, Any]:
    expected = not state.startswith("not_")
    return {"contact": state.removeprefix("not_"), "value": expected}


class Command(BaseCommand):
    help = "Groups of cases: list, show, create (static or dynamic), change, delete; add, remove, import members."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="the project's groups, with their members counted now")
        for name, text in (
            ("show", "one group: its definition, its members counted now, the first of them"),
            ("delete", "delete a group (refused while a broadcast or an alert uses it)"),
            ("members", "the group's cases now"),
        ):
            p = sub.add_parser(name, help=text)
            p.add_argument("group", help="the group's id or name")
            if name == "members":
                p.add_argument("--limit", type=int, default=100)
        states = [*conditions.CONTACT_STATES, *(f"not_{s}" for s in conditions.CONTACT_STATES)]
        for name, text in (("create", "a new group"), ("update", "change a group")):
            p = sub.add_parser(name, help=text)
            if name == "create":
                p.add_argument("name")
                p.add_argument("--static", action="store_true", help="a static group (cases added by hand)")
                p.add_argument("--case-id", action="append", default=[], help="a static group's first members")
            else:
                p.add_argument("group", help="the group's id or name")
                p.add_argument("--name")
            p.add_argument("--case-type", help="a dynamic group's case type")
            p.add_argument(
                "--where",
                nargs="+",
                action="append",
                default=[],
                metavar="WORD",
                help=f"a condition: PROPERTY OPERATOR [VALUE]; operators: {', '.join(conditions.OPERATORS)}",
            )
            p.add_argument("--contact", action="append", default=[], choices=states, help="a contact state")
            p.add_argument("--description")
        for name, text in (("add", "add cases to a static group"), ("remove", "remove cases from a static group")):
            p = sub.add_parser(name, help=text)
            p.add_argument("group", help="the group's id or name")
            p.add_argument("case_ids", nargs="+", metavar="CASE_ID")
        p = sub.add_parser("import", help="add the cases a CSV lists (a case_id column, or the first column)")
        p.add_argument("group", help="the group's id or name")
        p.add_argument("file", type=Path)
        for p in sub.choices.values():
            p.add_argument("--project", required=True)
            p.add_argument("--json", action="store_true", help="print the API's JSON")

    def handle(self, *args: Any, **o: Any) -> None:
        project = lookup.project(o["project"])
        try:
            with actor.acting_as("cli", f"command line ({getpass.getuser()})"):
                getattr(self, f"_{o['action']}")(project, o)
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e

    # --- output ---------------------------------------------------------------------------------------
    def _json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))

    def _as_json(self, g: Group, count: int) -> dict[str, Any]:
        return {
            "id": g.pk,
            "name": g.name,
            "description": g.description,
            "kind": g.kind,
            "case_type": g.case_type,
            "conditions": list(g.conditions or []),
            "summary": queries.describe(g),
            "member_count": count,
            "created_on": g.created_on,
            "modified_on": g.modified_on,
        }

    def _group(self, project: Project, ref: str) -> Group:
        g = queries.group_by_ref(project, ref)
        if g is None:
            raise InputError(
                errors.GROUP_NOT_FOUND, f"No group {ref!r} in project {project.slug} (see `casemsg groups list`).", 404
            )
        return g

    def _body(self, o: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if o.get("case_type"):
            body["case_type"] = o["case_type"]
        conds = [_condition(w) for w in o["where"]] + [_contact(s) for s in o["contact"]]
        if conds:
            body["conditions"] = conds
        if o.get("description") is not None:
            body["description"] = o["description"]
        return body

    # --- actions --------------------------------------------------------------------------------------
    def _list(self, project: Project, o: dict[str, Any]) -> None:
        rows = list(queries.groups(project))
        counts = queries.member_counts(rows)
        if o["json"]:
            self._json({"count": len(rows), "items": [self._as_json(g, counts[g.pk]) for g in rows]})
            return
        if not rows:
            self.stdout.write("No groups yet. Create one with `casemsg groups create NAME …`.")
        for g in rows:
            self.stdout.write(f"{g.pk:>5}  {g.kind:8} {counts[g.pk]:>8,} cases  {g.name}\n       {queries.describe(g)}")

    def _show(self, project: Project, o: dict[str, Any]) -> None:
        g = self._group(project, o["group"])
        found = queries.preview(g)
        if o["json"]:
            self._json(self._as_json(g, found.count))
            return
        self.stdout.write(f"Group {g.pk} “{g.name}” ({g.kind}): {queries.describe(g)}")
        if g.description:
            self.stdout.write(f"  {g.description}")
        self.stdout.write(f"  {found.count:,} cases now" + (", the first:" if found.sample else "."))
        for c in found.sample:
            self.stdout.write(f"    {c.case_id}  {c.case_type}  {c.name}{'  (closed)' if c.closed else ''}")

    def _members(self, project: Project, o: dict[str, Any]) -> None:
        g = self._group(project, o["group"])
        cases = list(queries.members(g)[: max(1, o["limit"])])
        if o["json"]:
            self._json([{"case_id": c.case_id, "case_type": c.case_type, "name": c.name} for c in cases])
            return
        for c in cases:
            self.stdout.write(f"{c.case_id}\t{c.case_type}\t{c.name}")

    def _create(self, project: Project, o: dict[str, Any]) -> None:
        body = {"name": o["name"], "kind": "static" if o["static"] else "dynamic", **self._body(o)}
        if o["case_id"]:
            body["case_ids"] = o["case_id"]
        g = services.create_group(project, body)
        self._done(g, o, "created")

    def _update(self, project: Project, o: dict[str, Any]) -> None:
        body = self._body(o)
        if o.get("name"):
            body["name"] = o["name"]
        g = services.update_group(self._group(project, o["group"]), body)
        self._done(g, o, "saved")

    def _delete(self, project: Project, o: dict[str, Any]) -> None:
        g = self._group(project, o["group"])
        services.delete_group(g)
        self.stdout.write(f"Group {o['group']} deleted.")

    def _members_result(self, result: services.MembersResult, o: dict[str, Any]) -> None:
        if o["json"]:
            self._json(result.as_dict())
            return
        self.stdout.write(
            f"{result.added:,} added, {result.removed:,} removed, {result.unchanged:,} unchanged, "
            f"{result.not_found:,} case ids not found"
            + (f": {', '.join(result.not_found_ids[:10])}" if result.not_found_ids else "")
        )

    def _add(self, project: Project, o: dict[str, Any]) -> None:
        self._members_result(services.add_members(self._group(project, o["group"]), o["case_ids"]), o)

    def _remove(self, project: Project, o: dict[str, Any]) -> None:
        self._members_result(services.remove_members(self._group(project, o["group"]), o["case_ids"]), o)

    def _import(self, project: Project, o: dict[str, Any]) -> None:
        g = self._group(project, o["group"])
        path: Path = o["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        size = path.stat().st_size
        if size > services.MAX_IMPORT_BYTES:
            raise CommandError(f"{path}: {size:,} bytes; a members file may be at most {services.MAX_IMPORT_BYTES:,}.")
        self._members_result(services.import_members(g, path.read_bytes()), o)

    def _done(self, g: Group, o: dict[str, Any], what: str) -> None:
        count = queries.member_counts([g])[g.pk]
        if o["json"]:
            self._json(self._as_json(g, count))
            return
        self.stdout.write(
            f"Group {g.pk} “{g.name}” {what}: {queries.describe(g)}; {count:,} case{'s' if count != 1 else ''} now."
        )
