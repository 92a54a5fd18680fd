"""Bounded work for case CSV imports (page and CLI): too many rows, too many columns, a row over 1 MB, a file
over 10 MB on the page, and lines that are not UTF-8 — each refused (TOO_MANY_ROWS, FILE_TOO_LARGE) or
reported, quickly and with the process's memory bounded, and nothing written when a file is refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from casemsg.cases import importer
from casemsg.cases.models import Case
from tests.memory import measure

pytestmark = pytest.mark.django_db

MAX_EXTRA_MB = 200
MAX_SECONDS = 15


def page_upload(client, project, content: bytes):
    upload = SimpleUploadedFile("cases.csv", content, content_type="text/csv")
    return client.post(f"/projects/{project.slug}/cases-import/", {"file": upload, "case_type": "mother"})


def refused_on_the_page(client, project, content: bytes, code: str) -> str:
    cost = measure(lambda: page_upload(client, project, content))
    r = cost.result
    print(f"\nimport page ({len(content):,} bytes): {r.status_code} {code} in {cost}")
    page = r.content.decode()
    assert r.status_code == 200 and f"{code}:" in page, page[:2000]
    assert "Nothing has been written yet" not in page  # no preview: the file is refused
    assert cost.extra_mb < MAX_EXTRA_MB and cost.seconds < MAX_SECONDS, cost
    assert Case.objects.count() == 0
    return page


def test_the_page_refuses_more_rows_than_its_limit_while_it_streams(editor, project):
    rows = importer.MAX_UPLOAD_ROWS + 50_000
    content = ("case_id,name\n" + "".join(f"c{i},N\n" for i in range(rows))).encode()
    assert len(content) < 10 * (1 << 20)  # under the page's 10 MB: the rows are the limit here
    page = refused_on_the_page(editor, project, content, "TOO_MANY_ROWS")
    assert "more than 100,000 rows" in page and "casemsg cases import" in page


def test_the_page_refuses_a_row_over_1_mb_and_too_many_columns(editor, project):
    # an unclosed quote makes the rest of the file one value
    content = b'case_id,name\nc1,"' + b"x" * (2 * (1 << 20)) + b"\n"
    assert "longer than 1 MB" in refused_on_the_page(editor, project, content, "TOO_MANY_ROWS")
    header = ",".join(f"p{i}" for i in range(importer.MAX_COLUMNS + 1))
    content = f"case_id,{header}\nc1\n".encode()
    assert "1,000" in refused_on_the_page(editor, project, content, "TOO_MANY_ROWS")


def test_the_page_refuses_a_file_over_10_mb(editor, project):
    content = b"case_id,name\n" + b"c,N\n" * (11 * (1 << 20) // 4)
    refused_on_the_page(editor, project, content, "FILE_TOO_LARGE")


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "cases.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_the_command_refuses_before_writing_anything(project, tmp_path):
    path = write(tmp_path, "case_id,name\n" + "".join(f"c{i},N\n" for i in range(11)))
    with pytest.raises(CommandError, match=r"TOO_MANY_ROWS: cases\.csv has more than 10 rows.*Nothing was imported"):
        call_command(
            "cases",
            "import",
            str(path),
            "--project",
            "alpha",
            "--case-type",
            "p",
            "--max-rows",
            "10",
            stdout=io.StringIO(),
        )
    assert Case.objects.count() == 0  # not the first 10 rows either: the rows are counted first
    out = io.StringIO()
    call_command("cases", "import", str(path), "--project", "alpha", "--case-type", "p", "--max-rows", "11", stdout=out)
    assert Case.objects.count() == 11


def test_the_command_refuses_a_row_over_1_mb(project, tmp_path):
    path = write(tmp_path, b"case_id,name\nc0,N\n" + b"c1," + b"x" * (2 * (1 << 20)) + b"\nc2,N\n")
    with pytest.raises(CommandError, match="TOO_MANY_ROWS: The row on line 3 of cases.csv is longer than 1 MB"):
        call_command("cases", "import", str(path), "--project", "alpha", "--case-type", "p", stdout=io.StringIO())
    assert Case.objects.count() == 0


def test_many_lines_that_are_not_utf8_cost_time_in_proportion(project, tmp_path):
    """Each undecodable line is reported once; looking them up does not grow with the file (it did: every
    row scanned every bad line seen so far)."""
    n = 30_000
    path = write(tmp_path, b"case_id,name\n" + b"".join(b"c%d,\xff\xfe\n" % i for i in range(n)))
    cost = measure(lambda: importer.import_csv(path, project, "p", dry_run=True))
    print(f"\n{n:,} undecodable lines: {cost}")
    assert cost.result.skipped == n and cost.result.created == 0
    assert cost.seconds < MAX_SECONDS and cost.extra_mb < MAX_EXTRA_MB, cost


def test_a_preview_of_a_file_full_of_bad_rows_stays_bounded(editor, project):
    """100,000 rows that are all skipped: the preview lists the first 1,000 problems and counts the rest."""
    rows = importer.MAX_UPLOAD_ROWS - 1
    content = ("case_id,name\n" + "".join(f"c{i},N,extra\n" for i in range(rows))).encode()
    cost = measure(lambda: page_upload(editor, project, content))
    print(f"\nimport page, {rows:,} bad rows: {cost}")
    page = cost.result.content.decode()
    assert cost.result.status_code == 200 and "Nothing has been written yet" in page
    assert page.count("skipped: The row has 3 values") == 20 + 1_000  # the preview's rows, then the list
    assert f"… and {rows - 20 - 1_000} more problems in later rows" in page
    assert cost.extra_mb < MAX_EXTRA_MB and cost.seconds < MAX_SECONDS, cost
