"""DHIS2: a tracker program's tracked entities (the Tracker API, DHIS2 2.41 and later).

Reading: `GET {base_url}/api/tracker/trackedEntities?program=…&orgUnits=…&orgUnitMode=…&updatedAfter=…
&order=updatedAt:asc&includeDeleted=true&fields=…&page=…&pageSize=…` with `Authorization: ApiToken
{api_token}` (a personal access token, DHIS2 2.37+) or Basic `username`/`password`. Pages are read in
`updatedAt` order, and each next page starts from the last one's `updatedAt` (less a millisecond) rather than
from a page number, so a tracked entity changed while the sync reads moves nothing under it; only when a whole
page shares one `updatedAt` does the page number go up. A tracked entity's `trackedEntity` uid is the case id,
its org unit the owner, and its attributes the fields the mapping reads, named by their uid (the pages show
each attribute's name beside it), with the program enrollment's `enrollment.enrolledAt`,
`enrollment.occurredAt` and `enrollment.status`; a deleted or inactive tracked entity closes its case. The
watermark is `updatedAt` (a time without an offset is read as UTC). A DHIS2 source needs its `case_type`.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any, ClassVar

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.sources.base import Field, Page, Record, SourceType, iso, parse_time
from casemsg.sources.client import SourceError, where

FIELDS = (
    "trackedEntity,trackedEntityType,orgUnit,createdAt,updatedAt,inactive,deleted,"
    "attributes[attribute,code,displayName,value],enrollments[enrollment,program,status,enrolledAt,occurredAt]"
)
MODES = ("SELECTED", "CHILDREN", "DESCENDANTS")


def record(doc: Any, program: str) -> Record:
    if not isinstance(doc, dict):
        raise SourceError(errors.SOURCE_BAD_ANSWER, "A DHIS2 tracked entity is not a JSON object.")
    fields: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for a in doc.get("attributes") or []:
        if isinstance(a, dict) and a.get("attribute"):
            uid = str(a["attribute"])
            fields[uid] = a.get("value")
            if a.get("displayName"):
                labels[uid] = str(a["displayName"])
    for e in doc.get("enrollments") or []:
        if isinstance(e, dict) and e.get("program") in (None, program):
            for key in ("enrolledAt", "occurredAt", "status"):
                if key in e:
                    fields[f"enrollment.{key}"] = e[key]
            break
    return Record(
        id=str(doc.get("trackedEntity") or doc.get("trackedEntityInstance") or ""),
        owner_id=str(doc["orgUnit"]) if doc.get("orgUnit") else None,
        closed=bool(doc.get("deleted")) or bool(doc.get("inactive")),
        modified=parse_time(doc.get("updatedAt") or doc.get("lastUpdated")),
        fields=fields,
        labels=labels,
    )


class Dhis2Source(SourceType):
    type_name = "dhis2"
    title = "DHIS2 tracker"
    description = "The tracked entities of a DHIS2 tracker program, in some org units."
    config_schema: ClassVar[dict[str, Field]] = {
        "base_url": Field(required=True, url=True, help="DHIS2's address, e.g. https://dhis2.example.org."),
        "program": Field(required=True, help="The tracker program's uid."),
        "org_units": Field("list", required=True, help="The org units' uids."),
        "org_unit_mode": Field(choices=MODES, default="DESCENDANTS", help="SELECTED, CHILDREN or DESCENDANTS."),
        "api_token": Field(secret=True, help="A personal access token (d2pat_…)."),
        "username": Field(help="Or a user name (with password)."),
        "password": Field(secret=True, help="That user's password."),
        "page_size": Field("number", default=1000, help="Tracked entities per page."),
    }

    @classmethod
    def check_config(cls, config: Any) -> None:
        if not config.get("api_token") and not (config.get("username") and config.get("password")):
            raise InputError(errors.INVALID_SOURCE_CONFIG, "A DHIS2 source needs api_token, or username and password.")

    def _headers(self) -> dict[str, str]:
        token = self.config.get("api_token")
        if token:
            auth = f"ApiToken {token}"
        else:
            pair = f"{self.config.get('username', '')}:{self.config.get('password', '')}".encode()
            auth = "Basic " + base64.b64encode(pair).decode()
        return {"Authorization": auth, "Accept": "application/json"}

    def first(self, since: datetime | None) -> dict[str, Any]:
        return {"after": iso(since, 3) if since is not None else None, "page": 1}

    def page(self, cursor: dict[str, Any]) -> Page:
        url = str(self.config["base_url"]).rstrip("/") + "/api/tracker/trackedEntities"
        number = int(cursor.get("page") or 1)
        params = [
            ("program", str(self.config["program"])),
            ("orgUnits", ",".join(self.config.get("org_units") or [])),
            ("orgUnitMode", str(self.setting("org_unit_mode"))),
            ("fields", FIELDS),
            ("order", "updatedAt:asc"),
            ("page", str(number)),
            ("pageSize", str(self.page_size)),
            ("totalPages", "true" if cursor.get("count", True) else "false"),
            ("includeDeleted", "true"),  # a deleted tracked entity closes its case
        ]
        after = cursor.get("after")
        if after:
            params.append(("updatedAfter", str(after)))
        doc, reply = self.client.get_json(url, params=params, headers=self._headers())
        items = None
        if isinstance(doc, dict):
            items = doc.get("trackedEntities", doc.get("instances"))
        if not isinstance(items, list):
            raise SourceError(
                errors.SOURCE_BAD_ANSWER, f"{where(url)} did not answer a page of tracked entities ('trackedEntities')."
            )
        pager = doc.get("pager") if isinstance(doc.get("pager"), dict) else doc
        total = pager.get("total")
        records = [record(d, str(self.config["program"])) for d in items]
        following = None
        if len(items) >= self.page_size:
            last = records[-1].modified
            bound = last - timedelta(milliseconds=1) if last is not None else None
            old = parse_time(after) if after else None
            if bound is not None and (old is None or bound > old):
                following = {"after": iso(bound, 3), "page": 1, "count": False}
            else:
                following = {"after": after, "page": number + 1, "count": False}
        return Page(
            records,
            following,
            total=total if isinstance(total, int) and not isinstance(total, bool) and number == 1 else None,
            clock=reply.date,
        )
