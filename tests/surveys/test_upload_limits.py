"""Bounded work for survey uploads: zip bombs, huge and lying .xlsx files, a CSV of 134,796 questions and
oversized bodies are refused through the real API (and the page) with a 413 or 422 and a catalogue code,
quickly and with the web process's memory bounded (tests/memory.py measures the resident set's peak).

The figures each test measured are printed (`pytest -s`); docs/security.md quotes them."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from casemsg.projects.services import add_member
from casemsg.surveys import xlsform
from casemsg.surveys.definition import MAX_QUESTIONS
from casemsg.surveys.models import Survey
from tests.memory import Cost, measure
from tests.surveys.test_sessions import upload
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db

MAX_EXTRA_MB = 200  # the web process's extra memory, whatever the file
MAX_SECONDS = 10  # a refusal comes early (it is milliseconds on a quiet machine; this one is shared)

_SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>type</t></is></c><c r="B1" t="inlineStr"><is><t>name</t></is></c>'
    b'<c r="C1" t="inlineStr"><is><t>label</t></is></c></row>'
)
_SHEET_TAIL = b"</sheetData></worksheet>"


def _row(i: int, kind: str = "text") -> bytes:
    """A survey sheet row, type `kind` (row i+1 when every row before it is written)."""
    cells = [kind, f"q{i}", f"Question {i}"]
    columns = "ABC"
    xml = "".join(
        f'<c r="{col}{i + 2}" t="inlineStr"><is><t>{v}</t></is></c>' for col, v in zip(columns, cells, strict=True) if v
    )
    return f'<row r="{i + 2}">{xml}</row>'.encode()


def _template() -> bytes:
    book = Workbook()
    book.active.title = "survey"  # type: ignore[union-attr]
    book.active.append(["type", "name", "label"])  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_with_sheet(chunks) -> bytes:
    """A real .xlsx (openpyxl's parts) whose survey sheet is the given XML, written chunk by chunk so that
    building a bomb never holds it whole."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_template())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with dst.open(info.filename, "w", force_zip64=True) as fh:
                    for chunk in chunks:
                        fh.write(chunk)
            else:
                dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def zip_bomb(megabytes: int = 80) -> bytes:
    """A few hundred KB that expand to `megabytes` of sheet XML (the same row, over and over)."""
    block = _row(1) * 8192
    n = megabytes * (1 << 20) // len(block)
    return xlsx_with_sheet([_SHEET_HEAD, *(block for _ in range(n)), _SHEET_TAIL])


def lying_directory(data: bytes, member: str, claimed: int) -> bytes:
    """`data` with `member`'s uncompressed size claimed to be `claimed` bytes, in its local header and in the
    central directory (a zip whose directory lies about how far it expands). The zip must not use zip64."""
    out = bytearray(data)
    name = member.encode()
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) != -1:  # central directory entries
        name_len = struct.unpack_from("<H", out, pos + 28)[0]
        if bytes(out[pos + 46 : pos + 46 + name_len]) == name:
            struct.pack_into("<I", out, pos + 24, claimed)
            local = struct.unpack_from("<I", out, pos + 42)[0]
            struct.pack_into("<I", out, local + 22, claimed)
        pos += 4
    return bytes(out)


def refused(api, name: str, content: bytes, status: int, code: str) -> tuple[str, Cost]:
    cost = measure(lambda: upload(api, name, content))
    r = cost.result
    assert (r.status_code, r["Content-Type"].split(";")[0]) == (status, "application/json"), r.content[:300]
    body = r.json()
    assert body["error"]["code"] == code, body
    print(f"\n{name} ({len(content):,} bytes): {status} {code} in {cost}")
    assert cost.seconds < MAX_SECONDS, cost
    assert cost.extra_mb < MAX_EXTRA_MB, cost
    assert Survey.objects.count() == 0
    return body["error"]["message"], cost


def test_a_zip_bomb_xlsx_is_413_before_it_is_unzipped(api):
    bomb = zip_bomb(80)
    assert len(bomb) < 500_000  # small on disk: the 5 MB upload limit alone lets it through
    message, _cost = refused(api, "bomb.xlsx", bomb, 413, "FILE_TOO_LARGE")
    assert "xl/worksheets/sheet1.xml" in message and "10 MB" in message


def test_a_bomb_within_the_part_limit_is_refused_by_its_expansion(api):
    """9 MB of one repeated row: under the 10 MB part limit, but no spreadsheet expands 1,000 times."""
    block = _row(1) * 8192
    bomb = xlsx_with_sheet([_SHEET_HEAD, *(block for _ in range(9 * (1 << 20) // len(block))), _SHEET_TAIL])
    message, _cost = refused(api, "dense.xlsx", bomb, 413, "FILE_TOO_LARGE")
    assert "times" in message


def test_a_zip_whose_directory_lies_about_its_sizes_is_refused(api):
    """The directory claims 2 KB; the sheet really inflates to 60 MB. Nothing reads more than was claimed."""
    block = _row(1) * 8192
    honest = xlsx_with_sheet([_SHEET_HEAD, *(block for _ in range(60 * (1 << 20) // len(block))), _SHEET_TAIL])
    # without zip64: rebuild the sheet member plainly, then make its directory lie
    with zipfile.ZipFile(io.BytesIO(honest)) as src:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
            for info in src.infolist():
                with src.open(info) as fh, dst.open(info.filename, "w") as to:
                    while chunk := fh.read(1 << 20):
                        to.write(chunk)
    liar = lying_directory(out.getvalue(), "xl/worksheets/sheet1.xml", 2048)
    with zipfile.ZipFile(io.BytesIO(liar)) as z:
        assert z.getinfo("xl/worksheets/sheet1.xml").file_size == 2048
    refused(api, "liar.xlsx", liar, 422, "INVALID_SURVEY")


def test_an_xlsx_with_too_many_rows_is_422_while_it_streams(api):
    # rows without a type ask nothing: it is their number that is over the limit, not the questions'
    rows = [_row(i, kind="") for i in range(xlsform.MAX_SHEET_ROWS + 5_000)]
    message, _cost = refused(api, "long.xlsx", xlsx_with_sheet([_SHEET_HEAD, *rows, _SHEET_TAIL]), 422, "TOO_MANY_ROWS")
    assert "survey sheet has more than 10,000 rows" in message


def test_an_xlsx_with_too_many_questions_is_422(api):
    rows = [_row(i) for i in range(MAX_QUESTIONS + 1)]
    message, _cost = refused(
        api, "many.xlsx", xlsx_with_sheet([_SHEET_HEAD, *rows, _SHEET_TAIL]), 422, "TOO_MANY_QUESTIONS"
    )
    assert "more than 2,000 questions" in message


def huge_csv_form(questions: int = 134_796) -> bytes:
    """The reported file: a 4.9 MB CSV XLSForm of 134,796 text questions."""
    lines = ["survey,type,name,label", *(f",text,q{i},Question number {i}" for i in range(questions))]
    return ("\n".join(lines) + "\n").encode()


def test_a_csv_of_134796_questions_is_422_not_850_mb(api):
    content = huge_csv_form()
    assert 4_500_000 < len(content) < 5 * (1 << 20)  # under the 5 MB file limit
    message, _cost = refused(api, "huge.csv", content, 422, "TOO_MANY_QUESTIONS")
    assert "more than 2,000 questions" in message


def test_a_csv_with_too_many_cells_is_422(api):
    # 201 named columns: more than a sheet may have
    header = ",".join(f"c{i}" for i in range(xlsform.MAX_COLUMNS + 1))
    content = f"survey,type,name,label,{header}\n,text,q,Q\n".encode()
    message, _cost = refused(api, "wide.csv", content, 422, "TOO_MANY_ROWS")
    assert "200 columns" in message
    # filled cells: 9,000 choices (under the rows limit) of 6 filled cells each
    lines = ["survey,type,name,label", ",select_one l,q,Q", "choices,list_name,name,label,a,b,c"]
    lines += [f",l,c{i},C{i},a,b,c" for i in range(9_000)]
    message, _cost = refused(api, "cells.csv", ("\n".join(lines) + "\n").encode(), 422, "TOO_MANY_ROWS")
    assert "filled cells" in message


def test_an_upload_over_the_file_limit_is_413(api):
    content = b"survey,type,name,label\n" + b",text,q,Q" + b" " * (5 * (1 << 20))
    message, _cost = refused(api, "big.csv", content, 413, "FILE_TOO_LARGE")
    assert "5 MB" in message


def test_a_huge_body_is_413_at_the_door_before_it_is_read(api):
    """A 12 MB upload is over the API's multipart limit (10 MB): refused from its Content-Length, in JSON."""
    content = b"x" * (12 * (1 << 20))
    message, _cost = refused(api, "huge.xlsx", content, 413, "REQUEST_TOO_LARGE")
    assert "10 MB" in message


def test_choices_shared_by_many_questions_are_bounded(api):
    """1,000 questions sharing one list of 1,000 choices: a tiny file whose survey would hold a million
    choices (each question keeps its own copy) — refused while it is built."""
    lines = ["survey,type,name,label", *(f",select_one l,q{i},Q{i}" for i in range(1000))]
    lines += ["choices,list_name,name,label", *(f",l,c{i},C{i}" for i in range(1000))]
    message, _cost = refused(api, "shared.csv", ("\n".join(lines) + "\n").encode(), 422, "TOO_MANY_QUESTIONS")
    assert "20,000 choices" in message


def test_a_json_survey_with_too_many_questions_is_422(api):
    questions = [{"name": f"q{i}", "type": "text", "label": {"en": "Q"}} for i in range(MAX_QUESTIONS + 1)]
    body = {"format": "casemsg-survey/1", "name": "x", "default_language": "en", "languages": ["en"]}
    r = api.post("surveys", {**body, "questions": questions})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "TOO_MANY_QUESTIONS"), r.content[:300]
    assert "2,001 questions" in r.json()["error"]["message"]


@pytest.mark.slow
def test_a_form_at_the_limits_is_imported_within_the_bound(api):
    """The largest form the limits let through (10 languages, ~49,000 filled cells) is imported, and the
    process's memory stays within the bound: the limits are set by what pyxform costs."""
    codes = ["en", "sw", "fr", "es", "pt", "ar", "hi", "bn", "am", "ha"]
    labels = [f"label::Lang{i} ({c})" for i, c in enumerate(codes)]
    book = Workbook(write_only=True)
    survey = book.create_sheet("survey")
    survey.append(["type", "name", *labels])
    for q in range(200):
        survey.append([f"select_one l{q}", f"q{q}", *[f"Q{q} {c} " + "x" * 30 for c in codes]])
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", *labels])
    for k in range(3800):
        choices.append([f"l{k % 200}", f"c{k}", *[f"C{k} {c} " + "y" * 30 for c in codes]])
    out = io.BytesIO()
    book.save(out)
    cost = measure(lambda: upload(api, "limits.xlsx", out.getvalue()))
    print(f"\nlimits.xlsx ({len(out.getvalue()):,} bytes): {cost.result.status_code} in {cost}")
    assert cost.result.status_code == 201, cost.result.content[:300]
    assert cost.extra_mb < MAX_EXTRA_MB, cost


# --- bodies the API cannot read are JSON errors too -------------------------------------------------
def test_a_5_mb_json_body_is_413_json(api):
    body = json.dumps({"case_type": "p", "name": "x" * (5 * (1 << 20))})
    r = api.client.post(api.url("cases"), body, content_type="application/json", **api._h(None))
    assert (r.status_code, r["Content-Type"].split(";")[0]) == (413, "application/json"), r.content[:200]
    assert r.json()["error"]["code"] == "REQUEST_TOO_LARGE" and "2.5 MB" in r.json()["error"]["message"]


def test_a_multipart_body_without_a_boundary_is_400_json(api):
    r = api.client.generic(
        "POST", api.url("surveys/import"), b"--x\r\n", content_type="multipart/form-data", **api._h(None)
    )
    assert (r.status_code, r["Content-Type"].split(";")[0]) == (400, "application/json"), r.content[:200]
    assert r.json()["error"]["code"] == "HTTP_ERROR" and "boundary" in r.json()["error"]["message"]
    # a boundary Django cannot use: its parser's error, raised inside the view, is JSON too
    r = api.client.generic(
        "POST",
        api.url("surveys/import"),
        b"--x\r\n",
        content_type='multipart/form-data; boundary="a\x01b"',
        **api._h(None),
    )
    assert (r.status_code, r["Content-Type"].split(";")[0]) == (400, "application/json"), r.content[:200]
    assert r.json()["error"]["code"] == "HTTP_ERROR" and "Invalid boundary" in r.json()["error"]["message"]


def test_a_provider_webhook_body_over_the_limit_is_413_json(api):
    """The webhooks' fast path reads bodies before any view: the door is in front of it."""
    r = api.client.post(
        "/api/v1/gateways/any/key/inbound", b"x" * (3 * (1 << 20)), content_type="application/x-www-form-urlencoded"
    )
    assert (r.status_code, r.json()["error"]["code"]) == (413, "REQUEST_TOO_LARGE")


# --- the page ----------------------------------------------------------------------------------------
def test_the_survey_page_shows_the_limits_as_form_errors(project):
    user = get_user_model().objects.create_user("editor", password="pw-editor-1")
    add_member(project, user, "editor")
    client = logged_in(user)
    url = f"/projects/{project.slug}/surveys/"
    for name, content, code in [
        ("bomb.xlsx", zip_bomb(80), "FILE_TOO_LARGE"),
        ("huge.csv", huge_csv_form(), "TOO_MANY_QUESTIONS"),
    ]:
        cost = measure(lambda n=name, c=content: client.post(url, {"file": SimpleUploadedFile(n, c)}))
        r = cost.result
        print(f"\npage {name}: {r.status_code} in {cost}")
        assert r.status_code == 422 and f"{code}:" in r.content.decode(), r.content[:500]
        assert cost.extra_mb < MAX_EXTRA_MB and cost.seconds < MAX_SECONDS, cost
    assert Survey.objects.count() == 0


# --- the command line ---------------------------------------------------------------------------------
def test_the_command_refuses_a_bomb_and_a_file_over_the_limit(project, tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(zip_bomb(80))
    with pytest.raises(CommandError, match=r"FILE_TOO_LARGE: The XLSForm: its part xl/worksheets/sheet1.xml"):
        call_command("surveys", "import", str(bomb), "--project", project.slug, stdout=io.StringIO())
    big = tmp_path / "big.json"
    with big.open("wb") as fh:  # its size is refused before it is read
        fh.truncate(50 * (1 << 20))
    cost = measure(
        lambda: pytest.raises(CommandError, call_command, "surveys", "import", str(big), "--project", project.slug)
    )
    assert "FILE_TOO_LARGE: big.json is 50 MB; the limit is 5 MB." in str(cost.result.value)
    assert cost.extra_mb < 20, cost
    assert Survey.objects.count() == 0
