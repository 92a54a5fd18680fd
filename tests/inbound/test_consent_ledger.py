"""The consent ledger: every request, consent, refusal, expiry, opt-out and opt-in with number, contact,
project, source, the exact text shown, the answer and the time — through `GET …/consents` and
`casemsg consents export --project P` (CSV)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from casemsg.consent import services as consent
from casemsg.consent import texts
from casemsg.consent.models import ConsentRequest
from tests.inbound.conftest import KE, QUESTION, US, US2, sms_in, work

pytestmark = pytest.mark.django_db

US3 = "12066170001"
US4 = "12066170002"
COLUMNS = [
    "created_on",
    "phone_number",
    "contact",
    "project",
    "case_id",
    "mobile_worker_id",
    "kind",
    "source",
    "text_shown",
    "answer",
]


@pytest.fixture
def history(api, other_api, project, sandbox):
    """A realistic ledger for alpha (and one row for beta, which alpha must never see)."""
    sw = "Je, unakubali kupokea ujumbe wa SMS? Jibu NDIYO au HAPANA."
    texts.update(project, {"opt_in_question": {"en": QUESTION, "sw": sw}})
    maria = api.case({"contact_phone_number": US}, name="Maria")["case_id"]
    assert api.post(f"cases/{maria}/opt-in-request").status_code == 202
    work()  # the question goes out: only then is an answer a consent
    sms_in(api, "+" + US, " Yes ")

    rosa = api.case({"contact_phone_number": US2}, name="Rosa")["case_id"]
    api.patch(f"cases/{rosa}", {"properties": {"contact_phone_number_is_verified": "1"}})  # through the API

    asha = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")["case_id"]
    sms_in(api, KE, "STOP")
    sms_in(api, KE, "start")

    juma = api.case({"contact_phone_number": US3, "language_code": "sw"}, name="Juma")["case_id"]
    call_command("consents", "request", "--project", "alpha", "--case", juma, stdout=io.StringIO())
    work()
    sms_in(api, US3, "no")

    lina = api.case({"contact_phone_number": US4}, name="Lina")["case_id"]
    assert api.post(f"cases/{lina}/opt-in-request").status_code == 202
    ConsentRequest.objects.filter(case__case_id=lina).update(expires_on=timezone.now() - timedelta(seconds=1))
    consent.expire_requests()

    beta = other_api.case({"contact_phone_number": US}, name="Other")["case_id"]
    assert other_api.post(f"cases/{beta}/opt-in-request").status_code == 202
    return {"maria": maria, "rosa": rosa, "asha": asha, "juma": juma, "lina": lina}


def expected(h) -> list[tuple]:
    sw_question = "Je, unakubali kupokea ujumbe wa SMS? Jibu NDIYO au HAPANA."
    return [
        # number, contact, project, case, kind, source, text shown, answer
        (US, f"case {h['maria']} (Maria)", "alpha", h["maria"], "request", "api", QUESTION, ""),
        (US, f"case {h['maria']} (Maria)", "alpha", h["maria"], "consent", "survey", QUESTION, " Yes "),
        (US2, f"case {h['rosa']} (Rosa)", "alpha", h["rosa"], "consent", "api", "", "1"),
        (KE, f"case {h['asha']} (Asha)", "alpha", h["asha"], "opt_out", "keyword", "", "STOP"),
        (KE, f"case {h['asha']} (Asha)", "alpha", h["asha"], "opt_in", "keyword", "", "start"),
        (US3, f"case {h['juma']} (Juma)", "alpha", h["juma"], "request", "cli", sw_question, ""),
        (US3, f"case {h['juma']} (Juma)", "alpha", h["juma"], "refusal", "survey", sw_question, "no"),
        (US4, f"case {h['lina']} (Lina)", "alpha", h["lina"], "request", "api", QUESTION, ""),
        (US4, f"case {h['lina']} (Lina)", "alpha", h["lina"], "expired", "system", QUESTION, ""),
    ]


def as_tuple(r: dict) -> tuple:
    return (
        r["phone_number"],
        r["contact"],
        r["project"],
        r["case_id"],
        r["kind"],
        r["source"],
        r["text_shown"],
        r["answer"],
    )


def test_ledger_api(api, history):
    start = timezone.now() - timedelta(minutes=5)
    rows = api.get("consents").json()["items"]
    assert [as_tuple(r) for r in rows] == expected(history)
    times = [datetime.fromisoformat(r["created_on"]) for r in rows]
    assert times == sorted(times)
    assert all(start < t <= timezone.now() for t in times)
    assert all(r["mobile_worker_id"] is None for r in rows)

    assert [r["kind"] for r in api.get("consents", phone_number="+" + US).json()["items"]] == ["request", "consent"]
    assert [r["phone_number"] for r in api.get("consents", kind="refusal").json()["items"]] == [US3]
    assert len(api.get("consents", limit=2, offset=1).json()["items"]) == 2


def test_ledger_is_per_project(other_api, history):
    rows = other_api.get("consents").json()["items"]
    assert [(r["phone_number"], r["project"], r["kind"]) for r in rows] == [(US, "beta", "request")]


def test_export_csv(history):
    out = io.StringIO()
    call_command("consents", "export", "--project", "alpha", stdout=out)
    reader = csv.DictReader(io.StringIO(out.getvalue()))
    assert reader.fieldnames == COLUMNS
    rows = list(reader)
    assert [as_tuple(r) for r in rows] == expected(history)
    times = [datetime.fromisoformat(r["created_on"]) for r in rows]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert {r["mobile_worker_id"] for r in rows} == {""}


def test_export_to_a_file_matches_the_api(api, history, tmp_path):
    path = tmp_path / "ledger.csv"
    call_command("consents", "export", "--project", "alpha", "--output", str(path), stdout=io.StringIO())
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    api_rows = api.get("consents").json()["items"]
    assert len(rows) == len(api_rows) == 9
    for r, a in zip(rows, api_rows, strict=True):
        assert as_tuple(r) == as_tuple(a)
        # the API's JSON keeps milliseconds; the CSV keeps the full stored time
        delta = datetime.fromisoformat(r["created_on"]) - datetime.fromisoformat(a["created_on"])
        assert timedelta(0) <= delta < timedelta(milliseconds=1)


def test_worker_rows_in_the_ledger(api, sandbox):
    r = api.post("mobile-workers", {"username": "chw1", "phone_numbers": [KE]})
    wid = r.json()["id"]
    api.post("mobile-workers", {"username": "chw2", "phone_numbers": ["254722000002"]})
    # make chw1 the two-way owner, then it texts STOP
    api.patch(f"mobile-workers/{wid}", {"phone_numbers": [{"number": KE, "verified": True}]})
    sms_in(api, KE, "stop")
    (row,) = api.get("consents").json()["items"]
    assert (row["kind"], row["mobile_worker_id"], row["contact"], row["case_id"]) == (
        "opt_out",
        wid,
        "mobile worker chw1",
        None,
    )
    out = io.StringIO()
    call_command("consents", "export", "--project", "alpha", stdout=out)
    (csv_row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert (csv_row["mobile_worker_id"], csv_row["contact"]) == (str(wid), "mobile worker chw1")


def test_export_of_an_empty_ledger_and_unknown_project(api):
    out = io.StringIO()
    call_command("consents", "export", "--project", "alpha", stdout=out)
    assert out.getvalue().strip() == ",".join(COLUMNS)
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("consents", "export", "--project", "nope", stdout=io.StringIO())


def test_text_shown_is_exactly_what_was_sent(api, project, sandbox):
    question = "ACME clinic: may we text you reminders? Reply YES or NO. Msg&data rates apply."
    texts.update(project, {"opt_in_question": {"en": question}})
    cid = api.case({"contact_phone_number": US})["case_id"]
    api.post(f"cases/{cid}/opt-in-request")
    work()
    sent = api.get("sandbox/outbox").json()["items"][0]["text"]
    sms_in(api, US, "YES")
    rows = api.get("consents").json()["items"]
    assert {r["text_shown"] for r in rows} == {sent}


def test_export_neutralises_spreadsheet_formulas(api, sandbox):
    """The answer is whatever the person texted: a reply like "=HYPERLINK(…)" must not become a formula
    in the spreadsheet a program officer opens."""
    from casemsg.consent import optout

    optout.opt_out(US3, source="keyword", answer='=HYPERLINK("http://x")')
    from casemsg.consent.models import ConsentRecord
    from casemsg.projects.models import Project

    ConsentRecord.objects.filter(phone_number=US3).update(project=Project.objects.get(slug="alpha"))
    out = io.StringIO()
    call_command("consents", "export", "--project", "alpha", stdout=out)
    (row,) = [r for r in csv.DictReader(io.StringIO(out.getvalue())) if r["phone_number"] == US3]
    assert row["answer"] == '\'=HYPERLINK("http://x")'
