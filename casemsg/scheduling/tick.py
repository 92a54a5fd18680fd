"""The scheduler tick: send what is due, advance each instance, in batches.

One batch = one transaction: claim up to `batch` due instances (`casemsg.core.claims`: `FOR UPDATE SKIP
LOCKED` on PostgreSQL, so tickers on several workers take disjoint rows; SQLite's IMMEDIATE transactions
queue writers), queue their messages through the one send pipeline
(`pipeline.queue`, precheck off: eligibility runs at send time as for every message), and move each
instance to its next event or end it. A crash anywhere rolls the whole batch back; and each message
carries the unique send key ``si:<instance id>:<iteration>``, inserted with ON CONFLICT DO NOTHING, so
an occurrence is queued once even if a tick ever ran twice over the same instance.

The claim reads the partial index ``schedule_instance_due`` (active rows by due time), so a tick costs
what is due, not what exists. Paused owners' instances have no due time (they are not even read).

A broadcast whose recipients can change (a case type, a group, case owners, every mobile worker) reads
them again at each occurrence: before any batch, `refresh_broadcasts` takes each broadcast whose
``refresh_due_utc`` has come (one transaction each, its row locked: `FOR UPDATE SKIP LOCKED` on
PostgreSQL) and syncs its instances (`lifecycle.sync_broadcast`: those who left end, those who joined start
with the occurrence due then); the claim skips the instances of a broadcast whose refresh is due, so no
message goes to a recipient that left before the refresh has ended its instance, whichever worker ticks.

What one due instance does (`casemsg.scheduling.occurrences`): an event more than the owner's
``max_lateness_minutes`` late (a worker was down) is skipped and recorded in the instance's ``last_event``,
and when several events are due at once only the latest is sent: a backlog never turns into a burst.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from casemsg.core import bulk, claims, errors
from casemsg.core.errors import InputError
from casemsg.messaging import pipeline
from casemsg.messaging.models import MessagingEvent
from casemsg.projects.models import Project
from casemsg.scheduling import lifecycle, occurrences
from casemsg.scheduling.events import Due
from casemsg.scheduling.lifecycle import COMPLETED
from casemsg.scheduling.models import Broadcast, ScheduleInstance
from casemsg.surveys import engine as survey_engine
from casemsg.surveys.models import Survey

BATCH = 1000
_Plans = dict[tuple[str, int], occurrences.Plan]  # the owners of a batch, by ("broadcast" | "alert", pk)
_TABLE = ScheduleInstance._meta.db_table
_FIELDS = [
    "iteration",
    "next_due_utc",
    "next_local",
    "active",
    "claim",
    "claimed_on",
    "ended_on",
    "end_reason",
    "last_event",
]


def tick(now: datetime | None = None, batch: int = BATCH, max_batches: int | None = None) -> int:
    """Process every instance due at `now` (default: the clock), `batch` per transaction, at most
    `max_batches` batches; returns how many instances were processed."""
    now = now or timezone.now()
    refresh_broadcasts(now)
    done = batches = 0
    finished: set[int] = set()
    while max_batches is None or batches < max_batches:
        n, ended = _batch(now, batch)
        done += n
        batches += 1
        finished |= ended
        if n < batch:
            break
    if finished:
        # After the commits: the last ticker to end a broadcast's instances sees every other one's too.
        _mark_done(finished, now)
    return done


_CLAIMED = ("pk", "broadcast_id", "time_zone", "anchor_utc", "iteration", "next_due_utc", "next_local")


def refresh_broadcasts(now: datetime, limit: int = 100) -> int:
    """Read again the recipients of every broadcast whose refresh is due (at most `limit`), each in its own
    transaction with its row locked (another ticker skips it): `lifecycle.sync_broadcast` at the refresh's
    instant, then the next refresh (its next occurrence in any recipient's zone; None when none is left,
    and then a broadcast left with no running instance is done). Returns how many were refreshed."""
    done = 0
    if not Broadcast.objects.filter(status=Broadcast.ACTIVE, refresh_due_utc__lte=now).exists():
        return 0  # (the idle tick's one query for this)
    while done < limit:
        with transaction.atomic():
            due = Broadcast.objects.filter(status=Broadcast.ACTIVE, refresh_due_utc__lte=now).order_by(
                "refresh_due_utc", "pk"
            )
            if connection.features.has_select_for_update_skip_locked:
                due = due.select_for_update(skip_locked=True)
            b = due.select_related("project").first()
            if b is None:
                return done
            at = b.refresh_due_utc
            assert at is not None
            started, ended, b.refresh_due_utc = lifecycle.sync_broadcast(b, at, now)
            fields = ["refresh_due_utc"]
            if b.refresh_due_utc is None and not lifecycle.owner_instances(b).filter(active=True).exists():
                b.status, b.modified_on = Broadcast.DONE, now
                fields += ["status", "modified_on"]
            b.save(update_fields=fields)
            occurrences.log.info(
                "broadcast %s: recipients read at %s: %s joined, %s left", b.pk, at.isoformat(), started, ended
            )
        done += 1
    return done


def _claim(now: datetime, size: int) -> list[tuple[Any, ...]]:
    """Claim up to `size` due instances (core.claims: rows another ticker is claiming are skipped); returns
    their `_CLAIMED` values, by due time. The instances of a broadcast whose recipients are being read again
    (its refresh is due) wait for the refresh."""
    refreshing = Broadcast.objects.filter(pk=OuterRef("broadcast_id"), refresh_due_utc__lte=now)
    due = ScheduleInstance.objects.filter(active=True, next_due_utc__lte=now).filter(~Exists(refreshing))
    ids = claims.claim_ids(due, order_by=["next_due_utc"], limit=size, claim=uuid.uuid4().hex, claimed_on=now)
    if not ids:
        return []
    return list(ScheduleInstance.objects.filter(pk__in=ids).order_by("next_due_utc", "pk").values_list(*_CLAIMED))


def _batch(now: datetime, size: int) -> tuple[int, set[int]]:
    with transaction.atomic():
        claimed = _claim(now, size)
        if not claimed:
            return 0, set()
        broadcasts = Broadcast.objects.in_bulk({row[1] for row in claimed if row[1]})
        plans: dict[tuple[str, int], occurrences.Plan] = {
            ("broadcast", pk): occurrences.Plan.of(b) for pk, b in broadcasts.items()
        }
        # Broadcast instances whose events are the same for everyone in a zone (no random pick, no property)
        # advance set-wise: one decision per (broadcast, zone, anchor, event), one INSERT … SELECT of their
        # messages and one UPDATE of the instances. The others go instance by instance.
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        rest: list[int] = []
        for row in claimed:
            plan = plans.get(("broadcast", row[1])) if row[1] else None
            if plan is not None and _set_wise(plan):
                groups[row[1:]].append(row[0])
            else:
                rest.append(row[0])
        projects = Project.objects.in_bulk({b.project_id for b in broadcasts.values()})
        ended: set[int] = set()
        for key, ids in groups.items():
            plan = plans[("broadcast", key[0])]
            where = f"i.id IN ({', '.join(['%s'] * len(ids))})"
            if _advance_group(key, where, ids, plan, projects[plan.owner.project_id], now):
                ended.add(plan.owner.pk)
        if rest:
            ended |= _advance_each(
                list(ScheduleInstance.objects.filter(pk__in=rest).order_by("next_due_utc", "pk")), plans, now
            )
    return len(claimed), ended


def _set_wise(plan: occurrences.Plan) -> bool:
    """Whether every instance of this owner due at the same event in one zone does the same thing."""
    return (
        isinstance(plan.owner, Broadcast)
        and plan.owner.status == Broadcast.ACTIVE
        and not plan.schedule.per_recipient
        and plan.content.channel != "survey"
        and (plan.content.channel == "sms" or not plan.content.subject_translations)
    )


def _advance_group(
    key: tuple[Any, ...], where: str, params: list[Any], plan: occurrences.Plan, project: Project, now: datetime
) -> bool:
    """Advance the instances selected by `where` (SQL over the instance table aliased `i`, with `params`),
    which share owner, zone, anchor and next event (`key`): decide once on a stand-in, queue their messages
    with one INSERT … SELECT (send keys built in SQL) and write them with one UPDATE. Returns whether they
    ended."""
    broadcast_id, zone, anchor, iteration, due, local = key
    rep = ScheduleInstance(
        pk=0,
        broadcast_id=broadcast_id,
        time_zone=zone,
        anchor_utc=anchor,
        iteration=iteration,
        next_due_utc=due,
        next_local=local,
        active=True,
        last_event={},
    )
    spec = occurrences.advance(rep, plan, project, now, None, {})
    table = connection.ops.quote_name(_TABLE)
    sent = _sent(spec) if spec is not None else ""
    if spec is not None:
        event = MessagingEvent(pk=plan.event_id(), project_id=project.pk)
        pipeline.queue_select(
            project,
            spec,
            event,
            f"{table} AS i WHERE {where}",
            params,
            {"case_id": "i.case_id", "worker_id": "i.worker_id", "send_key": f"'si:' || i.id || ':{sent}'"},
        )
    meta = ScheduleInstance._meta
    values: list[Any] = []
    sets: list[str] = []
    for name in _FIELDS:
        field = meta.get_field(name)
        value = field.get_db_prep_save(getattr(rep, name), connection)  # type: ignore[union-attr]
        if name == "last_event" and "send_key" in rep.last_event:
            # the stand-in's key is its own: each instance records its own
            sets.append(
                f"last_event = jsonb_set(CAST(%s AS jsonb), '{{send_key}}', to_jsonb('si:' || id || ':{sent}'))"
                if settings.IS_POSTGRES
                else f"last_event = json_set(%s, '$.send_key', 'si:' || id || ':{sent}')"
            )
            values.append(value)
        else:
            sets.append(f"{connection.ops.quote_name(name)} = %s")
            values.append(value)
    with connection.cursor() as cur:
        # (the instance table is aliased `i` in `where`: the same rows as the INSERT … SELECT above)
        cur.execute(
            f"UPDATE {table} SET {', '.join(sets)} WHERE id IN (SELECT i.id FROM {table} AS i WHERE {where})",
            [*values, *params],
        )
    return not rep.active


def queues_at_start(broadcast: Broadcast) -> bool:
    """Whether `queue_started` queues this broadcast's due messages itself (`lifecycle.start_broadcast`'s
    `queued_now`): the owners whose instances advance set-wise (not a survey, no per-recipient times)."""
    return _set_wise(occurrences.Plan.of(broadcast))


def queue_started(broadcast: Broadcast, now: datetime) -> int:
    """Queue the messages of the instances `lifecycle.start_broadcast(…, queued_now=True)` just wrote
    completed (a "now" broadcast): one INSERT … SELECT per due instant — one for every zone at once, as
    "now" is the same instant everywhere —, whatever the number of recipients, send keys built in SQL.
    Their rows are this transaction's, so nothing needs claiming. Returns how many."""
    plan = occurrences.Plan.of(broadcast)
    if not _set_wise(plan):
        return 0
    project = broadcast.project
    fresh = ScheduleInstance.objects.filter(
        broadcast=broadcast, created_on=now, ended_on=now, active=False, end_reason=COMPLETED
    ).order_by()
    table = connection.ops.quote_name(_TABLE)
    at = connection.ops.adapt_datetimefield_value
    event = MessagingEvent(pk=plan.event_id(), project_id=project.pk)
    queued = 0
    # what a message needs of its event (its due instant, for send_after) is in each zone's last_event
    due_by_zone: dict[str, tuple[int, dict[str, Any]]] = {}
    for zone, iteration in fresh.values_list("time_zone", "iteration").distinct():
        last = fresh.filter(time_zone=zone, iteration=iteration).values_list("last_event", flat=True).first() or {}
        if last.get("outcome") == "queued":
            due_by_zone[zone] = (iteration, last)
    zones_by_due: dict[tuple[int, str], list[str]] = defaultdict(list)
    for zone, (iteration, last) in due_by_zone.items():
        zones_by_due[(iteration, last["due_utc"])].append(zone)
    for (iteration, due_utc), zones in zones_by_due.items():
        last = due_by_zone[zones[0]][1]
        due = Due(datetime.fromisoformat(due_utc), datetime.fromisoformat(last["local"]), iteration)
        rep = ScheduleInstance(pk=0, broadcast_id=broadcast.pk, time_zone=zones[0], iteration=iteration)
        spec = occurrences.message(rep, plan, project, due, occurrences.send_key(0, iteration), {})
        queued += pipeline.queue_select(
            project,
            spec,
            event,
            f"{table} AS i WHERE i.broadcast_id = %s AND i.created_on = %s AND i.ended_on = %s AND NOT i.active "
            f"AND i.end_reason = %s AND i.iteration = %s AND i.time_zone IN ({', '.join(['%s'] * len(zones))})",
            [broadcast.pk, at(now), at(now), COMPLETED, iteration, *zones],
            {"case_id": "i.case_id", "worker_id": "i.worker_id", "send_key": f"'si:' || i.id || ':{int(iteration)}'"},
        )
    return queued


def _sent(spec: pipeline.MessageSpec) -> str:
    """The iteration of the stand-in's send key (si:<pk>:<iteration>), as an SQL literal."""
    return str(int(spec.send_key.rsplit(":", 1)[1]))


def _advance_each(
    insts: list[ScheduleInstance], plans: dict[tuple[str, int], occurrences.Plan], now: datetime
) -> set[int]:
    """Advance these claimed instances one by one (the general path); returns the broadcasts ended."""
    for key, owner in occurrences.owners(insts).items():
        if key not in plans:
            plans[key] = occurrences.Plan.of(owner)
    projects = Project.objects.in_bulk({i.project_id for i in insts})
    props = occurrences.source_properties(insts, plans)
    languages = occurrences.languages(insts, plans)
    groups: dict[tuple[int, int], list[pipeline.MessageSpec]] = defaultdict(list)
    surveys: dict[tuple[int, int, int], list[tuple[ScheduleInstance, pipeline.MessageSpec]]] = defaultdict(list)
    ended: set[int] = set()
    for inst in insts:
        plan = plans[occurrences.owner_key(inst)]
        project = projects[inst.project_id]
        spec = occurrences.advance(inst, plan, project, now, props.get(inst.source_case_id or 0), languages)
        inst.claim, inst.claimed_on = "", None
        if spec is not None and plan.content.channel == "survey":
            surveys[(inst.project_id, plan.content.survey_id or 0, plan.event_id())].append((inst, spec))
        elif spec is not None:
            groups[(inst.project_id, plan.event_id())].append(spec)
        if not inst.active and isinstance(plan.owner, Broadcast):
            ended.add(plan.owner.pk)
    for (project_id, event_id), message_specs in groups.items():
        event = MessagingEvent(pk=event_id, project_id=project_id)
        pipeline.queue(projects[project_id], message_specs, event, precheck=False)
    if surveys:
        _start_surveys(surveys, projects, now)
    bulk.update_rows(insts, _FIELDS)
    return ended


def _start_surveys(
    due: dict[tuple[int, int, int], list[tuple[ScheduleInstance, pipeline.MessageSpec]]],
    projects: dict[int, Project],
    now: datetime,
) -> None:
    """Survey content: each due occurrence starts a session (its first question carries the occurrence's
    send key); an occurrence whose case cannot take the survey now records why in the instance."""
    found = Survey.objects.select_related("current_version").in_bulk({survey_id for _p, survey_id, _e in due})
    for (project_id, survey_id, event_id), items in due.items():
        project = projects[project_id]
        survey = found.get(survey_id)
        event = MessagingEvent(pk=event_id, project_id=project_id)
        starts = [(spec.case.pk, spec.send_key) for _inst, spec in items if spec.case is not None]
        if survey is None:
            gone = InputError(errors.SURVEY_NOT_FOUND, f"Survey {survey_id} was deleted.", 404)
            outcome: dict[str, InputError | None] = {key: gone for _pk, key in starts}
        else:
            opening = items[0][1].whatsapp  # the content's WhatsApp opening template, if it names one
            outcome = survey_engine.start_many(project, survey, starts, event, now, opening=opening)
        for inst, spec in items:
            problem = outcome.get(spec.send_key)
            if problem is not None:
                inst.last_event = {
                    **inst.last_event,
                    "outcome": "not_sent",
                    "error": problem.code,
                    "detail": problem.message,
                }


def _mark_done(broadcast_pks: set[int], now: datetime) -> None:
    """Broadcasts whose last active instance ended are done."""
    for pk in sorted(broadcast_pks):
        live = ScheduleInstance.objects.filter(broadcast_id=pk, active=True)
        if live.filter(case__isnull=False).exists() or live.filter(worker__isnull=False).exists():
            continue
        # (one that reads its recipients again at a coming occurrence is not done: they may join)
        Broadcast.objects.filter(pk=pk, status=Broadcast.ACTIVE, refresh_due_utc__isnull=True).update(
            status=Broadcast.DONE, modified_on=now
        )


def has_due(now: datetime | None = None) -> bool:
    at = now or timezone.now()
    return (
        ScheduleInstance.objects.filter(active=True, next_due_utc__lte=at).exists()
        or Broadcast.objects.filter(status=Broadcast.ACTIVE, refresh_due_utc__lte=at).exists()
    )
