"""Consent is a ledger row with its true source and who recorded it, or it is not consent; an answer to a
question that was never sent is not an answer."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from casemsg.cases import services
from casemsg.consent.models import ConsentRecord, ConsentRequest
from casemsg.inbound import router
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member
from tests.conftest import Api
from tests.inbound.conftest import QUESTION, US, US2, outbox, send, sms_in, work

pytestmark = pytest.mark.django_db


def ledger(**filters) -> list[tuple[str, str, str]]:
    return [
        (r.kind, r.source, r.recorded_by) for r in ConsentRecord.objects.filter(**filters).order_by("created_on", "pk")
    ]


def test_a_yes_before_the_question_was_sent_is_not_consent(api, sandbox):
    cid = api.case({"contact_phone_number": US}, name="Maria")["case_id"]
    r = api.post(f"cases/{cid}/opt-in-request")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    # The question still waits in the queue (a quiet hour, a slow gateway) when a "Yes" arrives.
    r = api.post("sandbox/incoming", {"phone_number": US, "text": "Yes"})
    assert r.status_code == 202
    router.process_due()
    assert api.contact(cid)["sms"]["error"]["code"] == "NO_CONSENT"
    assert [k for k, _s, _w in ledger(phone_number=US)] == ["request"]
    assert ConsentRequest.objects.get(case__case_id=cid).status == "queued"

    # the question goes out; now the person's answer counts
    work()
    assert outbox(api) == [QUESTION]
    assert ConsentRequest.objects.get(case__case_id=cid).status == "pending"
    sms_in(api, US, "Yes")
    assert api.contact(cid)["verified"] is True
    assert [(k, s) for k, s, _w in ledger(phone_number=US)] == [("request", "api"), ("consent", "survey")]


def test_a_question_that_failed_to_send_never_becomes_pending(api, sandbox):
    cid = api.case({"contact_phone_number": US}, name="Maria")["case_id"]
    api.post(f"cases/{cid}/opt-in-request")
    Message.objects.filter(kind=Message.OPT_IN_REQUEST).update(status=Message.FAILED, error="GATEWAY_ERROR")
    work()
    sms_in(api, US, "YES")
    assert api.contact(cid)["sms"]["error"]["code"] == "NO_CONSENT"
    assert ConsentRequest.objects.get(case__case_id=cid).status == "queued"


def test_api_consent_names_the_key_that_recorded_it(api, project):
    r = api.post("keys", {"name": "clinic forwarder"})
    forwarder = Api(r.json()["key"], project.slug)
    cid = forwarder.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"}, name="Rosa")["case_id"]
    ((kind, source, who),) = ledger(case__case_id=cid)
    assert (kind, source) == ("consent", "api")
    assert who.startswith("api key " + r.json()["prefix"]) and who.endswith("(clinic forwarder)")


def test_a_verified_us_number_of_a_mobile_worker_is_consent_only_with_a_ledger_row(api, sandbox):
    r = api.post("mobile-workers", {"username": "chw-1", "phone_numbers": [{"number": US2, "verified": True}]})
    assert r.status_code == 201, r.content
    rows = ledger(worker_id=r.json()["id"])
    assert [(k, s) for k, s, _w in rows] == [("consent", "api")]
    assert rows[0][2].startswith("api key ")
    m = api.post("messages", {"recipient": {"mobile_worker_id": r.json()["id"]}, "text": "Hi"}).json()
    assert m["status"] == "queued"
    # changing something else records nothing more
    assert api.patch(f"mobile-workers/{r.json()['id']}", {"name": "Chw One"}).status_code == 200
    assert len(ledger(worker_id=r.json()["id"])) == 1


def test_a_csv_import_is_named_an_import(project, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(
        f"case_id,name,contact_phone_number,contact_phone_number_is_verified\nimp-1,Ana,{US},1\nimp-2,Bo,{US2},\n"
    )
    call_command("cases", "import", str(path), "--project", project.slug, "--case-type", "mother", stdout=io.StringIO())
    assert ledger(case__case_id="imp-1") == [("consent", "import", "command line")]
    assert ledger(case__case_id="imp-2") == []


def test_the_opt_in_button_of_the_page_is_named_the_page(project, client, django_user_model):
    case = services.create_case(
        project, services.CaseChange(case_type="mother", name="Maria", properties={"contact_phone_number": US})
    )
    user = django_user_model.objects.create_user("officer", password="x")
    add_member(project, user, "editor")  # a role in the project opens its pages (docs/web.md)
    client.force_login(user)
    r = client.post(f"/projects/{project.slug}/cases/{case.case_id}/", {"action": "opt_in"})
    assert r.status_code in (200, 302), r.content
    assert ledger(case=case) == [("request", "page", "user officer")]


def test_stop_is_the_persons_own_and_names_no_recorder(api, sandbox):
    cid = api.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"}, name="Maria")["case_id"]
    sms_in(api, US, "STOP")
    assert ledger(case__case_id=cid)[-1] == ("opt_out", "keyword", "")
    assert send(api, cid)["error"]["code"] == "PHONE_OPTED_OUT"
