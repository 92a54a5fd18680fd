"""The sandbox is a trust boundary: a project's API key simulates SMS only from numbers its own contacts
hold and the sandbox serves for it, and a simulated message reaches only that project's contacts and
questions. Alpha's key must never, through the sandbox, lift beta's opt-out, answer beta's consent
question, opt beta's number out, or run a keyword on beta's case."""

from __future__ import annotations

import pytest
from django.test import override_settings

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord, ConsentRequest
from casemsg.contacts.models import OptOut
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging.models import Message
from tests.inbound.conftest import KE, QUESTION, US, is_opted_out, outbox, sms_in, work

pytestmark = pytest.mark.django_db


def simulate(api, number: str, text: str):
    return api.post("sandbox/incoming", {"phone_number": number, "text": text})


def refused(r, status: int = 403, code: str = "NOT_A_PROJECT_NUMBER") -> bool:
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.content
    return True


def snapshot(number: str) -> dict:
    """Everything a message from `number` could change: its opt-out, its questions, its ledger, its cases."""
    return {
        "opted_out": list(OptOut.objects.filter(phone_number=number).values_list("pk", flat=True)),
        "requests": list(ConsentRequest.objects.filter(phone_number=number).order_by("pk").values_list("pk", "status")),
        "ledger": list(ConsentRecord.objects.filter(phone_number=number).order_by("pk").values_list("pk", "kind")),
        "cases": {c.pk: dict(c.properties or {}) for c in Case.objects.filter(properties__contact_phone_number=number)},
        "messages": Message.objects.count(),
    }


@pytest.fixture
def beta_owner(other_api, sandbox) -> str:
    """Beta's case holding KE for two-way SMS (verified)."""
    return other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Beta")["case_id"]


@pytest.fixture
def beta_asked(other_api, sandbox) -> str:
    """Beta's case holding US, with an opt-in question sent and waiting for its answer."""
    cid = other_api.case({"contact_phone_number": US}, name="Beta")["case_id"]
    assert other_api.post(f"cases/{cid}/opt-in-request").status_code == 202
    work()  # the question goes out
    assert outbox(other_api) == [QUESTION]
    assert ConsentRequest.objects.get(case__case_id=cid).status == ConsentRequest.PENDING
    return cid


# --- alpha has no contact holding the number -------------------------------------------------------
def test_alpha_cannot_lift_betas_opt_out(api, other_api, beta_owner):
    sms_in(other_api, KE, "STOP")  # beta's own contact opts out
    assert is_opted_out(KE)
    before = snapshot(KE)

    assert refused(simulate(api, KE, "START"))
    work()
    assert is_opted_out(KE)
    assert snapshot(KE) == before
    assert other_api.contact(beta_owner)["sms"]["error"]["code"] == "PHONE_OPTED_OUT"


def test_alpha_cannot_answer_betas_question(api, other_api, beta_asked):
    before = snapshot(US)

    for text in ("YES", "1", "no"):
        assert refused(simulate(api, US, text))
    work()
    assert snapshot(US) == before
    assert ConsentRequest.objects.get(case__case_id=beta_asked).status == ConsentRequest.PENDING
    assert list(ConsentRecord.objects.filter(phone_number=US).values_list("kind", flat=True)) == ["request"]
    assert other_api.contact(beta_asked)["sms"]["error"]["code"] == "NO_CONSENT"


def test_alpha_cannot_stop_betas_number(api, other_api, beta_owner):
    before = snapshot(KE)

    assert refused(simulate(api, KE, "STOP"))
    work()
    assert not is_opted_out(KE)
    assert snapshot(KE) == before
    assert not ConsentRecord.objects.filter(phone_number=KE).exists()
    assert other_api.contact(beta_owner)["sms"]["ok"]


def test_alpha_cannot_run_a_keyword_on_betas_case(api, other_api, beta_owner):
    for key in (api, other_api):
        r = key.post("keywords", {"keyword": "weight", "action": "update_case", "property_name": "weight_kg"})
        assert r.status_code == 201, r.content
    before = snapshot(KE)

    assert refused(simulate(api, KE, "weight 3.2"))
    work()
    assert snapshot(KE) == before
    assert "weight_kg" not in other_api.get(f"cases/{beta_owner}").json()["properties"]


# --- alpha also has a contact holding the number (a shared phone) ----------------------------------
def test_alpha_yes_on_a_shared_number_does_not_answer_betas_question(api, other_api, beta_asked):
    alpha_case = api.case({"contact_phone_number": US}, name="Alpha")["case_id"]
    beta_props = dict(Case.objects.get(case_id=beta_asked).properties)

    r = simulate(api, US, "YES")
    assert r.status_code == 202, r.content  # alpha's own contact: the sandbox may simulate it
    work()

    assert ConsentRequest.objects.get(case__case_id=beta_asked).status == ConsentRequest.PENDING
    assert list(ConsentRecord.objects.filter(phone_number=US).values_list("kind", "project__slug")) == [
        ("request", "beta")
    ]
    assert Case.objects.get(case_id=beta_asked).properties == beta_props
    assert other_api.contact(beta_asked)["sms"]["error"]["code"] == "NO_CONSENT"
    assert api.contact(alpha_case)["sms"]["error"]["code"] == "NO_CONSENT"
    assert outbox(other_api) == [QUESTION]  # beta sent no thanks
    (inbound,) = Message.objects.filter(direction="in")
    assert inbound.project.slug == "alpha"
    assert inbound.case is None or inbound.case.project.slug == "alpha"

    # beta's own contact can still answer
    sms_in(other_api, US, "YES")
    assert ConsentRequest.objects.get(case__case_id=beta_asked).status == ConsentRequest.ANSWERED


def test_alpha_keyword_on_a_shared_number_does_not_update_betas_case(api, other_api, beta_owner):
    for key in (api, other_api):
        r = key.post("keywords", {"keyword": "weight", "action": "update_case", "property_name": "weight_kg"})
        assert r.status_code == 201, r.content
    api.case({"contact_phone_number": KE}, name="Alpha")  # beta keeps two-way ownership of KE
    beta_props = dict(Case.objects.get(case_id=beta_owner).properties)

    r = simulate(api, KE, "weight 3.2")
    assert r.status_code == 202, r.content
    work()

    assert Case.objects.get(case_id=beta_owner).properties == beta_props
    assert "weight_kg" not in other_api.get(f"cases/{beta_owner}").json()["properties"]
    (inbound,) = Message.objects.filter(direction="in")
    assert inbound.project.slug == "alpha"
    assert inbound.case is None or inbound.case.project.slug == "alpha"

    # the same text from beta's simulator reaches beta's case
    sms_in(other_api, KE, "weight 3.4")
    assert other_api.get(f"cases/{beta_owner}").json()["properties"]["weight_kg"] == "3.4"


# --- the sandbox itself --------------------------------------------------------------------------
def test_the_sandbox_switched_off_answers_404(api, sandbox):
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    with override_settings(CASEMSG_SANDBOX=False):
        assert refused(simulate(api, KE, "STOP"), 404, "SANDBOX_DISABLED")
        work()
    assert not is_opted_out(KE)
    assert not Message.objects.filter(direction="in").exists()
    # switched on, the same message is simulated
    sms_in(api, KE, "STOP")
    assert is_opted_out(KE)


def test_a_number_routed_to_a_real_gateway_is_refused(api, project, sandbox, fake_http):
    """Alpha sends Kenyan numbers through a real provider: only the person can text from them, even though
    an installation-wide sandbox exists and alpha's own contact holds the number."""
    gw = add_gateway("alpha-http", "http", fake_http.gateway_config(), project=project)
    map_prefix("254", gw.name, project)
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    api.case({"contact_phone_number": US}, name="Maria")

    r = simulate(api, KE, "STOP")
    assert refused(r) and "alpha-http" in r.json()["error"]["message"]
    work()
    assert not is_opted_out(KE)
    assert not Message.objects.filter(direction="in").exists()
    # a number the sandbox does serve for alpha (the installation's `*` route) is simulated
    sms_in(api, US, "STOP")
    assert is_opted_out(US)
