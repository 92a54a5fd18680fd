"""The texts casemsg sends, one home (casemsg.consent.texts): every sender of a system text takes it from the
catalogue, in the contact's language, with the fallback chain contact language → project default language →
English. Each key of the catalogue is triggered here for real (an inbound message through the phone
simulator or a gateway's webhook, an opt-in request, a verification code, a survey) and the text that went
out is checked."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from casemsg.consent import texts
from casemsg.consent.models import ConsentRequest
from casemsg.core.errors import InputError
from casemsg.messaging.models import Message
from casemsg.projects.models import AuditEntry, Project
from casemsg.surveys import engine
from casemsg.surveys.answers import ERROR_CODES, Parsed, error_message
from casemsg.surveys.definition import PROMPTS
from casemsg.surveys.texts import error_messages
from tests.inbound.conftest import KE, KE2, US, US2, gateway_in, sent_to, sms_in, work

pytestmark = pytest.mark.django_db

NUMBERS = {"sw": (KE, US), "en": (KE2, US2)}
KE3_UNKNOWN = "254744000004"  # held by no contact
SURVEY = {
    "format": "casemsg-survey/1",
    "name": "Visit",
    "default_language": "en",
    "languages": ["en", "sw"],
    "settings": {"keyword": "VISIT"},
    "questions": [{"name": "age", "type": "integer", "label": {"en": "Your age?", "sw": "Umri wako?"}}],
}


def swahili(key: str) -> str:
    """The project's own Swahili text for a key: recognisable, and keeping what the rules ask for (its
    placeholders, the opt-out word of a text that names one)."""
    t = texts.get(key)
    return f"SW {t.default or t.title}"


def case(api, number: str, lang: str, **props: str) -> dict:
    return api.case({"contact_phone_number": number, "language_code": lang, **props}, name="Asha")


def two_way(api, number: str, lang: str) -> dict:
    return case(api, number, lang, contact_phone_number_is_verified="1")


def ask_consent(api, number: str, lang: str) -> None:
    cid = case(api, number, lang)["case_id"]
    assert api.post(f"cases/{cid}/opt-in-request").status_code == 202
    work()


def worker_code(api, number: str, lang: str) -> str:
    r = api.post(
        "mobile-workers", {"username": f"w{number}", "name": "W", "phone_numbers": [number], "language_code": lang}
    )
    assert r.status_code == 201, r.content
    assert api.post(f"mobile-workers/{r.json()['id']}/verify", {"phone_number": number}).status_code == 202
    work()
    return ConsentRequest.objects.get(phone_number=number, kind=ConsentRequest.VERIFICATION).code


def survey_started(api, number: str, lang: str) -> None:
    assert api.post("surveys", SURVEY).status_code in (201, 409)  # (409: the other contact's made it)
    two_way(api, number, lang)
    sms_in(api, number, "visit")


def expire_surveys() -> None:
    """The worker's survey beat a year later: every open session has expired."""
    engine.remind_and_expire(now=timezone.now() + timedelta(days=400))
    work()


# key → what makes casemsg send it to (number, language): the contact speaks that language.
TRIGGERS: dict[str, Callable[..., None]] = {
    "opt_out_confirmation": lambda api, n, lang, **_: (two_way(api, n, lang), sms_in(api, n, "STOP")),
    "opt_in_confirmation": lambda api, n, lang, **_: (
        two_way(api, n, lang),
        sms_in(api, n, "STOP"),
        sms_in(api, n, "START"),
    ),
    "help_text": lambda api, n, lang, **_: (two_way(api, n, lang), sms_in(api, n, "HELP")),
    "opt_in_question": lambda api, us, lang, **_: ask_consent(api, us, lang),
    "consent_thanks": lambda api, us, lang, **_: (ask_consent(api, us, lang), sms_in(api, us, "YES")),
    "verification_code": lambda api, n, lang, **_: worker_code(api, n, lang),
    "number_verified": lambda api, n, lang, **_: sms_in(api, n, worker_code(api, n, lang)),
    "wrong_code": lambda api, n, lang, **_: (worker_code(api, n, lang), sms_in(api, n, "123")),
    "catch_all_reply": lambda api, n, lang, **_: (two_way(api, n, lang), sms_in(api, n, "hello there")),
    "survey_ended": lambda api, n, lang, **_: (survey_started(api, n, lang), sms_in(api, n, "#stop")),
    "survey_invalid_integer": lambda api, n, lang, **_: (survey_started(api, n, lang), sms_in(api, n, "old")),
    "survey_expired": lambda api, n, lang, **_: (survey_started(api, n, lang), expire_surveys()),
}
# Texts to a sender no contact holds: the chain starts at the project's default language.
NO_CONTACT: dict[str, Callable[..., None]] = {
    "unknown_sender_reply": lambda api, n, gw: gateway_in(gw, n, "hello?"),
    "keyword_not_registered": lambda api, n, gw: (
        api.post("keywords", {"keyword": "weight", "action": "update_case", "property_name": "weight_kg"}),
        gateway_in(gw, n, "weight 3"),
    ),
}


def test_every_key_is_triggered_here() -> None:
    """A new text in the catalogue needs its trigger here (the survey re-prompts: one end to end, every one
    through the engine's lookup below)."""
    covered = set(TRIGGERS) | set(NO_CONTACT) | {f"survey_{code}" for code in ERROR_CODES}
    # the words added to a survey question, said within it: tests/surveys (test_entities: survey_prompt_keep)
    covered |= {f"survey_prompt_{name}" for name in PROMPTS}
    assert {t.key for t in texts.catalogue()} == covered


def last_to(number: str) -> str:
    sent = sent_to(number)
    return sent[-1] if sent else ""


def check(key: str, text: str, expected: str) -> None:
    if key == "verification_code":
        assert re.fullmatch(re.escape(expected).replace(r"\{code\}", r"\d{6}"), text), (key, text)
    else:
        assert text.startswith(expected.split("{")[0]), (key, text, expected)


@pytest.mark.parametrize("key", sorted(TRIGGERS))
def test_each_text_in_the_contacts_language_with_the_fallback(api, project, sandbox, key) -> None:
    """The project writes the text in Swahili only: a Swahili contact gets it; an English one gets casemsg's
    English (their language, then the project's default, en, have none of the project's own)."""
    texts.update(project, {key: {"sw": swahili(key)}})
    which = 1 if key in ("opt_in_question", "consent_thanks") else 0
    sw, en = NUMBERS["sw"][which], NUMBERS["en"][which]
    TRIGGERS[key](api, sw, "sw")
    TRIGGERS[key](api, en, "en")
    check(key, last_to(sw), swahili(key))
    t = texts.get(key)
    if t.optional:  # off until written, and written only in Swahili: nothing for English
        assert sent_to(en) == ([] if key == "catch_all_reply" else ["Your age?"]), sent_to(en)
    else:
        check(key, last_to(en), t.default)


@pytest.mark.parametrize("key", ["help_text", "opt_out_confirmation", "verification_code", "survey_ended"])
def test_the_project_default_language_comes_before_english(api, project, sandbox, key) -> None:
    """A contact whose language has no text of the project's gets the project's default language's."""
    project.default_language = "sw"
    project.save()
    texts.update(project, {key: {"sw": swahili(key)}})
    TRIGGERS[key](api, KE2, "en")
    check(key, last_to(KE2), swahili(key))


@pytest.mark.parametrize("key", sorted(NO_CONTACT))
def test_texts_to_a_sender_without_a_contact(api, project, alpha_sandbox, key) -> None:
    texts.update(project, {key: {"en": f"EN {texts.get(key).title}", "sw": swahili(key)}})
    NO_CONTACT[key](api, KE3_UNKNOWN, alpha_sandbox)
    assert last_to(KE3_UNKNOWN) == f"EN {texts.get(key).title}"
    project.default_language = "sw"
    project.save()
    NO_CONTACT[key](api, KE3_UNKNOWN, alpha_sandbox)
    assert last_to(KE3_UNKNOWN) == swahili(key)


def test_optional_texts_are_off_until_written(api, project, alpha_sandbox, sandbox) -> None:
    two_way(api, KE, "sw")
    sms_in(api, KE, "hello there")
    gateway_in(alpha_sandbox, KE3_UNKNOWN, "hello?")
    assert sent_to(KE) == [] and sent_to(KE3_UNKNOWN) == []
    # a catch-all reply leaves the message unhandled (it still waits for a person)
    texts.update(project, {"catch_all_reply": {"en": "We got your message; a nurse will call."}})
    sms_in(api, KE, "hello again")
    assert sent_to(KE) == ["We got your message; a nurse will call."]  # (sw contact: the project default)
    last_in = Message.objects.filter(direction=Message.IN, to=KE).latest("pk")
    assert (last_in.history[-1]["outcome"], last_in.error_detail) == ("unhandled", "No keyword matched.")


def test_an_expiring_opt_in_question_says_nothing(api, project, sandbox) -> None:
    """survey_expired is for the project's own surveys: the built-in opt-in question expires silently."""
    texts.update(project, {"survey_expired": {"en": "Time is up."}})
    ask_consent(api, US, "en")
    expire_surveys()
    assert sent_to(US) == [texts.get("opt_in_question").default]


def test_every_survey_reprompt_follows_the_projects_texts(project) -> None:
    """Each re-prompt (survey_<error>): the survey's own message first, then the project's text in the
    language, then casemsg's English."""
    texts.update(project, {f"survey_{code}": {"sw": f"SW {code}"} for code in ERROR_CODES})
    for code in ERROR_CODES:
        parsed = Parsed(False, "", code, {"count": "3", "date_format": "DDMMYYYY", "example": "15032024"})
        merged = error_messages(project, {})
        assert error_message(parsed, "sw", merged, "en").startswith(f"SW {code}"), code
        assert not error_message(parsed, "en", merged, "en").startswith("SW"), code
        survey_own = {"sw": {code: "the survey's own"}}
        assert error_message(parsed, "sw", error_messages(project, survey_own), "en") == "the survey's own"


def test_survey_stop_answer_and_constant_agree() -> None:
    assert engine.SURVEY_ENDED == texts.get("survey_ended").default


# --- the rules of a change ---------------------------------------------------------------------------------
def test_a_text_the_law_requires_is_never_emptied(project) -> None:
    for key in ("opt_out_confirmation", "help_text", "opt_in_question", "opt_in_confirmation"):
        with pytest.raises(InputError) as exc:
            texts.update(project, {key: {"en": "  "}}, may_weaken=True)
        assert (exc.value.code, exc.value.status) == ("TEXT_REQUIRED", 422)
        assert exc.value.message.startswith(f"texts.{key}.en: ")
    # other texts may be silenced in a language; null goes back to the fallback
    texts.update(project, {"wrong_code": {"sw": ""}})
    assert texts.pick(project, "wrong_code", "sw") == ("", "sw")
    texts.update(project, {"wrong_code": {"sw": None}})
    assert texts.pick(project, "wrong_code", "sw")[0] == texts.get("wrong_code").default
    assert AuditEntry.objects.filter(setting="texts.wrong_code").count() == 2


def test_dropping_the_opt_out_word_weakens_a_legal_rule(project) -> None:
    with pytest.raises(InputError) as exc:
        texts.update(project, {"help_text": {"sw": "Msaada: piga simu 0800."}})
    assert (exc.value.code, exc.value.status) == ("WEAKENS_LEGAL_RULE", 403)
    assert project.texts == {} and not AuditEntry.objects.exists()
    # the project's own opt-out word counts; a text that keeps one needs nothing more
    project.opt_out_keywords = ["SITISHA"]
    project.save()
    texts.update(project, {"help_text": {"sw": "Msaada: tuma SITISHA kujiondoa."}})
    texts.update(project, {"help_text": {"en": "Help: call 0800."}}, may_weaken=True)
    entry = AuditEntry.objects.get(setting="texts.help_text", weakens=True)
    assert (entry.before, entry.after) == (
        {"sw": "Msaada: tuma SITISHA kujiondoa."},
        {"sw": "Msaada: tuma SITISHA kujiondoa.", "en": "Help: call 0800."},
    )


@pytest.mark.parametrize(
    ("changes", "code", "start"),
    [
        ({"nope": {"en": "x"}}, "TEXT_NOT_FOUND", "'nope' is not a text"),
        ({"help_text": {"fr": "Aide: STOP"}}, "VALIDATION_ERROR", "texts.help_text.fr: 'fr' is not one of"),
        ({"verification_code": {"sw": "Nambari"}}, "VALIDATION_ERROR", "texts.verification_code.sw: the text must"),
        ({"wrong_code": {"sw": "{case.name}"}}, "VALIDATION_ERROR", "texts.wrong_code.sw: {case.name} is not a"),
        ({"wrong_code": {"sw": "x" * 1601}}, "VALUE_TOO_LONG", "texts.wrong_code.sw: 1601 characters"),
        ({"wrong_code": "x"}, "VALIDATION_ERROR", "texts.wrong_code: give"),
    ],
)
def test_bad_texts_are_refused_with_a_sentence(project, changes, code, start) -> None:
    with pytest.raises(InputError) as exc:
        texts.update(project, changes)
    assert exc.value.code == code and exc.value.message.startswith(start), exc.value.message
    assert Project.objects.get(pk=project.pk).texts == {}


def test_the_command_line(project) -> None:
    """`casemsg project texts SLUG [--set KEY LANG TEXT] [--reset KEY LANG]`: the installation's command line
    may weaken (and the audit log says so), never empty a text the law requires."""
    out = StringIO()
    call_command("project", "texts", project.slug, "--set", "help_text", "sw", "Msaada: piga simu.", stdout=out)
    assert "help_text\tHELP answer [legal] [names_opt_out]" in out.getvalue()
    assert "  sw\t(own)\tMsaada: piga simu." in out.getvalue()
    entry = AuditEntry.objects.get(setting="texts.help_text")
    assert (entry.source, entry.weakens) == ("cli", True) and entry.who.startswith("command line (")
    out = StringIO()
    call_command("project", "texts", project.slug, "--reset", "help_text", "sw", "--json", stdout=out)
    shown = {t["key"]: t for t in json.loads(out.getvalue())["items"]}
    assert shown["help_text"]["translations"] == {}
    with pytest.raises(CommandError, match="^TEXT_REQUIRED: texts.opt_out_confirmation.en: "):
        call_command("project", "texts", project.slug, "--set", "opt_out_confirmation", "en", " ")
    with pytest.raises(CommandError, match="^TEXT_NOT_FOUND: 'nope'"):
        call_command("project", "texts", project.slug, "--set", "nope", "en", "x")
