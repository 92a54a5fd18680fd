"""A CommCare HQ case export (Export Case Data) imported as it is: an .xlsx with CommCare's own columns
and 20 property columns, and its CSV; the preview writes nothing; the source's mapping applies."""

from __future__ import annotations

import csv
import io
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from openpyxl import Workbook

from casemsg.cases.models import Case
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.projects import services as projects
from casemsg.sources import exportfile, services
from casemsg.sources.models import SourceRun

pytestmark = pytest.mark.django_db
SYSTEM = ["number", "caseid", "name", "case_type", "closed", "date_modified", "owner_id", "owner_name", "opened_date"]
PROPS = [
    "contact_phone_number",
    "language_code",
    "time_zone",
    "contact_phone_number_is_verified",
    "edd",
    "lmp",
    "risk_level",
    "village",
    "district",
    "parity",
    "gravida",
    "hiv_status",
    "anc_visits",
    "last_visit",
    "next_visit_date",
    "facility",
    "chw_name",
    "household_size",
    "consent_given",
    "notes",
]


def export_rows(n: int) -> list[list[object]]:
    rows: list[list[object]] = [SYSTEM + PROPS]
    for i in range(n):
        props = [
            f"07{11000000 + i:08d}",  # a local Kenyan number, as health workers type it
            "sw",
            "Africa/Nairobi",
            "---",  # CommCare's "no value"
            f"{(i % 28) + 1:02d}/03/2025",
            "2024-06-01",
            "high" if i % 2 else "low",
            f"Village {i}",
            "Kisumu",
            i % 4,
            i % 5 + 1,
            "negative",
            i % 3,
            "2024-12-01",
            "2025-01-15",
            "Kisumu County Hospital",
            "Grace",
            4,
            "yes" if i % 3 else "no",
            "Needs a follow-up visit",
        ]
        system = [i + 1, f"cc-{i:04d}", f"Mother {i}", "mother", "FALSE" if i != 3 else "TRUE", "2024-12-01 10:00:00"]
        rows.append(system + ["chw-1", "Grace", "2024-01-01"] + props)
    return rows


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Cases"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# a CommCare source that is never read here (no network): its mapping is what the file goes through
OFFLINE = {"base_url": "http://127.0.0.1:9", "domain": "d", "username": "u", "api_key": "k"}
MAPPING = [
    {"from": "contact_phone_number", "to": "contact_phone_number", "transform": {"type": "phone", "country": "KE"}},
    {"from": "edd", "to": "edd", "transform": {"type": "date", "format": "%d/%m/%Y"}},
    {"from": "consent_given", "to": "consent_given", "transform": {"type": "map", "values": {"yes": "1", "no": "0"}}},
]


def test_an_xlsx_export_with_20_property_columns_imports_as_it_is(project):
    source = services.add_source(project, "cc", "commcare", OFFLINE)
    services.update_source(source, mapping_rules=MAPPING)
    data = xlsx(export_rows(12))
    preview = exportfile.preview(source, "Cases.xlsx", data)
    assert preview.rows == 12 and preview.counts["created"] == 11 and preview.counts["unchanged"] == 1  # one closed
    assert preview.columns["caseid"] == "case id" and preview.columns["owner_name"] == "ignored"
    assert all(preview.columns[p] == "property" for p in PROPS)
    assert not Case.objects.filter(project=project).exists()  # the preview wrote nothing
    run = exportfile.import_file(source, "Cases.xlsx", data)
    assert (run.kind, run.status, run.created, run.skipped) == (SourceRun.FILE, "succeeded", 11, 0)
    case = Case.objects.get(project=project, case_id="cc-0002")
    assert (case.case_type, case.name, case.owner_id) == ("mother", "Mother 2", "chw-1")
    props = case.properties
    assert props["contact_phone_number"] == "254711000002" and props["edd"] == "2025-03-03"
    assert props["consent_given"] == "1" and props["parity"] == "2" and props["notes"].startswith("Needs")
    assert "contact_phone_number_is_verified" not in props  # "---" is no value
    assert len(props) == 19  # 20 property columns, one of them empty
    assert "owner_name" not in props and "number" not in props
    again = exportfile.import_file(source, "Cases.xlsx", data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 12)


def test_the_csv_export_a_bad_row_and_a_file_that_is_not_an_export(project):
    source = services.add_source(project, "cc", "commcare", OFFLINE)
    services.update_source(source, mapping_rules=MAPPING)
    rows = export_rows(3)
    rows[2][SYSTEM.index("caseid") + 0] = "cc-bad"
    rows[2][len(SYSTEM) + PROPS.index("edd")] = "31/02/2025"
    out = StringIO()
    csv.writer(out).writerows(rows)
    run = exportfile.import_file(source, "Cases.csv", out.getvalue().encode("utf-8-sig"))
    assert (run.created, run.skipped) == (2, 1)
    (entry,) = [e for e in run.log if e.get("record")]
    assert entry["record"] == "cc-bad" and entry["code"] == errors.UNMAPPABLE_VALUE
    with pytest.raises(InputError) as exc:
        exportfile.preview(source, "x.csv", b"name,phone\nA,1\n")
    assert exc.value.code == errors.INVALID_CASE_EXPORT


def test_the_import_page_previews_then_imports_and_the_cli_too(project, tmp_path):
    source = services.add_source(project, "cc", "commcare", OFFLINE)
    user = get_user_model().objects.create_user("ed", "ed@example.org")  # no password: force_login
    projects.add_member(project, user, "editor")
    c = Client()
    c.force_login(user)
    url = f"/projects/{project.slug}/sources/{source.pk}/import/"
    upload = io.BytesIO(xlsx(export_rows(5)))
    upload.name = "Cases.xlsx"
    page = c.post(url, {"file": upload}).content.decode()
    assert 'data-count="created">4<' in page and not Case.objects.filter(project=project).exists()
    r = c.post(url, {"confirm": "1"})
    assert r.status_code == 302 and Case.objects.filter(project=project).count() == 4
    path = tmp_path / "Cases.xlsx"
    path.write_bytes(xlsx(export_rows(6)))
    out = StringIO()
    call_command("sources", "import", "cc", str(path), "--project", project.slug, stdout=out)
    assert "created 1" in out.getvalue() and "unchanged 5" in out.getvalue()
