"""STOP / START / HELP on every message, in every form: whole message, one word, case-insensitive,
trimmed. Each is sent through the sandbox phone simulator, processed and answered by the worker's own
functions, and read back from the sandbox outbox, the contact status and the consent ledger."""

from __future__ import annotations

import pytest

from casemsg.consent import texts
from casemsg.gateways.services import add_gateway
from casemsg.messaging.models import Message
from tests.inbound.conftest import (
    HELP_TEXT,
    KE,
    KE2,
    OPT_IN_CONFIRMATION,
    OPT_OUT_CONFIRMATION,
    US,
    case_row,
    gateway_in,
    is_opted_out,
    ledger_kinds,
    outbox,
    send,
    sent_to,
    sms_in,
)

pytestmark = pytest.mark.django_db

OPT_OUT_WORDS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]


def forms(word: str) -> list[str]:
    return [word.lower(), f" {word.title()} ", word.upper()]


@pytest.fixture
def owner(api, sandbox):
    """A case holding KE for two-way SMS (verified), so its replies route to it."""
    return api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")


@pytest.mark.parametrize("text", [f for w in OPT_OUT_WORDS for f in forms(w)])
def test_every_opt_out_word_in_every_form(api, owner, text):
    assert api.contact(owner["case_id"])["sms"]["ok"]

    sms_in(api, KE, text)

    assert is_opted_out(KE)
    assert outbox(api) == [OPT_OUT_CONFIRMATION]  # exactly one confirmation
    contact = api.contact(owner["case_id"])
    assert contact["sms"]["error"]["code"] == "PHONE_OPTED_OUT"
    m = send(api, owner["case_id"], "Your next visit is tomorrow")
    assert (m["status"], m["error"]["code"]) == ("failed", "PHONE_OPTED_OUT")
    assert outbox(api) == [OPT_OUT_CONFIRMATION]
    # the ledger keeps what the person typed, attributed to the contact
    consents = api.get("consents").json()["items"]
    assert [(c["kind"], c["source"], c["answer"], c["case_id"]) for c in consents] == [
        ("opt_out", "keyword", text, owner["case_id"])
    ]
    # the inbound message is in the log, attributed to the case
    (inbound,) = api.get("messages", direction="in").json()["items"]
    assert inbound["text"] == text and inbound["recipient"] == {"case_id": owner["case_id"]}


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
def test_an_opt_out_word_inside_a_sentence_is_not_an_opt_out(api, owner, word):
    for text in (f"{word} please", f"please {word.lower()}", f"{word} {word}"):
        sms_in(api, KE, text)
    assert not is_opted_out(KE)
    assert outbox(api) == []
    assert ledger_kinds(KE) == []
    m = send(api, owner["case_id"])
    assert m["status"] == "queued" and m["error"] is None


def test_unknown_number_can_opt_out_too(api, alpha_sandbox):
    # an unknown number texts alpha's own number: the provider calls its webhook
    gateway_in(alpha_sandbox, KE2, "Stop")
    assert is_opted_out(KE2)
    assert outbox(api) == [OPT_OUT_CONFIRMATION]
    assert sent_to(KE2) == [OPT_OUT_CONFIRMATION]
    # a case registered later with that number cannot be messaged: the opt-out is per number
    later = api.case({"contact_phone_number": KE2})
    assert send(api, later["case_id"])["error"]["code"] == "PHONE_OPTED_OUT"


def test_us_number_without_consent_still_gets_the_stop_confirmation(api, sandbox):
    c = api.case({"contact_phone_number": US})
    assert api.contact(c["case_id"])["sms"]["error"]["code"] == "NO_CONSENT"
    sms_in(api, US, "STOP")
    assert is_opted_out(US)
    assert sent_to(US) == [OPT_OUT_CONFIRMATION]


@pytest.mark.parametrize("text", [f for w in ["START", "UNSTOP", "YES"] for f in forms(w)])
def test_opt_in_words_subscribe_again_with_one_confirmation(api, owner, text):
    sms_in(api, KE, "stop")
    assert is_opted_out(KE)

    sms_in(api, KE, text)

    assert not is_opted_out(KE)
    assert outbox(api) == [OPT_OUT_CONFIRMATION, OPT_IN_CONFIRMATION]
    assert api.contact(owner["case_id"])["sms"]["ok"]
    m = send(api, owner["case_id"], "Welcome back")
    assert m["status"] == "queued"
    sms_in(api, KE, "thanks")  # (runs the worker)
    assert outbox(api) == [OPT_OUT_CONFIRMATION, OPT_IN_CONFIRMATION, "Welcome back"]
    assert ledger_kinds(KE) == ["opt_out", "opt_in"]
    assert [c["answer"] for c in api.get("consents").json()["items"]] == ["stop", text]


def test_start_inside_a_sentence_does_not_subscribe(api, owner):
    sms_in(api, KE, "STOP")
    sms_in(api, KE, "start again please")
    assert is_opted_out(KE)
    assert outbox(api) == [OPT_OUT_CONFIRMATION]


def test_case_changes_never_lift_an_opt_out(api, owner):
    sms_in(api, KE, "STOP")
    cid = owner["case_id"]
    api.patch(f"cases/{cid}", {"properties": {"contact_phone_number": KE2}})
    api.patch(f"cases/{cid}", {"properties": {"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}})
    api.patch(f"cases/{cid}", {"closed": True})
    api.patch(f"cases/{cid}", {"closed": False})
    assert is_opted_out(KE)
    assert send(api, cid)["error"]["code"] == "PHONE_OPTED_OUT"


def test_yes_without_an_opt_out_or_a_question_sends_nothing(api, owner):
    sms_in(api, KE, "YES")
    assert outbox(api) == []
    assert ledger_kinds(KE) == []


@pytest.mark.parametrize("text", ["help", " Help ", "HELP", "info", " Info ", "INFO"])
def test_help_and_info_answer_with_the_help_text(api, owner, project, text):
    sms_in(api, KE, text)
    assert outbox(api) == [HELP_TEXT]

    texts.update(project, {"help_text": {"en": "Alpha program: call 0800 000 000. Reply STOP to unsubscribe."}})
    sms_in(api, KE, text)
    assert outbox(api) == [HELP_TEXT, "Alpha program: call 0800 000 000. Reply STOP to unsubscribe."]
    assert not is_opted_out(KE)
    assert ledger_kinds(KE) == []


def test_help_inside_a_sentence_is_not_help(api, owner):
    sms_in(api, KE, "help me please")
    assert outbox(api) == []


def test_help_reaches_an_unknown_sender(api, alpha_sandbox, project):
    texts.update(project, {"help_text": {"en": "Alpha help line"}}, may_weaken=True)  # (names no STOP)
    gateway_in(alpha_sandbox, KE2, "HELP")
    assert sent_to(KE2) == ["Alpha help line"]


def test_project_opt_out_and_opt_in_words(api, other_api, sandbox, project, other_project):
    project.opt_out_keywords = ["Sitisha", " acha "]
    project.opt_in_keywords = ["anza"]
    project.save()
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})

    sms_in(api, KE, " SITISHA ")
    assert is_opted_out(KE)
    assert outbox(api) == [OPT_OUT_CONFIRMATION]
    sms_in(api, KE, "Anza")
    assert not is_opted_out(KE)
    assert outbox(api) == [OPT_OUT_CONFIRMATION, OPT_IN_CONFIRMATION]
    sms_in(api, KE, "acha")
    assert is_opted_out(KE)
    # the built-in words keep working beside the project's own
    sms_in(api, KE, "start")
    assert not is_opted_out(KE)

    # another project's number: its words are not alpha's
    other_api.case({"contact_phone_number": KE2, "contact_phone_number_is_verified": "1"})
    sms_in(other_api, KE2, "sitisha")
    assert not is_opted_out(KE2)
    assert outbox(other_api) == []


def test_gateway_opt_out_words(api, other_api, sandbox, other_project):
    sandbox.config = {"opt_out_keywords": ["ACHA", "Simama"], "opt_in_keywords": ["rudi"]}
    sandbox.save()
    # beta replies through a sandbox gateway of its own, which has no extra words
    sandbox_beta = add_gateway("sandbox-beta", "sandbox", project=other_project)

    gateway_in(sandbox, KE, "simama")
    assert is_opted_out(KE)
    assert sent_to(KE) == [OPT_OUT_CONFIRMATION]
    gateway_in(sandbox, KE, "RUDI")
    assert not is_opted_out(KE)

    gateway_in(sandbox_beta, KE2, "acha")
    assert not is_opted_out(KE2)
    gateway_in(sandbox_beta, KE2, "quit")
    assert is_opted_out(KE2)
    (reply,) = Message.objects.filter(direction="out", to=KE2)
    assert reply.gateway_name == "sandbox-beta"


def test_translated_confirmations_follow_the_contact_language(api, sandbox, project):
    own = {
        "opt_out_confirmation": {"en": "You are unsubscribed.", "sw": "Umejiondoa. Tuma START kujiunga tena."},
        "opt_in_confirmation": {"en": "Subscribed again.", "sw": "Umejiunga tena."},
        "help_text": {"en": "Help: call us.", "sw": "Msaada: tupigie simu."},
    }
    texts.update(project, own, may_weaken=True)  # (the texts name no opt-out word)
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "language_code": "sw"})
    api.case({"contact_phone_number": KE2, "contact_phone_number_is_verified": "1"})

    for text in ("STOP", "START", "HELP"):
        sms_in(api, KE, text)
        sms_in(api, KE2, text)
    assert sent_to(KE) == ["Umejiondoa. Tuma START kujiunga tena.", "Umejiunga tena.", "Msaada: tupigie simu."]
    assert sent_to(KE2) == ["You are unsubscribed.", "Subscribed again.", "Help: call us."]
    sw = Message.objects.filter(direction="out", to=KE).order_by("pk")
    assert [m.language for m in sw] == ["sw", "sw", "sw"]


def test_translated_confirmation_falls_back_to_the_project_language(api, sandbox, project):
    texts.update(project, {"opt_out_confirmation": {"sw": "Umejiondoa."}})  # no English text at all
    project.default_language = "sw"
    project.save()
    case_row(api, {"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "language_code": "en"})
    sms_in(api, KE, "stop")
    assert sent_to(KE) == ["Umejiondoa."]


@pytest.mark.parametrize("text", ["Stop.", "STOP!", "stop!!", "¡Stop!", '"STOP"', "Unsubscribe."])
def test_punctuation_around_an_opt_out_word_does_not_hide_it(api, owner, text):
    sms_in(api, KE, text)
    assert is_opted_out(KE)
    assert outbox(api) == [OPT_OUT_CONFIRMATION]


@pytest.mark.parametrize("text", ["stop please", "Stop. Please", "STOP-ME", "..."])
def test_punctuation_does_not_make_a_sentence_an_opt_out(api, owner, text):
    sms_in(api, KE, text)
    assert not is_opted_out(KE)
