"""The reports: the messaging history by source (per day, by status and error), a broadcast's or an alert's
delivery report (per day it sent on) and the consent and opt-out report. Days are the project's (its time zone);
the counts equal the message log (casemsg.messaging.reports)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from casemsg.api.core import READ, project_for
from casemsg.consent import reports as consent_reports
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.messaging import reports
from casemsg.scheduling import queries as scheduling_queries

router = Router(tags=["reports"])


class TallyOut(Schema):
    messages: int
    by_status: dict[str, int] = Field(description="queued, sending, sent, delivered, failed, received")
    failed_by_error: dict[str, int] = Field(description="The failed messages by error code.")


def _tally(t: reports.Tally) -> dict[str, Any]:
    return {"messages": t.total, "by_status": dict(t.by_status), "failed_by_error": dict(t.by_error)}


class DayOut(TallyOut):
    day: date


class SourceOut(TallyOut):
    source: str = Field(description="broadcast, alert, survey, keyword, api, person, system, inbound, '' (none)")
    ref: str = Field("", description="A person's username, a broadcast's or an alert's id (the named rows).")
    name: str


class HistoryOut(Schema):
    since: date
    until: date
    time_zone: str
    total: TallyOut
    days: list[DayOut]
    sources: list[SourceOut]
    named: list[SourceOut] = Field(description="Each person, broadcast and alert with messages in the range.")


def _range(p: Any, since: date | None, until: date | None, default_days: int = 30) -> tuple[date, date]:
    if since and until and since > until:
        raise InputError(errors.VALIDATION_ERROR, "since must not be after until.")
    return reports.checked_range(p, since, until, default_days)


@router.get("/projects/{project}/reports/history", auth=READ, response=HistoryOut)
def history(
    request: HttpRequest, project: str, since: date | None = None, until: date | None = None, channel: str = ""
) -> dict[str, Any]:
    """The messages of since…until (the project's days, both included; the last 30 days by default, 400 at
    most) by source, per day, by status and by error."""
    p = project_for(request, project)
    if channel not in ("", "sms", "email"):
        raise InputError(errors.VALIDATION_ERROR, "channel must be sms or email.")
    s, u = _range(p, since, until)
    h = reports.history(p, s, u, channel or None)

    def row(r: reports.SourceRow) -> dict[str, Any]:
        return {"source": r.source, "ref": r.ref, "name": r.name, **_tally(r.tally)}

    return {
        "since": h.since,
        "until": h.until,
        "time_zone": h.zone,
        "total": _tally(h.total),
        "days": [{"day": d, **_tally(h.by_day[d])} for d in h.days],
        "sources": [row(r) for r in h.sources],
        "named": [row(r) for r in h.named],
    }


class DeliveryOut(Schema):
    since: date
    until: date
    total: TallyOut
    days: list[DayOut] = Field(description="The days it sent on, oldest first.")


def _delivery(p: Any, kind: str, owner_id: int, since: date | None, until: date | None) -> dict[str, Any]:
    first = reports.first_day(p, kind, owner_id) or reports.today(p)
    s, u = _range(p, since or first, until)
    d = reports.delivery(p, kind, owner_id, s, u)
    return {"since": s, "until": u, "total": _tally(d.total), "days": [{"day": day, **_tally(t)} for day, t in d.days]}


@router.get("/projects/{project}/reports/broadcasts/{broadcast_id}", auth=READ, response=DeliveryOut)
def broadcast_delivery(
    request: HttpRequest, project: str, broadcast_id: int, since: date | None = None, until: date | None = None
) -> dict[str, Any]:
    """A broadcast's delivery report: its messages per day it sent on, by status and by error code."""
    p = project_for(request, project)
    if scheduling_queries.broadcast(p, broadcast_id) is None:
        raise InputError(errors.BROADCAST_NOT_FOUND, f"No broadcast {broadcast_id} in this project.", 404)
    return _delivery(p, reports.BROADCAST, broadcast_id, since, until)


@router.get("/projects/{project}/reports/alerts/{alert_id}", auth=READ, response=DeliveryOut)
def alert_delivery(
    request: HttpRequest, project: str, alert_id: int, since: date | None = None, until: date | None = None
) -> dict[str, Any]:
    """An alert's delivery report: its messages per day it sent on, by status and by error code."""
    p = project_for(request, project)
    if scheduling_queries.alert(p, alert_id) is None:
        raise InputError(errors.ALERT_NOT_FOUND, f"No alert {alert_id} in this project.", 404)
    return _delivery(p, reports.ALERT, alert_id, since, until)


class ConsentDayOut(Schema):
    day: date
    kinds: dict[str, int]


class ConsentOut(Schema):
    since: date
    until: date
    time_zone: str
    totals: dict[str, int] = Field(description="consent, refusal, opt_out, opt_in, request, expired")
    by_source: dict[str, dict[str, int]]
    days: list[ConsentDayOut]
    opted_out_now: int = Field(description="How many of the project's numbers are opted out now.")


@router.get("/projects/{project}/reports/consent", auth=READ, response=ConsentOut)
def consent(request: HttpRequest, project: str, since: date | None = None, until: date | None = None) -> dict[str, Any]:
    """The consent ledger of since…until (the project's days) by kind, per day and by how it came in."""
    p = project_for(request, project)
    s, u = _range(p, since, until)
    r = consent_reports.report(p, s, u)
    return {
        "since": r.since,
        "until": r.until,
        "time_zone": r.zone,
        "totals": r.totals,
        "by_source": r.by_source,
        "days": [{"day": d, "kinds": r.by_day[d]} for d in r.days],
        "opted_out_now": r.opted_out_now,
    }
