"""US consent: no SMS to a consent-region number until the person has opted in.

Consent is recorded either by a frontline worker setting `contact_phone_number_is_verified` to 1, or by
the opt-in request ("Do you consent to receiving SMS messaging?") whose Yes/1 sets that property through
the normal case update — so the registry syncs and two-way ownership follows. While a request waits for
its answer the number is *pending*: its replies route to that contact. Every request, consent, refusal
and expiry is written to the consent ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from casemsg.cases import services as case_services
from casemsg.cases.models import Case
from casemsg.consent import ledger, texts
from casemsg.consent.ledger import contact_label
from casemsg.consent.models import ConsentRecord, ConsentRequest
from casemsg.consent.signals import ledger_written
from casemsg.contacts import registry
from casemsg.contacts.status import resolve_language, statuses
from casemsg.core import actor, errors, phone
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker

_label = contact_label


def record_requests(
    project: Project, cases: Sequence[Case], source: str = "system", force: bool = False
) -> tuple[list[ConsentRequest], list[tuple[str, str, int]]]:
    """Record opt-in requests for many cases in bulk: the request rows (queued: the question is not sent
    yet) and their ledger rows. The question itself is the built-in consent survey, which
    `casemsg.surveys.consent.ask` starts for these requests in the same transaction.

    Skips, with a reason, cases that need no request or were asked within the project's interval."""
    now = timezone.now()
    problems: list[tuple[str, str, int]] = []
    for c in cases:
        c.project = project
    sts = statuses(list(cases))
    interval = timedelta(hours=project.opt_in_interval_hours)
    recent = set(
        ConsentRequest.objects.filter(
            kind=ConsentRequest.OPT_IN, case__in=[c.pk for c in cases], created_on__gte=now - interval
        ).values_list("case_id", flat=True)
    )
    todo: list[tuple[Case, str, str]] = []
    for c, st in zip(cases, sts, strict=True):
        chk = st.phone_check
        if not c.is_active:
            problems.append((errors.CONTACT_IS_INACTIVE, f"Case {c.case_id} is closed.", 422))
        elif chk is None or not chk.ok:
            code = errors.NO_PHONE_NUMBER if chk is None else chk.error or errors.INVALID_PHONE_NUMBER
            problems.append((code, f"Case {c.case_id} has no valid phone number.", 422))
        elif st.verified:
            problems.append((errors.CONSENT_ALREADY_RECORDED, f"{chk.number} has already consented.", 409))
        elif st.sms.error is not None and st.sms.error.code == errors.PHONE_OPTED_OUT:
            problems.append((errors.PHONE_OPTED_OUT, f"{chk.number} texted STOP; only the person can text START.", 409))
        elif c.pk in recent and not force:
            problems.append(
                (
                    errors.RATE_LIMITED,
                    f"An opt-in request went to case {c.case_id} within the last "
                    f"{project.opt_in_interval_hours} hours; ask again later.",
                    429,
                )
            )
        else:
            lang, _src, _p = resolve_language((c.properties or {}).get("language_code", ""), project)
            todo.append((c, chk.number or "", texts.pick(project, "opt_in_question", lang)[0]))
    if not todo:
        return [], problems
    expires = now + timedelta(hours=project.opt_in_expiry_hours)
    with transaction.atomic():
        # a newer request replaces an older one still waiting (to be sent, or for its answer)
        ConsentRequest.objects.filter(
            kind=ConsentRequest.OPT_IN,
            status__in=[ConsentRequest.QUEUED, ConsentRequest.PENDING],
            case__in=[c.pk for c, _n, _t in todo],
        ).update(status=ConsentRequest.EXPIRED, answered_on=now)
        reqs = ConsentRequest.objects.bulk_create(
            [
                ConsentRequest(
                    kind=ConsentRequest.OPT_IN,
                    project=project,
                    case=c,
                    phone_number=n,
                    text_shown=t,
                    source=source,
                    created_on=now,
                    expires_on=expires,
                )
                for c, n, t in todo
            ]
        )
        written = ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    phone_number=n,
                    project=project,
                    case=c,
                    contact_label=_label(c, None),
                    kind="request",
                    source=source,
                    recorded_by=ledger.recorded_by(source),
                    text_shown=t,
                    created_on=now,
                )
                for c, n, t in todo
            ]
        )
        ledger_written.send(ConsentRecord, records=written)
    return reqs, problems


def pending_for(number: str, project_id: int | None = None) -> ConsentRequest | None:
    """The newest unexpired pending request (opt-in or verification) on this number, if any (only the
    project's, with `project_id`)."""
    # Every inbound message asks; almost always there is none, so look for an id first (a cheap query)
    waiting = ConsentRequest.objects.filter(
        phone_number=number, status=ConsentRequest.PENDING, expires_on__gt=timezone.now()
    )
    if project_id is not None:
        waiting = waiting.filter(project_id=project_id)
    pk = waiting.order_by("-created_on", "-pk").values_list("pk", flat=True).first()
    return None if pk is None else ConsentRequest.objects.select_related("project", "case", "worker").get(pk=pk)


def record_answer(req: ConsentRequest, outcome: str, text: str) -> None:
    """The answer to an opt-in request ("consent" or "refusal", from `text`): the request is answered, the
    ledger row written, and on consent `contact_phone_number_is_verified` set to 1 through the normal case
    update, so the registry syncs and two-way ownership follows. In the caller's transaction."""
    now = timezone.now()
    req.status = ConsentRequest.ANSWERED if outcome == "consent" else ConsentRequest.REFUSED
    req.answer, req.answered_on = text, now
    req.save(update_fields=["status", "answer", "answered_on"])
    record = ConsentRecord.objects.create(
        phone_number=req.phone_number,
        project=req.project,
        case=req.case,
        worker=req.worker,
        contact_label=_label(req.case, req.worker),
        kind=outcome,
        source="survey",
        text_shown=req.text_shown,
        answer=text,
        created_on=now,
    )
    ledger_written.send(ConsentRecord, records=[record])
    if outcome == "consent" and req.case is not None:
        case_services.update_case(
            req.project,
            req.case,
            case_services.CaseChange(properties={"contact_phone_number_is_verified": "1"}),
            consent_source="",
        )


def record_worker_form_consent(
    project: Project, cases: Sequence[Case], before: dict[int, bool], source: str = "worker_form"
) -> None:
    """Ledger rows for consent recorded by setting the property to 1: a frontline worker's form, or whoever
    is acting (the API, a page, an import) names the source."""
    acting = actor.current().source
    if acting in ("api", "page", "import"):
        source = acting
    now = timezone.now()
    rows = []
    for c in cases:
        props = c.properties or {}
        if str(props.get("contact_phone_number_is_verified", "")).strip() != "1" or before.get(c.pk, False):
            continue
        chk = phone.check(props.get("contact_phone_number"))
        if chk.ok and chk.number and phone.needs_consent(chk, project.consent_regions):
            rows.append(
                ledger.entry(chk.number, "consent", source, created_on=now, project=project, case=c, answer="1")
            )
    if rows:
        ledger_written.send(ConsentRecord, records=ConsentRecord.objects.bulk_create(rows))


def expire_requests(batch: int = 1000) -> int:
    """Requests past their expiry (waiting for an answer, or never sent): the number stops routing to
    them; the ledger says so."""
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            due = list(
                ConsentRequest.objects.filter(
                    status__in=[ConsentRequest.QUEUED, ConsentRequest.PENDING], expires_on__lte=now
                ).select_related("case", "worker")[:batch]
            )
            if not due:
                return total
            # an answer that arrived meanwhile keeps its status (and gets no "expired" row)
            pks = [r.pk for r in due]
            ConsentRequest.objects.filter(
                pk__in=pks, status__in=[ConsentRequest.QUEUED, ConsentRequest.PENDING]
            ).update(status=ConsentRequest.EXPIRED, answered_on=now)
            expired = set(ConsentRequest.objects.filter(pk__in=pks, answered_on=now).values_list("pk", flat=True))
            written = ConsentRecord.objects.bulk_create(
                [
                    ConsentRecord(
                        phone_number=r.phone_number,
                        project_id=r.project_id,
                        case_id=r.case_id,
                        worker_id=r.worker_id,
                        contact_label=_label(r.case, r.worker),
                        kind="expired",
                        source="system",
                        text_shown=r.text_shown,
                        created_on=now,
                    )
                    for r in due
                    if r.kind == ConsentRequest.OPT_IN and r.pk in expired
                ]
            )
            ledger_written.send(ConsentRecord, records=written)
        total += len(expired)


def on_cases_changed(
    sender: object,
    *,
    project: Project,
    cases: list[Case],
    previous: dict[int, dict[str, Any]],
    source: str,
    **_kw: object,
) -> None:
    """The case after-change hook: a worker setting the property to 1 is consent recorded in the ledger.
    (With the project's auto opt-in, a newly registered number that needs consent is asked: that is
    `casemsg.surveys.consent.on_cases_changed`, the other receiver of the same hook.)"""
    if source:
        # consent earned before counts only for the same number: a new number set verified in the same
        # change is consent for that number, recorded now
        now_numbers = {c.pk: phone.number_key((c.properties or {}).get("contact_phone_number")) for c in cases}
        before = {
            pk: registry.is_verified_value(props.get("contact_phone_number_is_verified"))
            and phone.number_key(props.get("contact_phone_number")) == now_numbers.get(pk)
            for pk, props in previous.items()
        }
        record_worker_form_consent(project, cases, before, source)


def on_messages_sent(sender: object, *, messages: list[Message], **_kw: object) -> None:
    """The messaging hook: once an opt-in question or a verification code has gone out, its request
    waits for the answer (replies from the number route to it) and its expiry counts from now."""
    numbers = {m.to for m in messages if m.kind == Message.OPT_IN_REQUEST and m.to}
    if not numbers:
        return
    now = timezone.now()
    waiting = list(ConsentRequest.objects.filter(status=ConsentRequest.QUEUED, phone_number__in=numbers))
    for r in waiting:
        r.status, r.sent_on = ConsentRequest.PENDING, now
        r.expires_on = now + (r.expires_on - r.created_on)
    ConsentRequest.objects.bulk_update(waiting, ["status", "sent_on", "expires_on"])


def on_workers_changed(
    sender: object,
    *,
    project: Project,
    workers: list[MobileWorker],
    previous: dict[int, list[dict[str, Any]]],
    **_kw: object,
) -> None:
    """The mobile-worker hook: a consent-region number that becomes verified is consent only with a ledger
    row naming who recorded it (the API, a page, or the person's own verification code)."""
    now = timezone.now()
    source = actor.current().source
    if source not in ("api", "page", "import", "verification"):
        source = "worker_form"
    rows = []
    for w in workers:
        before = {p["number"] for p in previous.get(w.pk, []) if p.get("verified")}
        for p in w.phone_numbers or []:
            if not p.get("verified") or p["number"] in before:
                continue
            chk = phone.check(p["number"])
            if chk.number and phone.needs_consent(chk, project.consent_regions):
                rows.append(
                    ledger.entry(
                        chk.number, "consent", source, created_on=now, project=project, worker=w, answer="verified"
                    )
                )
    if rows:
        ledger_written.send(ConsentRecord, records=ConsentRecord.objects.bulk_create(rows))


WHATSAPP_OPT_IN = "The person wrote to the business on WhatsApp."


def record_whatsapp_opt_ins(entries: Iterable[tuple[int | None, str, str]]) -> int:
    """WhatsApp's opt-in, the one rule for every WhatsApp gateway: the first message a number sends to
    one of a project's WhatsApp numbers is recorded in the ledger (kind opt_in, source whatsapp, the
    person's words as the answer), once per project and number. `entries` are (project id, number, text):
    a project's own gateway knows its project when the webhook stores the message (inbound.receive); an
    installation gateway's message has its project once the router has routed it (inbound.router). An
    entry without a project (a sender no project knows) records nothing. Two queries; returns how many
    were recorded."""
    first: dict[tuple[int, str], str] = {}
    for project_id, number, text in entries:
        if project_id is not None and number:
            first.setdefault((project_id, number), text)
    if not first:
        return 0
    known = set(
        ConsentRecord.objects.filter(
            project_id__in={p for p, _n in first},
            phone_number__in={n for _p, n in first},
            kind="opt_in",
            source="whatsapp",
        ).values_list("project_id", "phone_number")
    )
    now = timezone.now()
    rows = []
    for (project_id, n), text in sorted(first.items()):
        if (project_id, n) in known:
            continue
        row = ledger.entry(n, "opt_in", "whatsapp", created_on=now, text_shown=WHATSAPP_OPT_IN)
        row.project_id, row.answer = project_id, text[:255]
        rows.append(row)
    if rows:
        ledger_written.send(ConsentRecord, records=ConsentRecord.objects.bulk_create(rows))
    return len(rows)
