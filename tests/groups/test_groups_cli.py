"""`casemsg groups`: create static and dynamic groups, list and show them, add, remove and import members,
refusals in the catalogue's words."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from casemsg.cases.services import CaseChange, bulk_upsert
from casemsg.groups.models import Group


def run(*args: str) -> str:
    out = StringIO()
    call_command("groups", *args, stdout=out)
    return out.getvalue()


def test_groups_cli(project, tmp_path: Path):
    bulk_upsert(
        project,
        [
            CaseChange(case_id=f"c{i}", case_type="mother", properties={"district": d, "edd": "2030-01-0" + str(i + 1)})
            for i, d in enumerate(["North", "South", "North"])
        ],
    )
    out = run(
        "create", "North", "--project", project.slug, "--case-type", "mother", "--where", "district", "equals", "North"
    )
    assert "open mother cases where district is North; 2 cases now" in out
    out = run(
        "create",
        "Two",
        "--project",
        project.slug,
        "--case-type",
        "mother",
        "--where",
        "district",
        "in",
        "North,South",
        "--where",
        "edd",
        "on_or_before",
        "2030-01-02",
        "--contact",
        "not_opted_out",
        "--json",
    )
    body = json.loads(out)
    assert body["member_count"] == 2 and body["conditions"][0] == {
        "property": "district",
        "operator": "in",
        "value": ["North", "South"],
    }
    run("create", "Pilot", "--static", "--project", project.slug, "--case-id", "c1")
    csv = tmp_path / "members.csv"
    csv.write_text("case_id,name\nc0,x\nghost,y\n")
    assert "1 added, 0 removed, 0 unchanged, 1 case ids not found: ghost" in run(
        "import", "Pilot", str(csv), "--project", project.slug
    )
    assert "1 removed" in run("remove", "Pilot", "c1", "--project", project.slug)
    listed = run("list", "--project", project.slug)
    assert "North" in listed and "Pilot" in listed and "dynamic" in listed
    shown = run("show", "Pilot", "--project", project.slug)
    assert "1 cases now" in shown or "1 case" in shown and "c0" in shown
    assert run("members", "North", "--project", project.slug).split("\n")[0].startswith("c0\tmother")
    with pytest.raises(CommandError, match="GROUP_IS_DYNAMIC"):
        run("add", "North", "c1", "--project", project.slug)
    with pytest.raises(CommandError, match="INVALID_CONDITION"):
        run(
            "create",
            "Bad",
            "--project",
            project.slug,
            "--case-type",
            "mother",
            "--where",
            "edd",
            "within_next_days",
            "soon",
        )
    with pytest.raises(CommandError, match="GROUP_NOT_FOUND"):
        run("show", "nope", "--project", project.slug)
    assert "deleted" in run("delete", "Two", "--project", project.slug)
    assert not Group.objects.filter(name="Two").exists()
