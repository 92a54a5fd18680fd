"""The README's commands that use examples/ run as written against a fresh database: the demo project, then
`casemsg cases import examples/cases.csv …` and `casemsg surveys import examples/form.xlsx …`; the form then
runs by SMS and saves its answers to the case. The import pages offer the same files as templates."""

from __future__ import annotations

import datetime as dt
import io
import re
import shlex
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from casemsg.cases.models import Case
from casemsg.surveys.models import Survey
from tests.conftest import Api
from tests.surveys.forms import converse, start

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.django_db


def readme_commands() -> list[list[str]]:
    """The README's `casemsg` command lines that name a file under examples/, as argument lists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(".venv/bin/casemsg ") and "examples/" in line:
                out.append(shlex.split(line)[1:])
    return out


def test_the_readme_names_the_shipped_files() -> None:
    named = {a for cmd in readme_commands() for a in cmd if a.startswith("examples/")}
    assert named == {"examples/cases.csv", "examples/form.xlsx"}
    assert all((ROOT / n).is_file() for n in named)


def test_the_readme_commands_import_them(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    demo = io.StringIO()
    with override_settings(DATA_DIR=tmp_path):
        call_command("demo", stdout=demo)
    key = (tmp_path / "demo-api-key").read_text().strip()
    for cmd in readme_commands():
        out, err = io.StringIO(), io.StringIO()
        call_command(*cmd, stdout=out, stderr=err)
        if cmd[:2] == ["cases", "import"]:
            assert "Imported 5 new cases, updated 0, skipped 0 bad rows" in out.getvalue()
            assert "contact problem" not in out.getvalue()
            # the demo project is in Nairobi: its local numbers are stored with Kenya's code, and said so
            assert "0712 345 678 → +254 712 345678 (Kenya, the project's default country)" in err.getvalue()
        else:
            assert "Created survey" in out.getvalue() and "keyword ANC" in out.getvalue()
    cases = {c.case_id: c for c in Case.objects.filter(project__slug="demo", case_id__startswith="anc-")}
    assert sorted(cases) == [f"anc-00{i}" for i in range(1, 6)]
    assert {c.case_type for c in cases.values()} == {"mother"}
    amina = cases["anc-001"]
    assert amina.name == "Amina Wanjiru"
    assert amina.properties["contact_phone_number"] == "254712345678"
    assert cases["anc-004"].properties["contact_phone_number"] == "254745678901"
    assert amina.properties["edd"] == "2027-03-14" and amina.properties["language_code"] == "sw"

    # the form runs by SMS, in the case's language, and saves its answers to the case
    survey = Survey.objects.get(project__slug="demo", name="ANC follow-up")
    api = Api(key, "demo")
    english = cases["anc-003"]
    first = start(api, survey.pk, english)
    assert "antenatal follow-up" in first and "Did you attend the clinic this month?" in first
    visit = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    talk = converse(api, "254734567890", ["1", visit, "3", "5"])
    assert "Thank you" in talk[-1][1]
    english.refresh_from_db()
    props = english.properties
    assert (props["anc_visited"], props["last_visit_date"], props["anc_visit_count"], props["danger_signs"]) == (
        "yes",
        visit,
        "3",
        "none",
    )
    swahili = start(api, survey.pk, amina)
    assert "Ulihudhuria kliniki mwezi huu?" in swahili


def test_the_import_pages_offer_them_as_templates(project, admin) -> None:
    page = admin.get(f"/projects/{project.slug}/cases-import/").content.decode()
    assert f'href="/projects/{project.slug}/cases-import/cases.csv"' in page and "Download a template" in page
    r = admin.get(f"/projects/{project.slug}/cases-import/cases.csv")
    assert r.status_code == 200 and r["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="cases.csv"' in r["Content-Disposition"]
    assert b"".join(r.streaming_content) == (EXAMPLES / "cases.csv").read_bytes()

    page = admin.get(f"/projects/{project.slug}/surveys/").content.decode()
    assert f'href="/projects/{project.slug}/surveys/form.xlsx"' in page and "Download a template" in page
    r = admin.get(f"/projects/{project.slug}/surveys/form.xlsx")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert b"".join(r.streaming_content) == (EXAMPLES / "form.xlsx").read_bytes()
    # a project page: another project's slug is a 404
    assert admin.get("/projects/no-such/surveys/form.xlsx").status_code == 404
