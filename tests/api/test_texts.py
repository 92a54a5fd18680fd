"""GET/PUT …/texts and …/texts/{key}: the texts casemsg sends, per language, through the HTTP API — the
write scope for a change, the admin scope for one that stops a text telling how to opt out, never an empty
text the law requires, every change in the audit log; and a Swahili contact's STOP answered in Swahili once
the text is written."""

from __future__ import annotations

import json

import pytest

from casemsg.consent import texts
from casemsg.projects import services
from casemsg.projects.models import AuditEntry
from tests.conftest import Api
from tests.inbound.conftest import KE, KE2, sent_to, sms_in

pytestmark = pytest.mark.django_db

UMEJIONDOA = "Umejiondoa. Hutapokea ujumbe tena. Tuma START kujiunga tena."


def put(api: Api, path: str, body: dict):
    return api.client.put(api.url(path), json.dumps(body), content_type="application/json", **api._h(None))


def writer(project) -> Api:
    """A key with read, send and write: everything but admin."""
    _row, key = services.issue_key(project, "ci", ["read", "send", "write"])
    return Api(key, project.slug)


def test_the_catalogue_with_the_projects_languages(api) -> None:
    r = api.get("texts")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["languages"] == ["en", "sw"] and body["count"] == len(texts.catalogue())
    by_key = {t["key"]: t for t in body["items"]}
    stop = by_key["opt_out_confirmation"]
    assert (stop["legal"], stop["translations"], stop["default"]) == (True, {}, texts.get(stop["key"]).default)
    assert stop["effective"]["sw"] == {"text": stop["default"], "language": "en", "own": False}
    assert by_key["verification_code"]["placeholders"] == ["code"]
    assert by_key["unknown_sender_reply"]["optional"] is True
    assert {"survey_ended", "survey_invalid_choice", "keyword_not_registered"} <= set(by_key)
    assert api.get("texts/help_text").json()["key"] == "help_text"
    r = api.get("texts/nothing")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "TEXT_NOT_FOUND")


def test_a_swahili_contacts_stop_after_the_text_is_written(api, project, sandbox) -> None:
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "language_code": "sw"})
    api.case({"contact_phone_number": KE2, "contact_phone_number_is_verified": "1"})
    sms_in(api, KE, "STOP")
    r = put(writer(project), "texts/opt_out_confirmation", {"translations": {"sw": UMEJIONDOA}})
    assert r.status_code == 200, r.content
    assert r.json()["effective"]["sw"] == {"text": UMEJIONDOA, "language": "sw", "own": True}
    sms_in(api, KE, "START")
    sms_in(api, KE, "STOP")
    sms_in(api, KE2, "STOP")
    assert sent_to(KE)[0] == texts.get("opt_out_confirmation").default
    assert sent_to(KE)[-1] == UMEJIONDOA
    assert sent_to(KE2) == [texts.get("opt_out_confirmation").default]


def test_the_legal_rules_of_a_change(api, project) -> None:
    w = writer(project)
    # never empty, whatever the scope
    r = put(api, "texts/opt_out_confirmation", {"translations": {"en": ""}})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "TEXT_REQUIRED")
    assert r.json()["error"]["message"].startswith("texts.opt_out_confirmation.en: the STOP confirmation may not")
    # dropping the opt-out word: admin only
    r = put(w, "texts/help_text", {"translations": {"sw": "Msaada: piga 0800 000 000."}})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "WEAKENS_LEGAL_RULE")
    assert r.json()["error"]["message"].startswith("texts.help_text.sw: no longer names an opt-out word (in sw)")
    r = put(w, "texts/help_text", {"translations": {"sw": "Msaada: piga 0800 000 000. Tuma STOP kujiondoa."}})
    assert r.status_code == 200, r.content
    r = put(api, "texts/help_text", {"translations": {"sw": "Msaada: piga 0800 000 000."}})  # the admin key
    assert r.status_code == 200, r.content
    # null goes back to the fallback
    r = put(w, "texts/help_text", {"translations": {"sw": None}})
    assert r.json()["translations"] == {} and r.json()["effective"]["sw"]["own"] is False
    audit = api.get("audit", setting="texts.help_text").json()["items"]
    assert [(e["weakens"], e["after"]) for e in audit] == [
        (False, None),
        (True, {"sw": "Msaada: piga 0800 000 000."}),
        (False, {"sw": "Msaada: piga 0800 000 000. Tuma STOP kujiondoa."}),
    ]
    assert audit[0]["who"] == f"api key {w.key[:10]}… (ci)" and audit[0]["source"] == "api"


def test_put_many_is_all_or_nothing(api, project) -> None:
    body = {"texts": {"wrong_code": {"sw": "Nambari si sahihi."}, "verification_code": {"sw": "Nambari yako."}}}
    r = put(api, "texts", body)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert r.json()["error"]["message"] == "texts.verification_code.sw: the text must contain {code}."
    assert api.get("texts/wrong_code").json()["translations"] == {}
    body["texts"]["verification_code"]["sw"] = "Nambari yako ni {code}."
    r = put(api, "texts", body)
    assert r.status_code == 200, r.content
    assert AuditEntry.objects.filter(setting__startswith="texts.").count() == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"translations": {"fr": "Aide"}}, 422, "VALIDATION_ERROR"),
        ({"translations": {"en": "a\x00b"}}, 422, "INVALID_VALUE"),
        ({"translations": "hello"}, 422, "VALIDATION_ERROR"),
        ({"text": "x"}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_bodies_are_4xx_with_a_code(api, body, status, code) -> None:
    r = put(api, "texts/wrong_code", body)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.content


def test_other_projects_keys_and_missing_scopes(api, other_api, project) -> None:
    assert other_api.get("/api/v1/projects/alpha/texts").status_code == 403
    _row, key = services.issue_key(project, "reader", ["read"])
    r = put(Api(key, project.slug), "texts/wrong_code", {"translations": {"sw": "x"}})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "INSUFFICIENT_SCOPE")
