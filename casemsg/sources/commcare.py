"""CommCare HQ: the Case API v2, and Data Forwarding's case posts.

Reading (`GET {base_url}/a/{domain}/api/case/v2/?case_type=…&indexed_on.gte=…&limit=…`, header
`Authorization: ApiKey {username}:{api_key}`): pages in `indexed_on` order, each `{"matching_records",
"cases": [...], "next": "<url with a cursor>"}`; the `next` link is followed as it is (on the same host)
until there is none. A case keeps its CommCare `case_id` as its casemsg case id (so the seeds' case ids
match), `indices.parent` becomes `parent_id`, `closed: true` closes it, and `properties` are the case
properties the mapping reads. The watermark is `indexed_on`.

Data Forwarding (Project Settings → Data Forwarding → Forward Cases, to the source's receiver URL):
CommCare posts one case per request as JSON in its v0.5 shape (`case_type`, `case_name`, `owner_id` inside
`properties`); it is applied like a page of one. The URL holds the source's secret key; set
`forwarding_password` (and `forwarding_username`) to require CommCare's Basic authentication too.

Config: `base_url` (default https://www.commcarehq.org), `domain`, `case_types` (empty: every type),
`username` (the web user's e-mail) and `api_key` (Settings → My Account Settings → API Key), `page_size`
(at most 5,000, CommCare's limit).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from yarl import URL

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.sources.base import Field, Page, Record, SourceType, iso, parse_time
from casemsg.sources.client import SourceError, where

_SYSTEM = ("case_name", "case_type", "owner_id", "external_id")


def record(doc: Any) -> Record:
    """A CommCare case (v2 or the v0.5 shape Data Forwarding posts) as a Record."""
    if not isinstance(doc, dict):
        raise SourceError(errors.SOURCE_BAD_ANSWER, "A CommCare case is not a JSON object.")
    props = doc.get("properties")
    fields: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
    popped = {k: fields.pop(k) for k in _SYSTEM if k in fields}

    def top(key: str) -> Any:
        return doc[key] if key in doc else popped.get(key)

    raw_indices = doc.get("indices")
    indices: dict[str, Any] = raw_indices if isinstance(raw_indices, dict) else {}
    raw_parent = indices.get("parent")
    parent: dict[str, Any] = raw_parent if isinstance(raw_parent, dict) else {}
    parent_id = parent.get("case_id") or parent.get("referenced_id")
    modified = (
        parse_time(doc.get("indexed_on"))
        or parse_time(doc.get("server_date_modified"))
        or parse_time(doc.get("server_last_modified"))
        or parse_time(doc.get("date_modified"))
        or parse_time(doc.get("last_modified"))
    )
    name, owner, external = top("case_name"), top("owner_id"), top("external_id")
    return Record(
        id=str(doc.get("case_id") or doc.get("id") or ""),
        case_type=str(top("case_type") or ""),
        name=None if name is None else str(name),
        owner_id=None if owner is None else str(owner),
        external_id=None if external is None else str(external),
        parent_id=None if parent_id is None else str(parent_id),
        closed=bool(doc.get("closed")),
        modified=modified,
        fields=fields,
    )


class CommCareSource(SourceType):
    type_name = "commcare"
    title = "CommCare HQ"
    description = "Cases from CommCare HQ's Case API v2, and its Data Forwarding posts."
    record_case_type = True
    receives = True
    config_schema: ClassVar[dict[str, Field]] = {
        "base_url": Field(
            url=True, default="https://www.commcarehq.org", help="CommCare HQ's address (default www.commcarehq.org)."
        ),
        "domain": Field(required=True, help="The project space, as in /a/<domain>/ in CommCare's URLs."),
        "case_types": Field("list", help="The case types to read; empty: every type."),
        "username": Field(required=True, help="The web user's e-mail address the API key belongs to."),
        "api_key": Field(required=True, secret=True, help="The web user's API key (My Account Settings → API Key)."),
        "page_size": Field("number", default=1000, help="Cases per page (at most 5,000)."),
        "forwarding_username": Field(help="Data Forwarding: the Basic authentication user name CommCare sends."),
        "forwarding_password": Field(
            secret=True, help="Data Forwarding: require this Basic authentication password on posts."
        ),
    }

    @property
    def page_size(self) -> int:
        return min(super().page_size, 5000)

    def _base(self) -> str:
        return str(self.setting("base_url")).rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"ApiKey {self.config.get('username', '')}:{self.config.get('api_key', '')}",
            "Accept": "application/json",
        }

    def first(self, since: datetime | None) -> dict[str, Any]:
        params: list[list[str]] = [["limit", str(self.page_size)]]
        for t in self.config.get("case_types") or []:
            params.append(["case_type", t])
        if since is not None:
            params.append(["indexed_on.gte", iso(since)])
        return {"url": f"{self._base()}/a/{self.config['domain']}/api/case/v2/", "params": params}

    def page(self, cursor: dict[str, Any]) -> Page:
        url = str(cursor["url"])
        params = [tuple(p) for p in cursor.get("params") or []]
        doc, reply = self.client.get_json(url, params=params or None, headers=self._headers())
        if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
            raise SourceError(
                errors.SOURCE_BAD_ANSWER, f"{where(url)} did not answer a Case API v2 page (no 'cases' list)."
            )
        nxt = doc.get("next")
        following = None
        if isinstance(nxt, str) and nxt:
            absolute = URL(url).join(URL(nxt))
            if (absolute.scheme, absolute.host, absolute.port) != (URL(url).scheme, URL(url).host, URL(url).port):
                raise SourceError(errors.SOURCE_BAD_ANSWER, f"{where(url)} sent a next link to another host.")
            following = {"url": str(absolute)}
        total = doc.get("matching_records")
        return Page(
            [record(c) for c in doc["cases"]],
            following,
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
            clock=reply.date,
        )

    # --- Data Forwarding ---------------------------------------------------------------------------
    def verify_post(self, body: bytes, headers: Mapping[str, str]) -> None:
        password = str(self.config.get("forwarding_password") or "")
        if not password:
            return  # the secret key in the URL is the authentication
        header = headers.get("authorization", "")
        user, given = "", ""
        if header.lower().startswith("basic "):
            try:
                user, _, given = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, given = "", ""
        want_user = str(self.config.get("forwarding_username") or "")
        ok_user = not want_user or hmac.compare_digest(user.encode(), want_user.encode())
        if not (ok_user and hmac.compare_digest(given.encode(), password.encode())):
            raise InputError(errors.FORBIDDEN, "Wrong or missing Basic authentication for this source.", 403)

    def parse_post(self, body: bytes, headers: Mapping[str, str]) -> list[Record]:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(errors.INVALID_WEBHOOK, f"The body is not JSON: {exc}", 400) from exc
        docs = doc if isinstance(doc, list) else doc.get("cases", [doc]) if isinstance(doc, dict) else None
        if not isinstance(docs, list) or not docs or len(docs) > 1000:
            raise InputError(errors.INVALID_WEBHOOK, "Post one CommCare case (a JSON object), or up to 1,000.", 400)
        try:
            return [record(d) for d in docs]
        except SourceError as exc:
            raise InputError(errors.INVALID_WEBHOOK, exc.message, 400) from exc
