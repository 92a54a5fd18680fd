"""The opt-in request is a built-in survey on the survey engine: asking a pending US number starts a
session of the project's consent survey (its question is the project's opt-in text, sent as an opt-in
request); the answer completes the session, writes the ledger row and sets
`contact_phone_number_is_verified` through the case update; a non-answer goes on to keywords; the
built-in survey is never listed, started or edited as one of the project's own; a changed question text is
a new version, and a running session keeps the one it asked."""

from __future__ import annotations

import pytest

from casemsg.consent import texts
from casemsg.consent.models import ConsentRecord, ConsentRequest
from casemsg.messaging.models import Message
from casemsg.surveys import consent as survey_consent
from casemsg.surveys.models import Survey, SurveySession
from tests.inbound.conftest import CONSENT_THANKS, QUESTION, US, US2, sent_to, sms_in, work

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sandbox")]


def ask(api, case_id: str) -> dict:
    r = api.post(f"cases/{case_id}/opt-in-request")
    assert r.status_code == 202, r.content
    work()
    return r.json()


def consent_session(number: str) -> SurveySession:
    return SurveySession.objects.select_related("survey_version__survey").filter(phone_number=number).latest("pk")


def test_the_opt_in_request_to_a_pending_us_number_is_a_consent_survey_session(api):
    c = api.case({"contact_phone_number": US}, name="Maria")
    ask(api, c["case_id"])
    assert sent_to(US) == [QUESTION]
    m = Message.objects.get(to=US)
    assert (m.kind, m.requires_two_way) == (Message.OPT_IN_REQUEST, False)
    s = consent_session(US)
    assert s.survey_version.survey.builtin == "consent" and s.status == "open"
    assert s.case.case_id == c["case_id"] and s.gateway is None  # routed at send time; answered by the request
    assert ConsentRequest.objects.get(phone_number=US).status == ConsentRequest.PENDING

    sms_in(api, US, "yes")
    s = consent_session(US)
    assert (s.status, s.answers) == ("completed", {"consent": "yes"})
    assert sent_to(US)[-1] == CONSENT_THANKS
    case = s.case
    case.refresh_from_db()
    assert case.properties["contact_phone_number_is_verified"] == "1"
    row = ConsentRecord.objects.filter(phone_number=US).latest("pk")
    assert (row.kind, row.source, row.text_shown, row.answer) == ("consent", "survey", QUESTION, "yes")
    assert ConsentRequest.objects.get(phone_number=US).status == ConsentRequest.ANSWERED


def test_a_refusal_completes_the_session_without_consent(api):
    c = api.case({"contact_phone_number": US2}, name="Ana")
    ask(api, c["case_id"])
    sms_in(api, US2, "No")
    s = consent_session(US2)
    assert (s.status, s.answers) == ("completed", {"consent": "No"})
    s.case.refresh_from_db()
    assert s.case.properties.get("contact_phone_number_is_verified", "") != "1"
    assert ConsentRecord.objects.filter(phone_number=US2).latest("pk").kind == "refusal"


def test_a_reply_that_is_no_answer_leaves_the_session_waiting(api):
    c = api.case({"contact_phone_number": US}, name="Maria")
    ask(api, c["case_id"])
    sms_in(api, US, "hello there")
    assert consent_session(US).status == "open" and consent_session(US).answers == {}
    assert sent_to(US) == [QUESTION]  # not asked again: the reply went on to keywords (none matched)
    assert ConsentRequest.objects.get(phone_number=US).status == ConsentRequest.PENDING


def test_the_builtin_survey_is_not_the_projects_own(api):
    c = api.case({"contact_phone_number": US}, name="Maria")
    ask(api, c["case_id"])
    builtin = Survey.objects.get(builtin="consent")
    assert api.get("surveys").json()["count"] == 0
    assert api.get(f"surveys/{builtin.pk}").status_code == 404
    r = api.post(f"surveys/{builtin.pk}/start", {"case_id": c["case_id"]})
    assert r.status_code == 404
    assert api.client.delete(api.url(f"surveys/{builtin.pk}"), **api._h(None)).status_code == 404
    assert Survey.objects.filter(pk=builtin.pk).exists()


def test_a_changed_question_is_a_new_version_and_a_running_session_keeps_its_own(api, project):
    c = api.case({"contact_phone_number": US}, name="Maria")
    ask(api, c["case_id"])
    first = consent_session(US).survey_version
    texts.update(project, {"opt_in_question": {"en": "ACME clinic: may we text you? Reply YES or NO."}})
    v2 = survey_consent.current_version(project)
    assert v2.number == first.number + 1 and v2.pk != first.pk
    assert survey_consent.current_version(project).pk == v2.pk  # unchanged texts: no new version
    assert consent_session(US).survey_version_id == first.pk
    sms_in(api, US, "YES")
    assert consent_session(US).status == "completed"


def test_stop_ends_the_consent_session_and_opts_out(api):
    c = api.case({"contact_phone_number": US}, name="Maria")
    ask(api, c["case_id"])
    sms_in(api, US, "STOP")
    s = consent_session(US)
    assert (s.status, s.error) == ("cancelled", "PHONE_OPTED_OUT")
    sms_in(api, US, "YES")  # opts back in (YES is an opt-in word); the ended session takes nothing
    assert consent_session(US).answers == {}
