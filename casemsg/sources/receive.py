"""Receivers: a source's system posts cases to `/api/v1/sources/{receive_key}/receive` (CommCare's Data
Forwarding, the `push` type's signed JSON).

The secret key in the URL finds the source (it is unique, and compared in the database, never shown but
to the project's owners and keys with `write`); the type then checks its own authentication (CommCare's
Basic authentication when set, `push`'s HMAC signature) before anything of the body is read. A post
carries the authority of its source's project only: its cases are written to that project, whatever
case ids or project names it holds, and so a receiver URL of one project can never change another's
cases. The records go through the same path as a page of a sync (`casemsg.sources.apply`), in one
transaction; the posts of one day are counted in one run (`runs.receiving_run`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from casemsg.core import actor, errors
from casemsg.core.errors import InputError
from casemsg.sources import apply, runs
from casemsg.sources.models import Source
from casemsg.sources.registry import SOURCE_TYPES

_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def source_for(key: str) -> Source:
    refused = InputError(errors.FORBIDDEN, "Unknown source or wrong key.", 403)
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise refused
    source = Source.objects.select_related("project").filter(receive_key=key).first()
    if source is None:
        raise refused
    kind = SOURCE_TYPES.get(source.type)
    if kind is None or not kind.receives:
        raise refused
    if not source.active:
        raise InputError(errors.FORBIDDEN, "This source is paused: its posts are refused until it is active.", 403)
    return source


def receive(key: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """Authenticate and apply one post; what happened to its cases."""
    source = source_for(key)
    kind = SOURCE_TYPES[source.type]
    reader = kind(source)
    lowered = {k.lower(): v for k, v in headers.items()}
    reader.verify_post(body, lowered)
    records = reader.parse_post(body, lowered)
    with actor.acting_as("import", runs.who(source)), transaction.atomic():
        run = runs.receiving_run(source)
        outcome = apply.apply_records(source, records, plan=apply.plan_for(source))
        runs.add_post(run, outcome, len(records))
    return {"received": len(records), **outcome.as_counts(), "errors": outcome.log}
