"""Authority follows who owns the channel (docs/security.md): nothing that arrives through a project's own
gateway, or its phone simulator, changes another project's cases, consent, opt-outs, sessions, messages or
events, or leaves through another project's gateway — whatever the words, whoever's number it is "from".
Through an installation gateway the same words still act across projects, as the seeds describe.

Alpha keeps contacts with every kind of state a word could change: a two-way owner in a survey with keywords,
a US number with an opt-in question waiting, a mobile worker with a verification code waiting, and a number
opted out installation-wide. Beta then sends every state-changing word from those numbers through each
inbound path it owns: a gateway of each type (its provider webhook, authenticated as the provider would),
its simulator (on its own sandbox gateway and on the installation's), and delivery reports.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord, ConsentRequest
from casemsg.contacts.models import OptOut
from casemsg.events.models import Delivery
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message, MessagingEvent
from casemsg.surveys.models import SurveySession
from casemsg.workers.models import MobileWorker
from tests.gateways.webhook_posts import CONFIGS, KINDS, post_inbound, post_status
from tests.inbound.conftest import (
    KE,
    KE2,
    KE3,
    OPT_IN_CONFIRMATION,
    OPT_OUT_CONFIRMATION,
    QUESTION,
    US,
    gateway_in,
    outbox,
    send,
    sms_in,
    work,
)
from tests.surveys.test_sessions import anc, create_survey

pytestmark = pytest.mark.django_db

STATUS_KINDS = {"http", "twilio", "telerivet", "africastalking"}


# --- alpha's contacts, in every state a word could change ---------------------------------------------
def alpha_world(api, project, alpha_sandbox: Gateway, sandbox: Gateway) -> dict[str, Any]:
    """Alpha's two-way owner of KE (keywords of every action, an open survey), US with its opt-in question
    waiting, a worker on KE2 with a verification code waiting, and KE3 opted out installation-wide."""
    survey = create_survey(api, anc())
    for body in (
        {"keyword": "weight", "action": "update_case", "property_name": "weight_kg"},
        {"keyword": "clinic", "reply": {"en": "Hello {case.name}, the clinic opens at 8."}},
        {"keyword": "anc", "action": "start_survey", "survey": str(survey["id"])},
    ):
        r = api.post("keywords", body)
        assert r.status_code == 201, r.content
    owner = api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")
    r = api.post(f"surveys/{survey['id']}/start", {"case_id": owner["case_id"]})
    assert r.status_code == 201, r.content
    asked = api.case({"contact_phone_number": US}, name="Maria")
    assert api.post(f"cases/{asked['case_id']}/opt-in-request").status_code == 202
    w = api.post("mobile-workers", {"username": "chw", "phone_numbers": [KE2]})
    assert w.status_code == 201, w.content
    assert api.post(f"mobile-workers/{w.json()['id']}/verify", {"phone_number": KE2}).status_code == 202
    api.case({"contact_phone_number": KE3, "contact_phone_number_is_verified": "1"}, name="Opted")
    work()  # the survey's first question, the opt-in question and the code go out
    gateway_in(sandbox, KE3, "STOP")  # the person, to the installation: opted out everywhere
    assert OptOut.objects.filter(phone_number=KE3, project=None).exists()
    code = ConsentRequest.objects.get(project=project, phone_number=KE2).code
    assert SurveySession.objects.get(project=project, status="open", gateway__isnull=False).phone_number == KE
    assert ConsentRequest.objects.get(project=project, phone_number=US).status == ConsentRequest.PENDING
    return {"owner": owner["case_id"], "asked": asked["case_id"], "code": code}


def words(code: str) -> list[tuple[str, str]]:
    """Every state-changing word, from the number it could change something for."""
    return [
        (KE, "weight 9.9"),  # an update_case keyword of alpha's
        (KE, "clinic"),  # a reply keyword (alpha's data in it)
        (KE, "anc"),  # a start_survey keyword
        (KE, "1"),  # an answer to alpha's open survey
        (KE, "YES"),
        (KE, "HELP"),
        (US, "YES"),  # alpha's pending consent question
        (US, "NO"),
        (KE2, code),  # alpha's pending verification code
        (KE3, "START"),  # alpha's number opted out installation-wide
        (KE, "START"),
        (KE, "STOP"),
        (US, "STOP"),
        (KE2, "STOP"),
    ]


def snapshot(project) -> dict[str, Any]:
    """Everything of alpha's that an inbound message could change."""
    return {
        "cases": {c.case_id: (dict(c.properties), c.closed) for c in Case.objects.filter(project=project)},
        "workers": {w.pk: w.phone_numbers for w in MobileWorker.objects.filter(project=project)},
        "ledger": list(ConsentRecord.objects.exclude(project__slug="beta").order_by("pk").values_list("pk", "kind")),
        "requests": list(ConsentRequest.objects.filter(project=project).order_by("pk").values_list("pk", "status")),
        "opt_outs": sorted(OptOut.objects.exclude(project__slug="beta").values_list("phone_number", "project_id")),
        "sessions": list(
            SurveySession.objects.filter(project=project)
            .order_by("pk")
            .values_list("pk", "status", "current_question", "answers")
        ),
        "messages": list(Message.objects.filter(project=project).order_by("pk").values_list("pk", "status", "error")),
        "events": MessagingEvent.objects.filter(project=project).count(),
        "deliveries": Delivery.objects.filter(endpoint__project=project).count(),
    }


def assert_beta_kept_to_itself(beta, before_ids: int, alpha_gateways: set[int]) -> None:
    """What beta's words did stayed in beta: every inbound message handled and beta's, every reply beta's,
    nothing through alpha's gateways."""
    inbound = Message.objects.filter(direction="in", pk__gt=before_ids)
    assert inbound.count() == len(words("000000"))
    assert set(inbound.values_list("project_id", flat=True)) == {beta.pk}
    assert not inbound.exclude(claim="").exists() and not inbound.filter(next_attempt_on__isnull=False).exists()
    out = Message.objects.filter(direction="out", pk__gt=before_ids)
    assert set(out.values_list("project_id", flat=True)) <= {beta.pk}
    assert not out.filter(gateway_id__in=alpha_gateways).exists()
    # beta's STOP from KE is beta's own opt-out, beside (never instead of) the installation's
    assert OptOut.objects.filter(phone_number=KE, project=beta).exists()
    assert not OptOut.objects.filter(phone_number=KE, project=None).exists()


@pytest.fixture
def world(api, project, alpha_sandbox, sandbox) -> dict[str, Any]:
    return alpha_world(api, project, alpha_sandbox, sandbox)


@pytest.mark.parametrize("kind", KINDS)
def test_a_projects_gateway_speaks_only_for_that_project(kind, world, project, other_project, alpha_sandbox):
    gw = add_gateway(f"beta-{kind}", kind.removesuffix("-json"), CONFIGS[kind], project=other_project)
    map_prefix("*", gw.name, other_project)
    before = snapshot(project)
    last = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    client = Client()
    for i, (number, text) in enumerate(words(world["code"])):
        r = post_inbound(client, gw, number, text, f"{kind}-{i}")
        assert r.status_code == 200, r.content
        if i % 4 == 3:
            work()  # some words alone, some in a batch
    work()
    if kind in STATUS_KINDS:
        # delivery reports for alpha's messages, through beta's gateway: not beta's messages to report on
        for pid in Message.objects.filter(project=project, direction="out").values_list("provider_id", flat=True):
            assert post_status(client, gw, pid).status_code in (200, 404)
    assert snapshot(project) == before
    assert_beta_kept_to_itself(other_project, last, {alpha_sandbox.pk})


@pytest.mark.parametrize("own_sandbox", [True, False], ids=["beta-sandbox", "installation-sandbox"])
def test_a_projects_simulator_speaks_only_for_that_project(
    own_sandbox, world, api, other_api, project, other_project, alpha_sandbox
):
    if own_sandbox:
        gw = add_gateway("beta-sandbox", "sandbox", project=other_project)
        map_prefix("*", gw.name, other_project)
    # beta's own contacts hold the same numbers (a shared phone): the simulator may act for them
    other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Beta")
    for number in (US, KE2, KE3):
        other_api.case({"contact_phone_number": number}, name="Beta")
    before = snapshot(project)
    last = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for number, text in words(world["code"]):
        r = other_api.post("sandbox/incoming", {"phone_number": number, "text": text})
        assert r.status_code == 202, r.content
    work()
    assert snapshot(project) == before
    assert_beta_kept_to_itself(other_project, last, {alpha_sandbox.pk})
    assert all(Message.objects.filter(pk__gt=last).values_list("simulated", flat=True))
    # beta's reset lifts beta's own opt-out only
    assert other_api.post("sandbox/incoming", {"phone_number": KE3, "text": "STOP"}).status_code == 202
    work()
    from casemsg.inbound import sandbox as simulator

    simulator.reset_contact(other_project, KE3)
    assert OptOut.objects.filter(phone_number=KE3, project=None).exists()
    assert not OptOut.objects.filter(phone_number=KE3, project=other_project).exists()
    assert snapshot(project)["opt_outs"] == before["opt_outs"]


def test_the_installation_gateway_still_acts_for_every_project(world, api, project, sandbox):
    """The person, texting the installation's own number: the seeds' rules, across projects."""
    gateway_in(sandbox, KE, "weight 3.1")
    assert api.get(f"cases/{world['owner']}").json()["properties"]["weight_kg"] == "3.1"
    gateway_in(sandbox, US, "YES")
    assert ConsentRequest.objects.get(project=project, phone_number=US).status == ConsentRequest.ANSWERED
    assert api.contact(world["asked"])["sms"]["ok"]
    gateway_in(sandbox, KE2, world["code"])
    assert MobileWorker.objects.get(project=project).phone_numbers[0]["verified"]
    gateway_in(sandbox, KE3, "START")
    assert not OptOut.objects.filter(phone_number=KE3).exists()
    gateway_in(sandbox, KE, "STOP")
    assert OptOut.objects.filter(phone_number=KE, project=None).exists()
    assert SurveySession.objects.get(project=project, phone_number=KE).status == SurveySession.CANCELLED
    assert not Message.objects.filter(simulated=True).exists()


# --- a project's own opt-out ------------------------------------------------------------------------
@pytest.fixture
def beta_gateway(other_project) -> Gateway:
    gw = add_gateway("beta-own", "sandbox", project=other_project)
    map_prefix("*", gw.name, other_project)
    return gw


def test_stop_through_a_projects_gateway_binds_that_project_only(api, other_api, alpha_sandbox, beta_gateway):
    alpha = api.case({"contact_phone_number": KE}, name="Asha")["case_id"]
    beta = other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")
    gateway_in(beta_gateway, KE, "STOP")
    assert outbox(other_api) == [OPT_OUT_CONFIRMATION]
    assert other_api.contact(beta["case_id"])["sms"]["error"]["code"] == "PHONE_OPTED_OUT"
    assert send(other_api, beta["case_id"])["error"]["code"] == "PHONE_OPTED_OUT"
    assert api.contact(alpha)["sms"]["ok"]
    assert send(api, alpha, "Clinic tomorrow")["status"] == "queued"
    work()
    assert outbox(api) == ["Clinic tomorrow"]
    # START through the same channel lifts it again
    gateway_in(beta_gateway, KE, "START")
    assert outbox(other_api)[-1] == OPT_IN_CONFIRMATION
    assert other_api.contact(beta["case_id"])["sms"]["ok"]
    kinds = ConsentRecord.objects.filter(phone_number=KE).values_list("kind", "project__slug")
    assert list(kinds.order_by("pk")) == [("opt_out", "beta"), ("opt_in", "beta")]


def test_start_through_a_projects_gateway_never_lifts_the_installation_opt_out(api, other_api, sandbox, beta_gateway):
    beta = other_api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")
    gateway_in(sandbox, KE, "STOP")  # to the installation: everywhere
    confirmed = outbox(other_api)
    (start,) = gateway_in(beta_gateway, KE, "START")
    assert OptOut.objects.filter(phone_number=KE, project=None).exists()
    assert other_api.contact(beta["case_id"])["sms"]["error"]["code"] == "PHONE_OPTED_OUT"
    row = Message.objects.get(pk=start)
    assert row.history[-1]["outcome"] == "opt_in_not_lifted" and "installation-wide" in row.error_detail
    assert outbox(other_api) == confirmed  # nothing confirmed: nothing was lifted for the person
    # the simulator, even for the project's own verified contact, cannot lift it either
    sms_in(other_api, KE, "START")
    assert OptOut.objects.filter(phone_number=KE, project=None).exists()


def test_simulated_messages_are_marked_end_to_end(api, sandbox):
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"}, name="Asha")
    (sim,) = sms_in(api, KE, "HELP")
    (real,) = gateway_in(sandbox, KE, "HELP")
    assert Message.objects.get(pk=sim).simulated and not Message.objects.get(pk=real).simulated
    replies = Message.objects.filter(direction="out").order_by("pk")
    assert [m.simulated for m in replies] == [True, False]
    r = api.get(f"messages/{sim}")
    assert r.status_code == 200 and r.json()["simulated"] is True


def test_a_message_never_leaves_through_another_projects_gateway(project, api, beta_gateway, alpha_sandbox):
    """Whatever asks for a gateway (a reply's own, a contact_backend_id), the pipeline sends a project's
    message only through that project's gateways or the installation's."""
    case = Case.objects.get(case_id=api.case({"contact_phone_number": KE}, name="Asha")["case_id"])
    pipeline.queue(project, [pipeline.MessageSpec(case=case, text="hello", gateway=beta_gateway)], None)
    work()
    m = Message.objects.get(direction="out")
    assert (m.status, m.error) == ("failed", "GATEWAY_NOT_FOUND")
    assert not Message.objects.filter(gateway=beta_gateway, status="sent").exists()


# --- surveys on a shared gateway ------------------------------------------------------------------------
def test_a_project_never_ends_another_projects_survey(api, other_api, project, sandbox):
    """Both projects route through the installation's sandbox; one open session per (gateway, number):
    beta's survey start and opt-in request leave alpha's running survey alone."""
    survey = create_survey(api, anc())
    alpha = api.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"}, name="Asha")
    assert api.post(f"surveys/{survey['id']}/start", {"case_id": alpha["case_id"]}).status_code == 201
    beta_survey = create_survey(other_api, anc())
    beta = other_api.case({"contact_phone_number": US, "contact_phone_number_is_verified": "1"}, name="Asha")
    # alpha's contact gives the number up for two-way while its survey is still open: beta's case owns it now
    assert api.patch(f"cases/{alpha['case_id']}", {"properties": {"contact_phone_number_is_verified": "0"}})
    assert other_api.contact(beta["case_id"])["two_way"] is True
    r = other_api.post(f"surveys/{beta_survey['id']}/start", {"case_id": beta["case_id"]})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "NUMBER_IN_ANOTHER_SURVEY")
    asked = other_api.case({"contact_phone_number": US}, name="Maria")
    assert other_api.post(f"cases/{asked['case_id']}/opt-in-request").status_code == 202
    work()
    assert SurveySession.objects.get(project=project, gateway__isnull=False).status == SurveySession.OPEN
    assert QUESTION in [m.text for m in Message.objects.filter(project__slug="beta", direction="out")]
