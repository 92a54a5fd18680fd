"""The cases and mobile-workers pages, through Django's test client: create, edit, fix, close, delete,
search, filters, CSV export and import — every form path, bad input included."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from casemsg.cases import services as cases
from casemsg.cases.models import Case
from casemsg.contacts import queries as contact_queries
from casemsg.contacts.models import OptOut, PhoneEntry
from casemsg.contacts.status import statuses
from casemsg.core import errors
from casemsg.workers import services as workers
from casemsg.workers.models import MobileWorker
from tests.web.conftest import case_url, make_case

KE = "254712345678"
US = "12066171234"
US_DASHES = "1-206-617-1234"


def url(project, path: str = "") -> str:
    return f"/projects/{project.slug}/{path}"


def listed(client: Client, project, query: str = "") -> set[str]:
    """The case ids the cases list shows for this query (its CSV export says the same, see below)."""
    r = client.get(url(project, "cases.csv") + (f"?{query}" if query else ""))
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    return {row["case_id"] for row in rows}


# --- create -----------------------------------------------------------------------------------------
def test_create_a_case_with_a_bad_number_then_apply_the_fix(admin, project, sandbox):
    r = admin.get(url(project, "new-case/"))
    assert r.status_code == 200 and b'name="contact_phone_number"' in r.content
    r = admin.post(
        url(project, "new-case/"),
        {
            "case_type": "mother",
            "name": "Maria",
            "case_id": "maria-1",
            "contact_phone_number": US_DASHES,
            "contact_phone_number_is_verified": "on",
            "other": "edd=2026-05-01\nvillage = Kisumu",
        },
    )
    assert r.status_code == 302 and r["Location"] == case_url(project, "maria-1")
    case = Case.objects.get(project=project, case_id="maria-1")
    assert case.properties == {
        "contact_phone_number": US_DASHES,
        "contact_phone_number_is_verified": "1",
        "edd": "2026-05-01",
        "village": "Kisumu",
    }
    page = admin.get(case_url(project, "maria-1")).content.decode()
    assert "INVALID_PHONE_NUMBER" in page and "Remove the dashes: 12066171234" in page
    assert page.count("Apply the fix: 12066171234") == 1  # one button, though SMS and two-way SMS both show it
    assert "{#" not in page and "{%" not in page  # no template comment leaks into the page

    r = admin.post(case_url(project, "maria-1"), {"action": "fix", "value": US})
    assert r.status_code == 302
    case.refresh_from_db()
    assert case.properties["contact_phone_number"] == US
    st = statuses([case])[0]
    assert st.sms.ok and st.two_way_sms.ok  # the contact status follows the saved property
    assert PhoneEntry.objects.filter(case=case, phone_number=US, verified=True).exists()
    page = admin.get(case_url(project, "maria-1")).content.decode()
    assert "Phone number changed from 1-206-617-1234 to 12066171234" in page
    assert "Apply the fix" not in page


def test_fix_is_recomputed_on_the_server(admin, project, sandbox):
    case = make_case(project, "c1", contact_phone_number=US_DASHES)
    # a stale or forged correction is refused: the number stays as it is
    admin.post(case_url(project, "c1"), {"action": "fix", "value": "15550000000"})
    case.refresh_from_db()
    assert case.properties["contact_phone_number"] == US_DASHES
    r = admin.get(case_url(project, "c1"))
    assert "changed since the page was shown" in r.content.decode()
    # a number with no mechanical fix
    other = make_case(project, "c2", contact_phone_number="(206) 617-1234")
    page = admin.get(case_url(project, "c2")).content.decode()
    assert "INVALID_PHONE_NUMBER" in page and "Apply the fix" not in page
    admin.post(case_url(project, "c2"), {"action": "fix", "value": ""})
    other.refresh_from_db()
    assert other.properties["contact_phone_number"] == "(206) 617-1234"
    assert "no one-click fix" in admin.get(case_url(project, "c2")).content.decode()


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"case_type": "", "name": "x"}, "This field is required"),
        ({"case_type": "mother", "name": "x" * 256}, "at most 255 characters"),
        ({"case_type": "mother", "other": "no equals sign"}, "is not name=value"),
        ({"case_type": "mother", "other": "=value"}, "is not name=value"),
        ({"case_type": "mother", "case_id": "   "}, ""),  # blank case id: a generated one
        ({"case_type": "mother", "other": "bad\x00key=1"}, "Null characters are not allowed"),
        ({"case_type": "mother", "other": "name=" + "n" * 300}, "VALUE_TOO_LONG"),
    ],
)
def test_create_bad_input_gives_form_errors(admin, project, data, field_error):
    before = Case.objects.count()
    r = admin.post(url(project, "new-case/"), data)
    if not field_error:
        assert r.status_code == 302 and Case.objects.count() == before + 1
        return
    assert r.status_code == 200
    assert field_error in r.content.decode()
    assert Case.objects.count() == before


def test_create_refuses_an_existing_case_id(admin, project):
    make_case(project, "dup")
    r = admin.post(url(project, "new-case/"), {"case_type": "mother", "case_id": "dup"})
    assert r.status_code == 200 and errors.CASE_EXISTS in r.content.decode()
    assert Case.objects.filter(case_id="dup").count() == 1


# --- edit properties --------------------------------------------------------------------------------
def test_edit_properties_change_remove_add(admin, project, sandbox):
    case = make_case(project, "e1", contact_phone_number="not a number", village="Kisumu", edd="2026-01-01")
    page = admin.get(case_url(project, "e1")).content.decode()
    assert 'name="new_key"' in page and "Save properties" in page
    props = sorted(case.properties)  # the form lists them sorted: contact_phone_number, edd, village
    r = admin.post(
        case_url(project, "e1"),
        {
            "action": "properties",
            "name": "Asha N",
            "key": props,
            "value": [KE, "2026-01-01", "Kisumu"],
            "remove": ["village"],
            "new_key": "language_code",
            "new_value": "sw",
        },
    )
    assert r.status_code == 302
    case.refresh_from_db()
    assert case.name == "Asha N"
    assert case.properties == {"contact_phone_number": KE, "edd": "2026-01-01", "language_code": "sw"}
    assert statuses([case])[0].sms.ok
    # an emptied value removes the property, too
    admin.post(
        case_url(project, "e1"),
        {"action": "properties", "name": "Asha N", "key": sorted(case.properties), "value": [KE, "", "sw"]},
    )
    case.refresh_from_db()
    assert "edd" not in case.properties


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"new_key": "x"}, "Give a value for the new property"),
        ({"new_value": "1"}, "Give a name for the new property"),
        ({"new_key": "bad\x00", "new_value": "1"}, "INVALID_PROPERTY"),
        ({"new_key": "v", "new_value": "a\x00b"}, "INVALID_PROPERTY"),
        ({"name": "n" * 300}, "VALUE_TOO_LONG"),
        ({"key": ["village", "extra"], "value": ["x"]}, "The form was incomplete"),
    ],
)
def test_edit_properties_bad_input(admin, project, extra, message):
    case = make_case(project, "e2", village="Kisumu")
    data = {"action": "properties", "name": "Asha", "key": ["village"], "value": ["Kisumu"], **extra}
    r = admin.post(case_url(project, "e2"), data)
    assert r.status_code == 200
    assert message in r.content.decode()
    case.refresh_from_db()
    assert case.properties == {"village": "Kisumu"} and case.name == "Asha"


# --- close, reopen, delete -------------------------------------------------------------------------
def test_close_reopen_and_delete_with_a_confirm_step(admin, project, sandbox):
    case = make_case(project, "d1", contact_phone_number=KE)
    admin.post(case_url(project, "d1"), {"action": "close"})
    case.refresh_from_db()
    assert case.closed and case.closed_on is not None
    assert not PhoneEntry.objects.filter(case=case).exists()  # the registry follows
    assert "CONTACT_IS_INACTIVE" in admin.get(case_url(project, "d1")).content.decode()
    admin.post(case_url(project, "d1"), {"action": "reopen"})
    case.refresh_from_db()
    assert not case.closed and PhoneEntry.objects.filter(case=case).exists()

    # delete without the confirmation: only the confirm page
    r = admin.post(case_url(project, "d1"), {"action": "delete"})
    assert r.status_code == 302 and r["Location"].endswith("?confirm=delete")
    assert Case.objects.filter(pk=case.pk).exists()
    r = admin.get(r["Location"])
    assert r.status_code == 200 and "Delete the case" in r.content.decode()
    r = admin.post(case_url(project, "d1"), {"action": "delete", "confirm": "yes"})
    assert r.status_code == 302 and r["Location"] == url(project, "cases/")
    assert not Case.objects.filter(pk=case.pk).exists()
    assert not PhoneEntry.objects.filter(phone_number=KE).exists()
    assert admin.get(case_url(project, "d1")).status_code == 404


def test_an_unknown_form_changes_nothing(admin, project, sandbox):
    case = make_case(project, "u1", contact_phone_number=KE)
    r = admin.post(case_url(project, "u1"), {"action": "explode", "channel": "sms", "text": "Hi"})
    assert r.status_code == 302
    assert "nothing was changed" in admin.get(r["Location"]).content.decode()
    assert not case.messages.exists()
    w = workers.create_worker(project, workers.WorkerChange(username="fw"))
    r = admin.post(url(project, f"mobile-workers/{w.pk}/"), {"action": "explode", "channel": "sms", "text": "Hi"})
    assert r.status_code == 302 and not w.messages.exists()


def test_another_projects_case_cannot_be_changed(admin, project, other_project):
    theirs = make_case(other_project, "theirs", contact_phone_number=US_DASHES)
    assert admin.post(case_url(project, "theirs"), {"action": "fix", "value": US}).status_code == 404
    assert admin.post(case_url(project, "theirs"), {"action": "delete", "confirm": "yes"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.properties["contact_phone_number"] == US_DASHES


# --- roles -------------------------------------------------------------------------------------------
def test_viewer_sees_no_write_forms_and_cannot_post(viewer, project, sandbox):
    make_case(project, "v1", contact_phone_number=US_DASHES)
    page = viewer.get(case_url(project, "v1")).content.decode()
    assert "INVALID_PHONE_NUMBER" in page
    for text in ("Apply the fix", "Save properties", "Delete…", ">Close<", 'id="send-form"'):
        assert text not in page, text
    assert "New case" not in viewer.get(url(project, "cases/")).content.decode()
    for data in ({"action": "fix", "value": US}, {"action": "close"}, {"action": "delete", "confirm": "yes"}):
        assert viewer.post(case_url(project, "v1"), data).status_code == 403
    assert viewer.post(url(project, "new-case/"), {"case_type": "mother"}).status_code == 403
    assert Case.objects.get(case_id="v1").properties["contact_phone_number"] == US_DASHES


def test_editor_can_apply_the_fix(editor, project, sandbox):
    make_case(project, "ed1", contact_phone_number=US_DASHES)
    assert "Apply the fix" in editor.get(case_url(project, "ed1")).content.decode()
    assert editor.post(case_url(project, "ed1"), {"action": "fix", "value": US}).status_code == 302
    assert Case.objects.get(case_id="ed1").properties["contact_phone_number"] == US


# --- search and filters ----------------------------------------------------------------------------
@pytest.fixture
def many(project, sandbox):
    """One case for each contact state the filters know."""
    c = {
        "ok": make_case(project, "ok", "Wanjiru", contact_phone_number=KE, commcare_email_address="w@example.org"),
        "dashes": make_case(project, "dashes", "Dash", contact_phone_number=US_DASHES),
        "none": make_case(project, "none", "Nobody"),
        "us": make_case(project, "us", "Maria", contact_phone_number=US),
        "usv": make_case(
            project, "usv", "Verified", contact_phone_number="12066171235", contact_phone_number_is_verified="1"
        ),
        "stop": make_case(project, "stop", "Stopped", contact_phone_number="254712345679"),
        "ca": make_case(project, "ca", "Canada", contact_phone_number="14162345678"),  # +1, but no consent needed
        "blank": make_case(project, "blank", "Blank", contact_phone_number=" \t+ ", commcare_email_address=" \n"),
        "v-spaced": make_case(
            project, "v-spaced", "Spaced", contact_phone_number="12066171238", contact_phone_number_is_verified=" 1\t"
        ),
        "closed": make_case(project, "closed", "Gone", contact_phone_number="254712345670"),
    }
    cases.set_closed(project, c["closed"], True)
    OptOut.objects.create(phone_number="254712345679", opted_out_on="2026-01-01T00:00:00Z")
    return c


def test_problem_filter_matches_the_contact_status(admin, project, many):
    """For every problem the filter offers, the cases it lists are exactly those whose contact status
    (casemsg.contacts.status, computed one by one) shows that code on a channel."""
    every = list(Case.objects.filter(project=project))
    for c in every:
        c.project = project
    has: dict[str, set[str]] = {code: set() for code in contact_queries.PROBLEMS}
    for c, st in zip(every, statuses(every), strict=True):
        for ch in (st.sms, st.two_way_sms, st.email):
            if ch.error is not None and ch.error.code in has:
                has[ch.error.code].add(c.case_id)
    assert has[errors.NO_CONSENT] == {"us"} and has[errors.PHONE_OPTED_OUT] == {"stop"}  # the fixture's intent
    for code in contact_queries.PROBLEMS:
        assert listed(admin, project, f"problem={code}") == has[code], code
    # with more numbers needing consent than not, the filter sends the others (the shorter list)
    make_case(project, "us2", contact_phone_number="12066171236")
    make_case(project, "us3", contact_phone_number="12066171237")
    assert listed(admin, project, f"problem={errors.NO_CONSENT}") == {"us", "us2", "us3"}
    project.consent_regions = []  # a project where no number needs consent
    project.save(update_fields=["consent_regions"])
    assert listed(admin, project, f"problem={errors.NO_CONSENT}") == set()


def test_consent_filter(admin, project, many):
    assert listed(admin, project, "consent=verified") == {"usv", "v-spaced"}
    assert listed(admin, project, "consent=opted_out") == {"stop"}
    assert listed(admin, project, "consent=not_verified") == {"ok", "dashes", "none", "us", "stop", "ca", "blank"}
    assert listed(admin, project, "consent=not_verified&state=all") == {
        "ok",
        "dashes",
        "none",
        "us",
        "stop",
        "ca",
        "blank",
        "closed",
    }


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("wanj", {"ok"}),  # name
        ("DASH", {"dashes"}),  # case id / name, any letter case
        (KE, {"ok"}),  # phone number
        ("206-617-1234", {"dashes", "us"}),  # the same digits, written either way
        ("+1 206 617 1235", {"usv"}),
        ("nothing-like-this", set()),
    ],
)
def test_search_by_name_id_or_phone(admin, project, many, q, expected):
    assert listed(admin, project, f"q={q.replace('+', '%2B').replace(' ', '+')}") == expected
    page = admin.get(url(project, "cases/"), {"q": q}).content.decode()
    for case_id in expected:
        assert f"<code>{case_id}</code>" in page


def test_bad_filter_values_are_form_errors(admin, project, many):
    r = admin.get(url(project, "cases/"), {"problem": "NOT_A_CODE", "consent": "maybe", "q": "Wanjiru"})
    assert r.status_code == 200
    page = r.content.decode()
    assert "Select a valid choice" in page
    assert "<code>ok</code>" in page and "<code>dashes</code>" not in page  # the valid filter still applies


def test_list_htmx_returns_only_the_results(admin, project, many):
    r = admin.get(url(project, "cases/"), {"q": "Maria"}, HTTP_HX_REQUEST="true")
    page = r.content.decode()
    assert r.status_code == 200 and "<html" not in page and "<code>us</code>" in page
    assert 'class="filters"' not in page


def test_list_queries_do_not_grow_with_rows(admin, project, sandbox, django_assert_max_num_queries):
    for i in range(40):
        make_case(project, f"q{i}", contact_phone_number=f"2547123450{i:02d}")
    with django_assert_max_num_queries(25):
        r = admin.get(url(project, "cases/"))
    assert r.status_code == 200 and r.content.decode().count('class="small"><span class="muted">SMS:') == 40


# --- CSV export --------------------------------------------------------------------------------------
def test_csv_export_of_the_filtered_list(admin, project, many):
    cases.update_case(project, many["ok"], cases.CaseChange(properties={"note": "=HYPERLINK(1)"}))
    r = admin.get(url(project, "cases.csv"), {"problem": "INVALID_PHONE_NUMBER"})
    assert r.status_code == 200 and r.streaming
    assert r["Content-Disposition"] == f'attachment; filename="cases-{project.slug}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [row["case_id"] for row in rows] == ["dashes"]
    assert rows[0]["sms_status"] == "INVALID_PHONE_NUMBER" and rows[0]["sms_fix"] == "Remove the dashes: 12066171234"
    assert rows[0]["contact_phone_number"] == US_DASHES
    r = admin.get(url(project, "cases.csv"), {"q": "Wanjiru"})
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0]["note"] == "'=HYPERLINK(1)"  # no formula reaches a spreadsheet
    assert rows[0]["sms_status"] == "OK" and rows[0]["commcare_email_address"] == "w@example.org"


# --- CSV import ------------------------------------------------------------------------------------
def _upload(content: str, name: str = "cases.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


IMPORT = (
    "case_id,name,contact_phone_number,village\n"
    f"imp-1,Amina,{KE},Kisumu\n"
    f"imp-2,Bad,{US_DASHES},Nakuru\n"
    "imp-1,Again,254700000000,Kisumu\n"  # the same case id twice: skipped
    "imp-3,Too,many,values,here\n"  # skipped
)


def test_import_previews_before_writing_then_imports(admin, project, sandbox):
    make_case(project, "imp-2", "Old name")
    r = admin.post(url(project, "cases-import/"), {"file": _upload(IMPORT), "case_type": "mother"})
    assert r.status_code == 200
    page = r.content.decode()
    assert "Nothing has been written yet" in page
    assert "Kisumu" in page and "Amina" in page  # the rows themselves
    assert "already appeared on line 2" in page  # the problems, per row
    assert "The row has 5 values but the header has 4 columns" in page
    assert "cannot be texted until its contact_phone_number is fixed" in page
    assert "Import 2 cases" in page  # imp-1 created, imp-2 updated
    assert not Case.objects.filter(case_id__in=["imp-1", "imp-3"]).exists()
    assert Case.objects.get(case_id="imp-2").name == "Old name"  # nothing written yet

    token = r.context["token"]
    r = admin.post(url(project, "cases-import/"), {"step": "confirm", "token": token})
    assert r.status_code == 302
    assert Case.objects.get(case_id="imp-1").properties == {"contact_phone_number": KE, "village": "Kisumu"}
    assert Case.objects.get(case_id="imp-2").name == "Bad"
    assert not Case.objects.filter(case_id="imp-3").exists()
    assert "1 created, 1 updated, 2 skipped" in admin.get(r["Location"]).content.decode()
    # the upload is gone: confirming twice imports nothing more
    r = admin.post(url(project, "cases-import/"), {"step": "confirm", "token": token})
    assert r.status_code == 302 and r["Location"] == url(project, "cases-import/")


@pytest.mark.parametrize(
    ("content", "case_type", "message"),
    [
        ("", "mother", "The submitted file is empty"),
        ("\n\n", "mother", "cases.csv is empty: the first line must be a header"),  # the file's own name
        ("a,a\n1,2\n", "mother", "names &#x27;a&#x27; more than once"),
        ("case_id\nx\n", "", "This field is required"),
        ("case_id\nx\n", "t" * 65, "at most 64 characters"),
    ],
)
def test_import_bad_files_are_form_errors(admin, project, content, case_type, message):
    r = admin.post(url(project, "cases-import/"), {"file": _upload(content), "case_type": case_type})
    assert r.status_code == 200
    assert message in r.content.decode()
    assert not Case.objects.exists()


def test_import_confirm_needs_the_uploaders_token(admin, editor, project):
    r = admin.post(url(project, "cases-import/"), {"file": _upload("case_id,name\nz1,Zed\n"), "case_type": "t"})
    token = r.context["token"]
    # another user (another session) cannot confirm it, nor can a made-up token
    assert editor.post(url(project, "cases-import/"), {"step": "confirm", "token": token}).status_code == 302
    assert admin.post(url(project, "cases-import/"), {"step": "confirm", "token": "made-up"}).status_code == 302
    assert not Case.objects.exists()


# --- mobile workers ----------------------------------------------------------------------------------
def test_worker_create_edit_deactivate(admin, project, sandbox):
    r = admin.post(
        url(project, "mobile-workers/new/"),
        {"username": "fw1", "name": "Field Worker", "phone_numbers": f"{KE}\n254722000001", "verified": "on"},
    )
    assert r.status_code == 302
    w = MobileWorker.objects.get(project=project, username="fw1")
    assert w.phone_numbers == [{"number": KE, "verified": True}, {"number": "254722000001", "verified": True}]
    assert PhoneEntry.objects.filter(worker=w).count() == 2
    wurl = url(project, f"mobile-workers/{w.pk}/")
    r = admin.post(wurl, {"action": "edit", "username": "fw1", "name": "Renamed", "phone_numbers": KE})
    assert r.status_code == 302
    w.refresh_from_db()
    assert w.name == "Renamed" and w.phone_numbers == [{"number": KE, "verified": True}]  # kept its verification
    admin.post(wurl, {"action": "deactivate"})
    w.refresh_from_db()
    assert not w.active and not PhoneEntry.objects.filter(worker=w).exists()
    assert "CONTACT_IS_INACTIVE" in admin.get(wurl).content.decode()
    assert "fw1" not in admin.get(url(project, "mobile-workers/")).content.decode()
    assert "fw1" in admin.get(url(project, "mobile-workers/"), {"state": "inactive"}).content.decode()
    admin.post(wurl, {"action": "reactivate"})
    w.refresh_from_db()
    assert w.active and PhoneEntry.objects.filter(worker=w).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "", "name": "x"}, "This field is required"),
        ({"username": "fw2", "phone_numbers": "254-712-345-678"}, "Remove the dashes: 254712345678"),
        ({"username": "fw2", "phone_numbers": "12345"}, "INVALID_PHONE_NUMBER"),
        ({"username": "taken"}, "USERNAME_TAKEN"),
        ({"username": "fw2", "email": "x\x00"}, "Null characters are not allowed"),
        ({"username": "fw2", "time_zone": "t" * 65}, "at most 64 characters"),
    ],
)
def test_worker_bad_input(admin, project, data, message):
    workers.create_worker(project, workers.WorkerChange(username="taken"))
    r = admin.post(url(project, "mobile-workers/new/"), data)
    assert r.status_code == 200 and message in r.content.decode()
    assert MobileWorker.objects.count() == 1
    if data["username"] in ("", "taken"):
        return
    # the same refusal when editing, and nothing changes
    w = MobileWorker.objects.get(username="taken")
    r = admin.post(url(project, f"mobile-workers/{w.pk}/"), {"action": "edit", **data, "username": "fw3"})
    assert r.status_code == 200 and message in r.content.decode()
    w.refresh_from_db()
    assert w.username == "taken" and w.phone_numbers == []


def test_worker_search_by_phone(admin, project):
    workers.create_worker(project, workers.WorkerChange(username="a", phone_numbers=[KE]))
    workers.create_worker(project, workers.WorkerChange(username="b", phone_numbers=["254722000001"]))
    page = admin.get(url(project, "mobile-workers/"), {"q": "+254 712 345 678"}).content.decode()
    assert ">a</a>" in page and ">b</a>" not in page
