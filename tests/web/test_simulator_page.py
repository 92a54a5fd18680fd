"""The phone simulator page: what happened to each inbound message (recorded by the inbound router in the
message's history), and "reset a test contact" within the sandbox's trust rules (docs/security.md)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from casemsg.consent.models import ConsentRecord, ConsentRequest
from casemsg.contacts.models import OptOut
from casemsg.gateways import services as gateways
from casemsg.inbound import services as keyword_services
from casemsg.inbound.services import KeywordFields
from casemsg.messaging.models import Message
from casemsg.projects import services as projects
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import work
from tests.surveys.test_sessions import anc_survey, contact, start

KE = "254712345678"
KE2 = "254712345679"
US = "12066171234"


def reply(client: Client, slug: str, number: str, text: str) -> None:
    r = client.post(f"/projects/{slug}/simulator/reply/", {"number": number, "text": text})
    assert r.status_code == 302, r.content


def outcomes(client: Client, slug: str, number: str) -> list[tuple[str, str]]:
    """(inbound text, what the page says happened to it), oldest first."""
    r = client.get(f"/projects/{slug}/simulator/", {"number": number})
    assert r.status_code == 200
    return [(m.text, m.outcome.text) for m in r.context["conversation"] if m.direction == Message.IN]


def test_each_inbound_message_says_what_happened(owner, project, api, sandbox):
    contact(api, KE)
    keyword_services.create_keyword(project, KeywordFields(keyword="HELLO", reply={"en": "Hi {case.name}"}))
    for text in ("hello there", "what?", "STOP", "START", "HELP"):
        reply(owner, project.slug, KE, text)
    said = outcomes(owner, project.slug, KE)
    assert said == [
        ("hello there", "Keyword HELLO matched."),
        ("what?", "Not handled: No keyword matched."),
        ("STOP", "Opted out (STOP): the number gets nothing more until START."),
        ("START", "Opted back in (START)."),
        ("HELP", "Help word: the project's help text was sent."),
    ]
    page = owner.get(f"/projects/{project.slug}/simulator/conversation/", {"number": KE}).content.decode()
    assert 'data-outcome="handled"' in page and 'data-outcome="unhandled"' in page
    assert "Hi Asha" in page  # the keyword's reply, delivered through the sandbox
    # the router's record itself: the message's history
    hello = Message.objects.get(direction=Message.IN, text="hello there")
    assert hello.history[-1]["outcome"] == "keyword:HELLO" and hello.history[-1]["keyword"] == "HELLO"


def test_unknown_sender_is_not_handled_and_says_why(owner, project, api, sandbox):
    # a one-way (unverified) number of the project's own case: nobody holds it for two-way SMS
    api.case({"contact_phone_number": KE2}, name="One Way")
    reply(owner, project.slug, KE2, "hello")
    assert outcomes(owner, project.slug, KE2) == [
        ("hello", "Not handled: No contact holds this number for two-way SMS.")
    ]


def test_survey_answers_name_the_survey_and_question(owner, project, api, sandbox):
    survey = anc_survey(api)
    case = contact(api, KE)
    start(api, survey["id"], case)
    asked = SurveySession.objects.get(case=case).current_question
    reply(owner, project.slug, KE, "maybe")  # not an answer: asked again
    reply(owner, project.slug, KE, "1")
    (retry, answer) = outcomes(owner, project.slug, KE)
    where = f"survey “{survey['name']}”, question {asked}."
    assert retry == ("maybe", f"Survey answer not understood; the question was asked again: {where}")
    assert answer == ("1", f"Survey answer accepted: {where}")


def test_consent_answer_is_shown(owner, project, api, sandbox):
    body = api.case({"contact_phone_number": US}, name="Maria")
    r = api.post(f"cases/{body['case_id']}/opt-in-request")
    assert r.status_code == 202, r.content
    work()  # the question goes out: the request is pending
    reply(owner, project.slug, US, "Yes")
    assert outcomes(owner, project.slug, US) == [("Yes", "Consent answer: yes, consent recorded.")]


def test_keyword_starting_a_survey_names_the_keyword(owner, project, api, sandbox):
    survey = anc_survey(api)
    contact(api, KE)
    keyword_services.create_keyword(
        project, KeywordFields(keyword="ANC", action="start_survey", params={"survey": str(survey["id"])})
    )
    reply(owner, project.slug, KE, "anc")
    assert outcomes(owner, project.slug, KE) == [("anc", "Keyword ANC matched. Survey started.")]


def test_reset_clears_a_test_contact(owner, project, api, sandbox):
    survey = anc_survey(api)
    case = contact(api, KE)
    start(api, survey["id"], case)  # an open survey session, its question sent
    reply(owner, project.slug, KE, "maybe")
    ConsentRequest.objects.create(
        project=project,
        case=case,
        phone_number=KE,
        text_shown="Consent?",
        status=ConsentRequest.PENDING,
        created_on=timezone.now(),
        expires_on=timezone.now() + timedelta(days=1),
    )
    # opted out of the project (as a STOP through the simulator leaves it, the survey still open)
    OptOut.objects.create(phone_number=KE, project=project, source="keyword", opted_out_on=timezone.now())
    before_ledger = ConsentRecord.objects.count()

    r = owner.post(f"/projects/{project.slug}/simulator/reset/", {"number": KE}, follow=True)
    assert r.status_code == 200
    page = r.content.decode()
    assert "reset: opt-out lifted" in page
    assert not OptOut.objects.filter(phone_number=KE).exists()
    assert not ConsentRequest.objects.filter(phone_number=KE, status=ConsentRequest.PENDING).exists()
    assert not SurveySession.objects.filter(phone_number=KE, status=SurveySession.OPEN).exists()
    assert not Message.objects.filter(project=project, to=KE).exists()
    assert r.context["conversation"] == []
    # the opt-out was lifted on the record, by the user, from the page
    row = ConsentRecord.objects.order_by("-pk").first()
    assert ConsentRecord.objects.count() == before_ledger + 1
    assert (row.kind, row.source, row.phone_number, row.recorded_by) == ("opt_in", "page", KE, "user boss")

    # and the number works again like new
    keyword_services.create_keyword(project, KeywordFields(keyword="HELLO", reply={"en": "Hi"}))
    reply(owner, project.slug, KE, "hello")
    assert outcomes(owner, project.slug, KE) == [("hello", "Keyword HELLO matched.")]


def test_reset_respects_the_sandbox_trust_rules(owner, project, other_project, api, other_api, sandbox, fake_http):
    other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Theirs")
    OptOut.objects.create(phone_number=KE, source="keyword", opted_out_on=timezone.now())
    # not a number of this project's contacts
    r = owner.post(f"/projects/{project.slug}/simulator/reset/", {"number": KE}, follow=True)
    assert "NOT_A_PROJECT_NUMBER" in r.content.decode()
    assert OptOut.objects.filter(phone_number=KE).exists()

    # this project's contact, but its number goes through a real gateway: the person's STOP stays
    contact(api, KE2)
    OptOut.objects.create(phone_number=KE2, source="keyword", opted_out_on=timezone.now())
    gateways.add_gateway("real", "http", fake_http.gateway_config(), project=project)
    gateways.map_prefix("25471234567", "real", project)
    r = owner.post(f"/projects/{project.slug}/simulator/reset/", {"number": KE2}, follow=True)
    assert "not the sandbox" in r.content.decode()
    assert OptOut.objects.filter(phone_number=KE2).exists()

    r = owner.post(f"/projects/{project.slug}/simulator/reset/", {"number": "not a number"}, follow=True)
    assert r.status_code == 200 and "INVALID_PHONE_NUMBER" in r.content.decode()
    assert owner.get(f"/projects/{project.slug}/simulator/reset/").status_code == 405


def test_reset_when_the_sandbox_is_off(owner, project, api, sandbox, settings):
    contact(api, KE)
    settings.CASEMSG_SANDBOX = False
    r = owner.post(f"/projects/{project.slug}/simulator/reset/", {"number": KE}, follow=True)
    assert "SANDBOX_DISABLED" in r.content.decode()


def test_viewer_cannot_reset(project, api, sandbox):
    contact(api, KE)
    OptOut.objects.create(phone_number=KE, source="keyword", opted_out_on=timezone.now())
    user = get_user_model().objects.create_user("watcher", password="pw-watcher-1")
    projects.add_member(project, user, "viewer")
    c = Client()
    c.force_login(user)
    page = c.get(f"/projects/{project.slug}/simulator/", {"number": KE}).content.decode()
    assert 'id="reset"' not in page
    assert c.post(f"/projects/{project.slug}/simulator/reset/", {"number": KE}).status_code == 403
    assert OptOut.objects.filter(phone_number=KE).exists()


def test_reset_never_lifts_the_installation_wide_opt_out(owner, project, api, sandbox):
    """The person's own STOP to an installation gateway is not a test's to undo."""
    contact(api, KE)
    OptOut.objects.create(phone_number=KE, source="keyword", opted_out_on=timezone.now())
    r = owner.post(f"/projects/{project.slug}/simulator/reset/", {"number": KE}, follow=True)
    assert r.status_code == 200
    assert "opt-out lifted" not in r.content.decode()
    assert OptOut.objects.filter(phone_number=KE, project=None).exists()
