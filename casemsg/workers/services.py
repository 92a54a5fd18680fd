"""The only write path for mobile workers; the after-change hook (`casemsg.workers.signals`) lets the
phone registry follow in the same transaction.

Unlike case properties, a worker's phone numbers are entered directly, so a bad number is rejected
(422 with the catalogue's code) rather than saved.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from casemsg.core import errors, phone
from casemsg.core.errors import InputError
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker
from casemsg.workers.signals import workers_changed, workers_deleting


@dataclass
class WorkerChange:
    username: str | None = None
    name: str | None = None
    active: bool | None = None
    phone_numbers: list | None = None  # strings or {"number": …, "verified": bool}
    email: str | None = None
    time_zone: str | None = None
    language_code: str | None = None


def _numbers(project: Project, items: list, current: list[dict]) -> list[dict]:
    previous = {p["number"]: bool(p.get("verified")) for p in current}
    out: list[dict] = []
    for item in items:
        if isinstance(item, dict):
            raw, verified = item.get("number"), item.get("verified")
        else:
            raw, verified = item, None
        local = phone.local_fix(raw, project.default_country)  # 0711 222 333 in a KE project: 254711222333
        chk = phone.check(local.number if local else raw, auto_fix=project.auto_normalize_phone_numbers)
        if not chk.ok:
            code = errors.INVALID_PHONE_NUMBER if chk.error in (None, errors.NO_PHONE_NUMBER) else chk.error
            msg = chk.message if chk.error != errors.NO_PHONE_NUMBER else "A phone number is blank."
            raise InputError(code, msg + (f" {chk.fix}." if chk.fix else ""))
        if any(p["number"] == chk.number for p in out):
            continue
        # Keeping a number keeps its verification; a new number starts unverified unless said.
        v = previous.get(chk.number, False) if verified is None else bool(verified)
        out.append({"number": chk.number, "verified": v})
    return out


# The text columns' lengths, checked before the database sees a value.
_MAX_LEN: dict[str, int] = {
    f: MobileWorker._meta.get_field(f).max_length or 0  # type: ignore[union-attr]  # all are CharFields
    for f in ("username", "name", "email", "time_zone", "language_code")
}


def _apply(project: Project, worker: MobileWorker, change: WorkerChange) -> None:
    for f in ("username", "name", "email", "time_zone", "language_code"):
        v = getattr(change, f)
        if v is not None:
            v = v.strip()
            limit = _MAX_LEN[f]
            if len(v) > limit:
                raise InputError(errors.VALUE_TOO_LONG, f"{f} is longer than {limit} characters.")
            if "\x00" in v:
                # PostgreSQL cannot store NUL; refuse it on every database alike.
                raise InputError(errors.INVALID_VALUE, f"{f} contains a NUL character.")
            setattr(worker, f, v)
    if change.active is not None:
        worker.active = change.active
    if change.phone_numbers is not None:
        worker.phone_numbers = _numbers(project, change.phone_numbers, worker.phone_numbers or [])
    if not worker.username:
        raise InputError(errors.USERNAME_REQUIRED, "username is required.")


def create_worker(project: Project, change: WorkerChange) -> MobileWorker:
    return update_worker(project, MobileWorker(project=project), change)


def update_worker(project: Project, worker: MobileWorker, change: WorkerChange) -> MobileWorker:
    """Create (an unsaved worker) or update; the registry follows in the same transaction."""
    previous = {worker.pk: list(worker.phone_numbers or [])} if worker.pk else {}
    _apply(project, worker, change)
    try:
        with transaction.atomic():
            worker.save()
            workers_changed.send(MobileWorker, project=project, workers=[worker], previous=previous)
    except IntegrityError as exc:
        raise InputError(errors.USERNAME_TAKEN, f"A mobile worker named '{worker.username}' exists.", 409) from exc
    return worker


def delete_worker(worker: MobileWorker) -> None:
    with transaction.atomic():
        workers_deleting.send(MobileWorker, project=worker.project, workers=[worker])
        worker.delete()
