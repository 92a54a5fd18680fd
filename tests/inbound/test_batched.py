"""Batched inbound processing: a worker claims waiting messages in batches and routes them set-wise, with
the same results as handling them one at a time, and two messages from one number are handled in arrival
order, never in parallel (also by two workers at once)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casemsg.consent import texts
from casemsg.consent.models import ConsentRecord, ConsentRequest
from casemsg.contacts.models import OptOut
from casemsg.gateways.base import InboundSms
from casemsg.gateways.models import Gateway
from casemsg.gateways.services import add_gateway, map_prefix
from casemsg.inbound import claim, handle, router
from casemsg.inbound import receive as inbound_receive
from casemsg.messaging import pipeline
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.projects.services import create_project
from casemsg.surveys.models import SurveySession
from tests.conftest import Api
from tests.inbound.conftest import KE, KE2, gateway_post, work
from tests.surveys.test_sessions import anc_survey, contact, start

pytestmark = pytest.mark.django_db


def keyword(api: Api, word: str, reply: str) -> None:
    r = api.post("keywords", {"keyword": word, "reply": {"en": reply}})
    assert r.status_code == 201, r.content


def receive(gw: Gateway, messages: list[tuple[str, str]]) -> list[int]:
    """The provider's webhook stores these (number, text) messages; nothing is processed yet."""
    return inbound_receive.receive(gw, [InboundSms(from_number=n, text=t) for n, t in messages])


# --- the same results as one at a time ------------------------------------------------------------------
def program(slug: str) -> tuple[Api, Project, Gateway]:
    """A project with its own sandbox gateway, a reply keyword, an unknown-sender reply and a survey."""
    project, key = create_project(slug, f"Program {slug}")
    texts.update(project, {"unknown_sender_reply": {"en": "This number is not registered."}})
    gw = add_gateway(f"sandbox-{slug}", "sandbox", project=project)
    map_prefix("*", gw.name, project)
    api = Api(key, slug)
    keyword(api, "CLINIC", "Open 8-17, {case.name}. You asked: {rest}")
    return api, project, gw


def mixed_batch(api: Api, project: Project, gw: Gateway, n: dict[str, str]) -> list[int]:
    """Every kind of inbound message, from its own number: STOP, START (after an earlier STOP), HELP from an
    unknown sender, a keyword, an unknown sender, a survey answer, a consent answer, no match."""
    for label, name in [("stop", "Stella"), ("start", "Sam"), ("keyword", "Kiki"), ("nomatch", "Nora")]:
        contact(api, n[label], name=name)
    survey = anc_survey(api)
    start(api, survey["id"], contact(api, n["survey"], name="Sara"))
    maria = api.case({"contact_phone_number": n["consent"]}, name="Maria")
    r = api.post(f"cases/{maria['case_id']}/opt-in-request")
    assert r.status_code == 202, r.content
    gateway_post(gw, n["start"], "STOP")
    work()  # the question goes out; Sam is opted out
    return receive(
        gw,
        [
            (n["stop"], "STOP"),
            (n["start"], "START"),
            (n["help"], "HELP"),
            (n["keyword"], "clinic hours?"),
            (n["unknown"], "hello, who is this?"),
            (n["survey"], "1"),
            (n["consent"], "Yes"),
            (n["nomatch"], "good morning"),
        ],
    )


def snapshot(project: Project, n: dict[str, str], since: int) -> dict[str, object]:
    """What became of each message (by label, so two runs on different numbers compare)."""
    out: dict[str, object] = {}
    for label, number in n.items():
        (m,) = Message.objects.filter(direction="in", to=number, pk__gt=since).select_related("case")
        replies = Message.objects.filter(direction="out", to=number, pk__gt=since).order_by("pk")
        session = SurveySession.objects.filter(phone_number=number).first()
        out[label] = {
            "case": m.case.name if m.case else None,
            "mine": m.project_id == project.pk,
            "detail": m.error_detail,
            "outcome": {k: v for k, v in m.history[-1].items() if k not in ("at", "survey_session")},
            "claim": m.claim,
            "replies": [(r.text, r.status, r.kind, r.priority) for r in replies],
            "opted_out": OptOut.objects.filter(phone_number=number).exists(),
            "ledger": list(ConsentRecord.objects.filter(phone_number=number).order_by("pk").values_list("kind")),
            "request": list(ConsentRequest.objects.filter(phone_number=number).values_list("status")),
            "session": (session.status, session.current_question) if session else None,
        }
    return out


def numbers(prefix: str, us: str) -> dict[str, str]:
    labels = ["stop", "start", "help", "keyword", "unknown", "survey", "nomatch"]
    return {**{label: f"{prefix}{i:04d}" for i, label in enumerate(labels)}, "consent": us}


def test_a_mixed_batch_has_the_results_of_one_message_at_a_time(db):
    one_api, one, one_gw = program("one")
    batch_api, batch, batch_gw = program("batch")
    n1, n2 = numbers("25471100", "12066171234"), numbers("25472200", "12066175678")

    ids = mixed_batch(one_api, one, one_gw, n1)
    since = ids[0] - 1
    while msgs := claim.claim(limit=1):  # one message at a time, in arrival order
        assert [m.pk for m in msgs] == [ids.pop(0)]
        handle.handle(msgs[0])
    pipeline.deliver_due()
    by_one = snapshot(one, n1, since)

    ids = mixed_batch(batch_api, batch, batch_gw, n2)
    msgs = claim.claim()
    assert [m.pk for m in msgs] == ids  # one batch: every number once
    router.process_batch(msgs)
    pipeline.deliver_due()
    by_batch = snapshot(batch, n2, ids[0] - 1)

    assert by_batch == by_one
    outcomes = {label: s["outcome"]["outcome"] for label, s in by_batch.items()}  # type: ignore[index]
    assert outcomes == {
        "stop": "opt_out",
        "start": "opt_in",
        "help": "help",
        "keyword": "keyword:CLINIC",
        "unknown": "unknown_sender",
        "survey": "survey_answer",
        "consent": "consent",
        "nomatch": "unhandled",
    }
    kw = by_batch["keyword"]
    assert kw["replies"] == [("Open 8-17, Kiki. You asked: hours?", "sent", "normal", Message.REPLY)]  # type: ignore[index]
    assert by_batch["nomatch"]["detail"] == "No keyword matched."  # type: ignore[index]
    # every reply, the survey's next question included, went out as a reply (ahead of bulk sends)
    assert all(r[3] == Message.REPLY for s in by_batch.values() for r in s["replies"])  # type: ignore[index]
    assert all(r[1] == "sent" for s in by_batch.values() for r in s["replies"])  # type: ignore[index]


def test_a_batch_is_read_in_a_few_queries_however_large(api, alpha_sandbox):
    """Routing, keywords and replies of reply-only messages: the number of queries does not grow with the
    batch (no query per message)."""
    keyword(api, "CLINIC", "Open 8-17.")
    for i in range(60):
        api.case({"contact_phone_number": f"25471100{i:04d}", "contact_phone_number_is_verified": "1"})

    def queries(count: int, offset: int) -> int:
        receive(alpha_sandbox, [(f"25471100{i:04d}", "clinic") for i in range(offset, offset + count)])
        msgs = claim.claim()
        assert len(msgs) == count
        with CaptureQueriesContext(connection) as ctx:
            router.process_batch(msgs)
        return len(ctx.captured_queries)

    assert queries(10, 0) == queries(50, 10)
    assert Message.objects.filter(direction="out", priority=Message.REPLY).count() == 60


# --- per-number order --------------------------------------------------------------------------------------
def test_a_numbers_second_message_waits_for_its_first(api, alpha_sandbox):
    """Two workers claim at once: the second never gets a message of a number whose earlier message the
    first holds, nor a message with an older one still waiting."""
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1"})
    stop, other, start_ = receive(alpha_sandbox, [(KE, "STOP"), (KE2, "HELP"), (KE, "START")])
    first = claim.claim()
    assert [m.pk for m in first] == [stop, other]  # START waits: KE's STOP is older
    assert claim.claim() == []  # a second worker: KE's STOP is still being handled
    router.process_batch(first)
    (then,) = claim.claim()
    assert then.pk == start_
    router.process_batch([then])
    assert not OptOut.objects.filter(phone_number=KE).exists()  # STOP, then START: subscribed
    pipeline.deliver_due()
    sent = [
        t[:15] for t in Message.objects.filter(direction="out", to=KE).order_by("pk").values_list("text", flat=True)
    ]
    assert sent == ["You are unsubsc", "You are subscri"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_keep_each_numbers_order(project):
    """Two workers (threads with their own database connections) process 8 numbers × 6 messages at once:
    each number's replies come back in the order its messages arrived."""
    gw = add_gateway("sandbox-alpha", "sandbox", project=project)
    map_prefix("*", gw.name, project)
    api = Api(project.api_key, project.slug)
    r = api.post("keywords", {"keyword": "N", "reply": {"en": "{rest}"}})
    assert r.status_code == 201, r.content
    phones = [f"25471100{i:04d}" for i in range(8)]
    for p in phones:
        api.case({"contact_phone_number": p, "contact_phone_number_is_verified": "1"})
    receive(gw, [(p, f"N {k}") for k in range(6) for p in phones])

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while router.process_due(max_batches=1, sweep=False) or claim.has_waiting(timedelta(0)):
                pass
        except BaseException as exc:  # noqa: BLE001 — reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert not Message.objects.filter(direction="in", next_attempt_on__isnull=False).exists()
    for p in phones:
        replies = Message.objects.filter(direction="out", to=p).order_by("pk").values_list("content", flat=True)
        assert [c["text"] for c in replies] == [str(k) for k in range(6)], p
