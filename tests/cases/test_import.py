"""`casemsg cases import FILE.csv --project P --case-type T`: good rows imported, bad rows reported by line
and skipped, contact problems never reject a case, whole-batch failures retried row by row."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from casemsg.cases import importer
from casemsg.cases.models import Case
from casemsg.contacts.models import PhoneEntry
from casemsg.contacts.status import status

ROOT = Path(__file__).resolve().parents[2]
INDIA = "919812345678"
KENYA = "254712345678"


def write(tmp_path: Path, text: str | bytes, name: str = "cases.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def run(path: Path, project: str = "alpha", case_type: str = "patient", *extra: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "cases", "import", str(path), "--project", project, "--case-type", case_type, *extra, stdout=out, stderr=err
    )
    return out.getvalue(), err.getvalue()


def run_json(path: Path, project: str = "alpha", case_type: str = "patient") -> dict:
    out, err = run(path, project, case_type, "--json")
    assert err == ""  # with --json everything is in the document
    return json.loads(out)


def errors_by_line(summary: dict) -> dict[int, str]:
    return {e["line"]: e["message"] for e in summary["errors"]}


def case(project, case_id: str) -> Case:
    return Case.objects.get(project=project, case_id=case_id)


# --- good rows ------------------------------------------------------------------------------------


def test_fields_and_properties_are_mapped(project, tmp_path):
    path = write(
        tmp_path,
        "case_id,name,external_id,owner_id,parent_id,contact_phone_number,district,language_code\n"
        f"c1,Asha,EXT-1,chw-7,hh-1,{INDIA},north,sw\n"
        "c2,Bo,,,,,,\n",
    )
    out, err = run(path)
    assert err == ""
    assert "Imported 2 new cases, updated 0, skipped 0 bad rows" in out

    c1 = case(project, "c1")
    assert (c1.case_type, c1.name, c1.external_id, c1.owner_id, c1.parent_id) == (
        "patient",
        "Asha",
        "EXT-1",
        "chw-7",
        "hh-1",
    )
    assert c1.properties == {"contact_phone_number": INDIA, "district": "north", "language_code": "sw"}
    # empty cells set nothing: no empty-string properties, fields left at their defaults
    c2 = case(project, "c2")
    assert c2.properties == {}
    assert (c2.name, c2.external_id) == ("Bo", "")
    # through the one write path: the registry is in sync
    assert PhoneEntry.objects.filter(case=c1, phone_number=INDIA).exists()


def test_existing_cases_are_updated_and_empty_cells_keep_values(project, tmp_path):
    run(write(tmp_path, f"case_id,name,contact_phone_number,district\nc1,Asha,{INDIA},north\n"))
    path = write(tmp_path, f"case_id,name,contact_phone_number,district\nc1,,{KENYA},\nc9,New,,south\n", "b.csv")
    summary = run_json(path)
    assert (summary["imported"], summary["updated"], summary["skipped"]) == (1, 1, 0)
    c1 = case(project, "c1")
    assert c1.name == "Asha"  # empty name cell: unchanged
    assert c1.properties == {"contact_phone_number": KENYA, "district": "north"}
    # the registry followed the number change
    assert list(PhoneEntry.objects.filter(case=c1).values_list("phone_number", flat=True)) == [KENYA]


def test_rows_without_case_id_get_a_new_one(project, tmp_path):
    summary = run_json(write(tmp_path, "name,district\nAsha,north\nBo,south\n"))
    assert summary["imported"] == 2
    ids = list(Case.objects.filter(project=project).values_list("case_id", flat=True))
    assert len(set(ids)) == 2 and all(ids)


def test_blank_lines_and_empty_rows_are_not_cases(project, tmp_path):
    summary = run_json(write(tmp_path, "\ncase_id,name\n\nc1,Asha\n,\n  ,  \nc2,Bo\n"))
    assert (summary["rows"], summary["imported"], summary["skipped"]) == (2, 2, 0)


def test_byte_order_mark_and_crlf(project, tmp_path):
    summary = run_json(write(tmp_path, "\ufeffcase_id,name\r\nc1,Asha\r\n".encode()))
    assert summary["imported"] == 1
    assert case(project, "c1").name == "Asha"


def test_verified_numbers_get_one_two_way_owner(project, other_project, tmp_path):
    text = f"case_id,contact_phone_number,contact_phone_number_is_verified\na,{INDIA},1\nb,{INDIA},1\nc,{INDIA},0\n"
    run(write(tmp_path, text))
    run(write(tmp_path, text), project="beta")
    owners = PhoneEntry.objects.filter(phone_number=INDIA, two_way=True)
    assert owners.count() == 1
    assert owners.get().case == case(project, "a")  # the first verified registrant


def test_many_rows_go_in_batches(project, tmp_path):
    n = importer.BATCH_SIZE * 2 + 345
    lines = ["case_id,contact_phone_number"] + [f"c{i},2547{i:08d}" for i in range(n)]
    calls: list[tuple[int, int, int]] = []
    result = importer.import_csv(
        write(tmp_path, "\n".join(lines) + "\n"), project, "patient", on_progress=lambda *a: calls.append(a)
    )
    assert (result.created, result.skipped) == (n, 0)
    assert Case.objects.filter(project=project).count() == n
    assert PhoneEntry.objects.filter(project=project).count() == n
    # one progress report per full batch and one at the end, in bytes of the file
    assert len(calls) == 3
    size = (tmp_path / "cases.csv").stat().st_size
    assert calls[-1] == (size, size, n)


# --- contact problems are not bad rows -----------------------------------------------------------


def test_invalid_phone_number_imports_the_case_and_status_shows_it(project, tmp_path):
    path = write(tmp_path, f"case_id,name,contact_phone_number\nc1,Asha,1-206-617-1234\nc2,Bo,{INDIA}\n")
    out, err = run(path)
    assert "Imported 2 new cases, updated 0, skipped 0 bad rows" in out
    assert "1 imported case has a contact problem" in out
    assert "line 2 (imported):" in err and "INVALID_PHONE_NUMBER" in err and "12066171234" in err

    c1 = case(project, "c1")
    assert c1.properties["contact_phone_number"] == "1-206-617-1234"  # nothing lost
    st = status(c1).as_dict()
    assert st["sms"]["ok"] is False
    assert st["sms"]["error"]["code"] == "INVALID_PHONE_NUMBER"
    assert not PhoneEntry.objects.filter(case=c1).exists()


def test_contact_warnings_in_json(project, tmp_path):
    summary = run_json(write(tmp_path, "case_id,contact_phone_number\nc1,9109812345678\n"))
    assert summary["imported"] == 1 and summary["skipped"] == 0
    [w] = summary["warnings"]
    assert w["line"] == 2 and "919812345678" in w["message"]  # the fix names the corrected number


# --- bad rows: reported by line, skipped, the rest imported ---------------------------------------


def test_bad_rows_are_reported_by_line_and_skipped(project, tmp_path):
    long_id = "x" * 65
    path = write(
        tmp_path,
        "case_id,name,district\n"  # line 1
        "c1,Asha,north\n"  # 2 ok
        "c2,Bo\n"  # 3 too few values
        "c3,Cy,south,extra\n"  # 4 too many values
        f"{long_id},Dee,east\n"  # 5 case_id too long
        "c1,Again,west\n"  # 6 duplicate case_id in the file
        f"c6,{'n' * 256},west\n"  # 7 name too long
        "c7,Eve,ok\n",  # 8 ok
    )
    out, err = run(path)
    assert "Imported 2 new cases, updated 0, skipped 5 bad rows" in out
    for line in (3, 4, 5, 6, 7):
        assert f"line {line}: " in err
    assert "line 3: The row has 2 values but the header has 3 columns." in err
    assert "double quotes" in err.split("line 4: ")[1].splitlines()[0]
    assert "case_id is longer than 64 characters" in err
    assert "line 6: The case_id 'c1' already appeared on line 2" in err
    assert "name is longer than 255 characters" in err
    assert set(Case.objects.filter(project=project).values_list("case_id", flat=True)) == {"c1", "c7"}
    assert case(project, "c1").name == "Asha"  # the duplicate did not overwrite the first row


def test_bad_rows_in_json(project, tmp_path):
    summary = run_json(write(tmp_path, "case_id,name\nc1,Asha\nc1,Bo\nc2\n"))
    assert (summary["rows"], summary["imported"], summary["updated"], summary["skipped"]) == (3, 1, 0, 2)
    errors = errors_by_line(summary)
    assert set(errors) == {3, 4}
    assert all(m.endswith(".") and " " in m for m in errors.values())  # sentences


def test_unclosed_quote_is_reported_where_it_starts(project, tmp_path):
    summary = run_json(write(tmp_path, 'case_id,name,district\nc1,"Asha,north\nc2,Bo,south\nc3,Cy,east\n'))
    assert summary["imported"] == 0
    msg = errors_by_line(summary)[2]
    assert "from line 2 to line 4" in msg and "double quote" in msg


def test_quoted_values_with_commas_and_newlines_are_fine(project, tmp_path):
    summary = run_json(write(tmp_path, 'case_id,name,address\nc1,"Asha, B.","line one\nline two"\nc2,Bo,x\n'))
    assert (summary["imported"], summary["skipped"]) == (2, 0)
    assert case(project, "c1").properties["address"] == "line one\nline two"
    assert case(project, "c1").name == "Asha, B."


def test_unnamed_or_invalid_columns_only_spoil_rows_that_use_them(project, tmp_path):
    long_name = "p" * 300
    summary = run_json(write(tmp_path, f"case_id,,{long_name},district\nc1,,,north\nc2,x,,south\nc3,,y,east\n"))
    assert summary["imported"] == 1
    errors = errors_by_line(summary)
    assert "column 2 has no name" in errors[3]
    assert "column 3 cannot be stored as a property" in errors[4]
    assert case(project, "c1").properties == {"district": "north"}


def test_value_of_the_wrong_encoding_spoils_only_its_line(project, tmp_path):
    data = b"case_id,name\nc1,Asha\n" + "c2,Zoë\n".encode("latin-1") + b"c3,Cy\n"
    summary = run_json(write(tmp_path, data))
    assert summary["imported"] == 2
    assert "Line 3 is not UTF-8 text" in errors_by_line(summary)[3]
    # and --encoding reads such a file
    out, _err = run(
        write(tmp_path, "case_id,name\nc9,Zoë\n".encode("latin-1"), "l1.csv"),
        "alpha",
        "patient",
        "--encoding",
        "latin-1",
    )
    assert "Imported 1 new case" in out
    assert case(project, "c9").name == "Zoë"


def test_nul_characters_and_huge_values_are_bad_rows(project, tmp_path):
    huge = "h" * (importer._CELL_LIMIT + 1)
    summary = run_json(write(tmp_path, f"case_id,note\nc1,a\x00b\nc2,{huge}\nc3,fine\n"))
    assert summary["imported"] == 1
    errors = errors_by_line(summary)
    assert "NUL" in errors[2]
    assert "longer than" in errors[3]
    assert case(project, "c3").properties == {"note": "fine"}


def test_existing_case_of_another_type_is_a_bad_row(project, tmp_path):
    run(write(tmp_path, "case_id,name\nh1,Home\n"), case_type="household")
    summary = run_json(write(tmp_path, "case_id,name\nh1,Asha\nc2,Bo\n", "b.csv"))
    assert (summary["imported"], summary["updated"], summary["skipped"]) == (1, 0, 1)
    assert "case type 'household'" in errors_by_line(summary)[2]
    assert case(project, "h1").name == "Home"


def test_header_case_mistakes_get_a_note(project, tmp_path):
    out, err = run(write(tmp_path, f"case_id,Contact_Phone_Number,case_type\nc1,{INDIA},x\n"))
    assert "note: Column 'Contact_Phone_Number'" in err
    assert "note: Column 'case_type' is stored as a property" in err
    assert "Imported 1 new case" in out
    c1 = case(project, "c1")
    assert c1.case_type == "patient" and c1.properties == {"Contact_Phone_Number": INDIA, "case_type": "x"}


# --- a batch that fails as a whole: retried row by row --------------------------------------------


def _refuse_name(name: str) -> None:
    """A database trigger that refuses cases with this name: a failure only the database sees, the
    kind that fails a whole batch transaction."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "CREATE FUNCTION refuse_case() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.name = '{name}' THEN RAISE EXCEPTION 'cases named {name} are refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cur.execute(
                "CREATE TRIGGER refuse_case BEFORE INSERT OR UPDATE ON cases_case "
                "FOR EACH ROW EXECUTE FUNCTION refuse_case()"
            )
        else:
            cur.execute(
                "CREATE TRIGGER refuse_case BEFORE INSERT ON cases_case "
                f"WHEN NEW.name = '{name}' BEGIN SELECT RAISE(ABORT, 'cases named {name} are refused'); END"
            )


def test_failed_batch_falls_back_to_single_rows(project, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_SIZE", 4)
    _refuse_name("Boom")
    rows = [f"c{i},{'Boom' if i in (2, 9) else f'Case {i}'},2547{i:08d}" for i in range(10)]
    summary = run_json(write(tmp_path, "case_id,name,contact_phone_number\n" + "\n".join(rows) + "\n"))
    assert (summary["imported"], summary["skipped"]) == (8, 2)
    errors = errors_by_line(summary)
    assert set(errors) == {4, 11}  # c2 and c9 (line = index + 2)
    assert all("The database refused this row" in m and "refused" in m for m in errors.values())
    names = set(Case.objects.filter(project=project).values_list("case_id", flat=True))
    assert names == {f"c{i}" for i in range(10)} - {"c2", "c9"}
    # the rows of the failed batches were still synced into the registry
    assert PhoneEntry.objects.filter(project=project).count() == 8


# --- the file or the project cannot be used: a clear message, exit status 1 -----------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("case_id,name,name\nc1,a,b\n", "names 'name' more than once"),
        (b"case_id,name\n" + b"\xff\xfe,x\n", None),  # a bad value row, not a bad file
    ],
)
def test_unusable_files(project, tmp_path, content, message):
    path = tmp_path / "missing.csv" if content is None else write(tmp_path, content)
    if message is None:
        summary = run_json(path)
        assert summary["skipped"] == 1
        return
    with pytest.raises(CommandError, match=message):
        run(path)


def test_header_that_is_not_utf8(project, tmp_path):
    with pytest.raises(CommandError, match="not UTF-8|not utf-8"):
        run(write(tmp_path, "case_id,nom_é\n".encode("latin-1")))


def test_directory_unknown_project_and_blank_case_type(project, tmp_path):
    with pytest.raises(CommandError, match="is a directory"):
        run(tmp_path)
    path = write(tmp_path, "case_id\nc1\n")
    with pytest.raises(CommandError, match="No project 'nope'"):
        run(path, project="nope")
    with pytest.raises(CommandError, match="case type"):
        run(path, case_type=" ")
    with pytest.raises(CommandError, match="case type"):
        run(path, case_type="t" * 65)
    with pytest.raises(CommandError, match="Unknown encoding"):
        run(path, "alpha", "patient", "--encoding", "klingon")
    assert not Case.objects.exists()


# --- the real command line ---------------------------------------------------------------------


@pytest.mark.skipif(settings.IS_POSTGRES, reason="runs the CLI on its own SQLite data dir")
def test_command_line(tmp_path, migrated_data_dir):
    env = {**os.environ, "CASEMSG_DATA_DIR": str(migrated_data_dir(tmp_path / "data"))}
    env.pop("CASEMSG_DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def casemsg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "casemsg", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert casemsg("project", "create", "demo").returncode == 0
    path = write(tmp_path, f"case_id,name,contact_phone_number\nc1,Asha,{INDIA}\nc1,Bo,\nc3,Cy\n")

    r = casemsg("cases", "import", str(path), "--project", "demo", "--case-type", "patient")
    assert r.returncode == 0, r.stderr
    assert "Imported 1 new case, updated 0, skipped 2 bad rows" in r.stdout
    assert "line 3: " in r.stderr and "line 4: " in r.stderr
    assert "Traceback" not in r.stderr

    r = casemsg("cases", "import", str(path), "--project", "demo", "--case-type", "patient", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["imported"], summary["updated"], summary["skipped"]) == (0, 1, 2)

    for args, text in (
        ([str(tmp_path / "nope.csv"), "--project", "demo"], "no such file"),
        ([str(path), "--project", "nope"], "No project 'nope'"),
    ):
        r = casemsg("cases", "import", *args, "--case-type", "patient")
        assert r.returncode != 0
        assert text in r.stderr
        assert "Traceback" not in r.stderr
