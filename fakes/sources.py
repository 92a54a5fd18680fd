"""Fake case systems on 127.0.0.1 speaking each one's documented API: CommCare HQ's Case API v2, ODK
Central's Entities OData feed (with its sessions), DHIS2's tracker API. casemsg's source types are tested
and benchmarked against these real HTTP servers (CONTRIBUTING.md, "Standards"), never against mocks.

Each fake keeps its cases in a `Store` whose clock only moves forward (every change gets a later
modification time, to the millisecond), and answers in the system's own shapes: its paging (CommCare's
`next` link with a cursor, ODK's `@odata.nextLink` with a `$skiptoken`, DHIS2's page numbers and pager),
its authentication (CommCare `ApiKey user:key`, ODK session tokens and app-user keys, DHIS2 `ApiToken` or
Basic) and its error bodies (401/403/404/429/500).

In-process (a daemon thread running its own loop)::

    with FakeSource("commcare") as fake:
        fake.add(250, case_type="mother")              # 250 cases with the seeds' contact properties
        fake.update("case-0001", edd="2025-03-01")      # a later modification time
        fake.close("case-0002"); fake.delete("…")       # CommCare closes; ODK deletes (deletedAt); DHIS2 deletes
        fake.fail(500, times=1)                         # the next data request answers 500, then normally
        fake.fail(429, times=1, retry_after="1")
        fake.latency = 0.2                              # every data answer 0.2 s late
        Source(type="commcare", config=fake.config())   # the config of a casemsg source reading it
        fake.requests                                   # every request: method, path, query, status

In another process (the benchmark: 100,000 cases must not share the GIL with casemsg)::

    with FakeSourceProcess("commcare", cases=100_000) as fake:   # python -m fakes.sources …
        fake.touch(1000)                                          # change 1,000 cases
        fake.config()

Control endpoints of the process: POST /_fake/add {"count", "case_type"}, POST /_fake/touch {"count"},
POST /_fake/fail {"status", "times", "retry_after"}, POST /_fake/latency {"seconds"}, GET /_fake/stats,
GET /_fake/config.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import re
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from fakes.serving import HOST, ChildProcess, ThreadServer, serve_until_signalled

KINDS = ("commcare", "odk_central", "dhis2")


# --- the cases ---------------------------------------------------------------------------------------
@dataclass
class FakeCase:
    id: str
    case_type: str
    name: str
    owner_id: str
    props: dict[str, Any]
    created: datetime
    modified: datetime
    external_id: str = ""
    parent_id: str = ""
    closed: bool = False
    deleted: datetime | None = None
    updates: int = 0


def seed_properties(i: int) -> dict[str, Any]:
    """The seeds' contact properties and a few program ones, for case number i."""
    return {
        "contact_phone_number": f"2547{10_000_000 + i:08d}",
        "language_code": ("sw", "en", "fr")[i % 3],
        "time_zone": "Africa/Nairobi",
        "edd": (datetime(2025, 1, 1) + timedelta(days=i % 280)).date().isoformat(),
        "risk_level": ("low", "medium", "high")[i % 3],
        "village": f"Village {i % 50}",
    }


class Store:
    """Cases kept in modification order, with a clock that only moves forward (1 ms steps at least)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cases: dict[str, FakeCase] = {}
        self._keys: list[tuple[datetime, str]] = []  # (modified, id), sorted
        self._by_created: list[tuple[datetime, str]] = []
        self._last = datetime(2000, 1, 1, tzinfo=UTC)
        self.count = 0

    def tick(self) -> datetime:
        now = datetime.now(UTC).replace(microsecond=(datetime.now(UTC).microsecond // 1000) * 1000)
        if now <= self._last:
            now = self._last + timedelta(milliseconds=1)
        self._last = now
        return now

    def _touch(self, case: FakeCase, when: datetime) -> None:
        old = (case.modified, case.id)
        i = bisect.bisect_left(self._keys, old)
        if i < len(self._keys) and self._keys[i] == old:
            del self._keys[i]
        case.modified = when
        bisect.insort(self._keys, (when, case.id))

    def add(
        self,
        count: int,
        *,
        case_type: str = "mother",
        same_time: bool = False,
        properties: Callable[[int], dict[str, Any]] = seed_properties,
        owner_id: str = "owner-1",
        prefix: str = "case-",
        spread_seconds: float = 0.0,
    ) -> list[str]:
        """`spread_seconds`: the new cases' times spread evenly over that many seconds up to now (a system's
        history: a sync then finds few of them in its overlap), instead of each one now."""
        ids = []
        with self.lock:
            stamp = self.tick()
            start = max(stamp - timedelta(seconds=spread_seconds), self._last - timedelta(seconds=spread_seconds))
            step = timedelta(seconds=spread_seconds / max(1, count))
            new_keys = []
            for n in range(count):
                i = self.count
                self.count += 1
                if spread_seconds:
                    when = start + step * n
                    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
                else:
                    when = stamp if same_time else self.tick()
                cid = f"{prefix}{i:07d}" if prefix else str(uuid.uuid4())
                case = FakeCase(cid, case_type, f"Person {i}", owner_id, properties(i), when, when)
                self.cases[cid] = case
                new_keys.append((when, cid))
                ids.append(cid)
            self._keys = sorted(self._keys + new_keys) if self._keys else sorted(new_keys)
            self._by_created = sorted(self._by_created + new_keys) if self._by_created else sorted(new_keys)
        return ids

    def update(self, case_id: str, **props: Any) -> None:
        """Set properties (None blanks one: sent as null); `name`, `owner_id`, `parent_id` and `external_id`
        set the case's own fields."""
        with self.lock:
            case = self.cases[case_id]
            for k, v in props.items():
                if k in ("name", "owner_id", "parent_id", "external_id"):
                    setattr(case, k, v)
                else:
                    case.props[k] = v  # None: the system sends the property as null (blanked)
            case.updates += 1
            self._touch(case, self.tick())

    def touch(self, count: int, start: int = 0) -> list[str]:
        """Change `count` cases (a property `visits` goes up), spread over the store."""
        with self.lock:
            ids = sorted(self.cases)
        step = max(1, len(ids) // max(1, count))
        chosen = ids[start % max(1, step) :: step][:count]
        for cid in chosen:
            case = self.cases[cid]
            self.update(cid, visits=str(int(case.props.get("visits", "0")) + 1))
        return chosen

    def close(self, case_id: str, closed: bool = True) -> None:
        with self.lock:
            case = self.cases[case_id]
            case.closed = closed
            self._touch(case, self.tick())

    def delete(self, case_id: str) -> None:
        with self.lock:
            case = self.cases[case_id]
            case.deleted = self.tick()
            self._touch(case, case.deleted)

    def after(self, key: tuple[datetime, str]) -> int:
        """Index of the first case modified after `key` (in (modified, id) order)."""
        return bisect.bisect_right(self._keys, key)

    def since(self, when: datetime | None) -> int:
        return 0 if when is None else bisect.bisect_left(self._keys, (when, ""))

    def ordered(self, start: int) -> list[tuple[datetime, str]]:
        return self._keys[start:]


def _iso(d: datetime | None, z: bool = True, places: int = 3) -> str | None:
    if d is None:
        return None
    text = d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    text = text[: len(text) - (6 - places)]
    return text + ("Z" if z else "")


def _parse(value: str) -> datetime | None:
    try:
        d = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)


def _token(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def _untoken(text: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass
class Failure:
    status: int
    times: int = 1
    retry_after: str | None = None
    body: str | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0


# --- the systems -------------------------------------------------------------------------------------
class System:
    kind = ""

    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self, app: web.Application, fake: FakeSource) -> None:
        raise NotImplementedError

    def config(self, base_url: str) -> dict[str, Any]:
        raise NotImplementedError

    def failure_response(self, f: Failure) -> web.Response:
        headers = {"Retry-After": f.retry_after} if f.retry_after is not None else {}
        if f.body is not None:
            return web.Response(text=f.body, status=f.status, headers=headers, content_type="application/json")
        return web.json_response({"error": f"HTTP {f.status}"}, status=f.status, headers=headers)


class CommCare(System):
    """GET /a/{domain}/api/case/v2/ — Authorization: ApiKey {username}:{api_key}; filters case_type
    (repeatable), indexed_on.gte, limit (≤ 5,000); {"matching_records", "cases", "next"}."""

    kind = "commcare"

    def __init__(self, store: Store, domain: str = "demo", username: str = "api@example.org", api_key: str = "k" * 40):
        super().__init__(store)
        self.domain, self.username, self.api_key = domain, username, api_key

    def config(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "domain": self.domain, "username": self.username, "api_key": self.api_key}

    def doc(self, c: FakeCase) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "case_id": c.id,
            "case_type": c.case_type,
            "case_name": c.name,
            "external_id": c.external_id or None,
            "owner_id": c.owner_id,
            "date_opened": _iso(c.created, places=6),
            "last_modified": _iso(c.modified, places=6),
            "server_last_modified": _iso(c.modified, places=6),
            "indexed_on": _iso(c.modified, places=6),
            "closed": c.closed,
            "date_closed": _iso(c.modified, places=6) if c.closed else None,
            "properties": dict(c.props),
            "indices": {"parent": {"case_id": c.parent_id, "case_type": "household", "relationship": "child"}}
            if c.parent_id
            else {},
        }

    def routes(self, app: web.Application, fake: FakeSource) -> None:
        async def cases(request: web.Request) -> web.StreamResponse:
            if request.match_info["domain"] != self.domain:
                return web.json_response({"error": "Domain not found"}, status=404)
            if request.headers.get("Authorization", "") != f"ApiKey {self.username}:{self.api_key}":
                return web.Response(status=401, text="Unauthorized")
            failure = await fake.before_data(request)
            if failure is not None:
                return failure
            q = request.query
            cursor = _untoken(q["cursor"]) if "cursor" in q else None
            if "cursor" in q and cursor is None:
                return web.json_response({"error": "Invalid cursor"}, status=400)
            if cursor is not None:
                types, limit, total = cursor["types"], cursor["limit"], cursor["total"]
                key = (_parse(cursor["indexed_on"]), cursor["case_id"])
            else:
                types = q.getall("case_type", [])
                try:
                    limit = int(q.get("limit", "20"))
                except ValueError:
                    return web.json_response({"error": "limit must be a number"}, status=400)
                if not 1 <= limit <= 5000:
                    return web.json_response({"error": "limit must be between 1 and 5000"}, status=400)
                gte = _parse(q["indexed_on.gte"]) if "indexed_on.gte" in q else None
                if "indexed_on.gte" in q and gte is None:
                    return web.json_response({"error": "Invalid date: indexed_on.gte"}, status=400)
                key = None
                with self.store.lock:
                    start = self.store.since(gte)
                    total = sum(
                        1
                        for _t, cid in self.store.ordered(start)
                        if not types or self.store.cases[cid].case_type in types
                    )
            out: list[dict[str, Any]] = []
            more = False
            with self.store.lock:
                start = (
                    self.store.after(key) if key is not None else self.store.since(_parse(q.get("indexed_on.gte", "")))
                )
                for _t, cid in self.store.ordered(start):
                    c = self.store.cases[cid]
                    if types and c.case_type not in types:
                        continue
                    if len(out) == limit:
                        more = True
                        break
                    out.append(self.doc(c))
            following = None
            if more:
                last = out[-1]
                token = _token(
                    {
                        "indexed_on": last["indexed_on"],
                        "case_id": last["case_id"],
                        "types": types,
                        "limit": limit,
                        "total": total,
                    }
                )
                following = f"http://{request.host}/a/{self.domain}/api/case/v2/?cursor={token}"
            return web.json_response({"matching_records": total, "cases": out, "next": following})

        app.router.add_get("/a/{domain}/api/case/v2/", cases)


class OdkCentral(System):
    """POST /v1/sessions; GET /v1/projects/{id}/datasets/{name}.svc/Entities (Bearer token) or
    /v1/key/{token}/projects/… (app user): $top, $count, $filter (__system/… gt T joined by or),
    $skiptoken; {"@odata.context", "@odata.count", "value", "@odata.nextLink"}."""

    kind = "odk_central"
    _CLAUSE = re.compile(r"^\s*__system/(createdAt|updatedAt|deletedAt)\s+gt\s+(\S+)\s*$")

    def __init__(
        self,
        store: Store,
        project_id: int = 1,
        entity_list: str = "people",
        email: str = "sync@example.org",
        password: str = "central-password",
        app_user_token: str = "",
    ):
        super().__init__(store)
        self.project_id, self.entity_list = int(project_id), entity_list
        self.email, self.password = email, password
        self.app_user_token = app_user_token or "A" * 64
        self.tokens: set[str] = set()

    def config(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "project_id": self.project_id,
            "entity_list": self.entity_list,
            "email": self.email,
            "password": self.password,
        }

    @staticmethod
    def error(status: int, code: float, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message}, status=status)

    def doc(self, c: FakeCase) -> dict[str, Any]:
        return {
            "__id": c.id,
            "label": c.name,
            "__system": {
                "createdAt": _iso(c.created),
                "creatorId": "5",
                "creatorName": "Sync",
                "updates": c.updates,
                "updatedAt": _iso(c.modified) if c.updates or c.closed else None,
                "version": c.updates + 1,
                "conflict": None,
                "deletedAt": _iso(c.deleted),
            },
            **{k: None if v is None else str(v) for k, v in c.props.items()},
        }

    def routes(self, app: web.Application, fake: FakeSource) -> None:
        async def sessions(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.json()
            except ValueError:
                return self.error(400, 400.1, "Could not parse the given data (JSON).")
            if not isinstance(body, dict) or body.get("email") != self.email or body.get("password") != self.password:
                return self.error(401, 401.2, "Could not authenticate with the provided credentials.")
            token = uuid.uuid4().hex + uuid.uuid4().hex
            self.tokens.add(token)
            now = datetime.now(UTC)
            return web.json_response(
                {"createdAt": _iso(now), "expiresAt": _iso(now + timedelta(hours=24)), "token": token}
            )

        async def entities(request: web.Request) -> web.StreamResponse:
            key = request.match_info.get("key")
            if key is not None:
                if key != self.app_user_token:
                    return self.error(
                        403, 403.1, "The authenticated actor does not have rights to perform that action."
                    )
            else:
                header = request.headers.get("Authorization", "")
                if not header.startswith("Bearer ") or header[7:] not in self.tokens:
                    return self.error(401, 401.2, "Could not authenticate with the provided credentials.")
            if int(request.match_info["pid"]) != self.project_id or request.match_info["name"] != self.entity_list:
                return self.error(404, 404.1, "Could not find the resource you were looking for.")
            failure = await fake.before_data(request)
            if failure is not None:
                return failure
            q = request.query
            try:
                top = int(q.get("$top", "0")) or None
            except ValueError:
                return self.error(400, 400.18, "Unexpected $top value.")
            clauses: list[tuple[str, datetime]] = []
            if q.get("$filter"):
                for part in re.split(r"\s+or\s+", q["$filter"]):
                    m = self._CLAUSE.match(part)
                    t = _parse(m.group(2)) if m else None
                    if m is None or t is None:
                        return self.error(501, 501.11, "The given OData filter expression is not supported.")
                    clauses.append((m.group(1), t))
            with_deleted = any(f == "deletedAt" for f, _t in clauses)
            skip = _untoken(q["$skiptoken"]) if "$skiptoken" in q else None
            if "$skiptoken" in q and skip is None:
                return self.error(400, 400.34, "Pagination token is invalid.")

            def matches(c: FakeCase) -> bool:
                if c.deleted is not None and not with_deleted:
                    return False
                if not clauses:
                    return True
                stamps = {
                    "createdAt": c.created,
                    "updatedAt": c.modified if c.updates or c.closed else None,
                    "deletedAt": c.deleted,
                }
                return any(stamps[f] is not None and stamps[f] > t for f, t in clauses)

            with self.store.lock:
                rows = [self.store.cases[cid] for _t, cid in self.store._by_created]
                chosen = [c for c in rows if matches(c)]
            total = len(chosen)
            if skip is not None:
                after = (skip.get("createdAt", ""), skip.get("uuid", ""))
                chosen = [c for c in chosen if (_iso(c.created) or "", c.id) > after]
            page = chosen[:top] if top else chosen
            doc: dict[str, Any] = {
                "@odata.context": f"http://{request.host}/v1/projects/{self.project_id}/datasets/"
                f"{self.entity_list}.svc/$metadata#Entities",
                "value": [self.doc(c) for c in page],
            }
            if q.get("$count") == "true":
                doc["@odata.count"] = total
            if top and len(chosen) > top:
                last = page[-1]
                params = {k: v for k, v in q.items() if k != "$skiptoken"}
                params["$skiptoken"] = _token({"createdAt": _iso(last.created), "uuid": last.id})
                query = "&".join(f"{k}={urllib.request.quote(v, safe='')}" for k, v in params.items())
                doc["@odata.nextLink"] = f"http://{request.host}{request.path}?{query}"
            return web.json_response(doc)

        app.router.add_post("/v1/sessions", sessions)
        app.router.add_get("/v1/projects/{pid}/datasets/{name}.svc/Entities", entities)
        app.router.add_get("/v1/key/{key}/projects/{pid}/datasets/{name}.svc/Entities", entities)


class Dhis2(System):
    """GET /api/tracker/trackedEntities — Authorization: ApiToken {token} or Basic; program, orgUnits,
    orgUnitMode, updatedAfter, order=updatedAt:asc, page, pageSize, totalPages; {"pager", "trackedEntities"}."""

    kind = "dhis2"
    ATTRIBUTES = {
        "contact_phone_number": ("w75KJ2mc4zz", "Phone number"),
        "language_code": ("lZGmxYbs97q", "Preferred language"),
        "time_zone": ("tZ0ne000001", "Time zone"),
        "edd": ("EdD00000001", "Expected delivery date"),
        "risk_level": ("RsK00000001", "Risk level"),
        "village": ("ViL00000001", "Village"),
        "visits": ("ViS00000001", "Visits"),
    }

    def __init__(
        self,
        store: Store,
        program: str = "IpHINAT79UW",
        org_unit: str = "ImspTQPwCqd",
        api_token: str = "d2pat_" + "x" * 40,
        username: str = "admin",
        password: str = "district",
    ):
        super().__init__(store)
        self.program, self.org_unit = program, org_unit
        self.api_token, self.username, self.password = api_token, username, password

    def config(self, base_url: str) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "program": self.program,
            "org_units": [self.org_unit],
            "api_token": self.api_token,
        }

    @staticmethod
    def error(status: int, message: str) -> web.Response:
        body = {"httpStatus": web.Response(status=status).reason, "httpStatusCode": status, "status": "ERROR"}
        return web.json_response({**body, "message": message}, status=status)

    def failure_response(self, f: Failure) -> web.Response:
        resp = self.error(f.status, "Too many requests" if f.status == 429 else "Internal server error")
        if f.retry_after is not None:
            resp.headers["Retry-After"] = f.retry_after
        return resp

    def doc(self, c: FakeCase) -> dict[str, Any]:
        attributes = []
        for name, value in c.props.items():
            uid, label = self.ATTRIBUTES.get(name, (name, name))
            attributes.append({"attribute": uid, "code": name.upper(), "displayName": label, "value": value})
        return {
            "trackedEntity": c.id,
            "trackedEntityType": "nEenWmSyUEp",
            "orgUnit": c.owner_id,
            "createdAt": _iso(c.created, z=False),
            "updatedAt": _iso(c.modified, z=False),
            "inactive": c.closed,
            "deleted": c.deleted is not None,
            "attributes": attributes,
            "enrollments": [
                {
                    "enrollment": "E" + c.id[-10:],
                    "program": self.program,
                    "status": "COMPLETED" if c.closed else "ACTIVE",
                    "enrolledAt": _iso(c.created, z=False),
                    "occurredAt": _iso(c.created, z=False),
                }
            ],
        }

    def routes(self, app: web.Application, fake: FakeSource) -> None:
        async def tracked(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization", "")
            basic = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if header not in (f"ApiToken {self.api_token}", basic):
                return self.error(401, "Account not found or not active")
            failure = await fake.before_data(request)
            if failure is not None:
                return failure
            q = request.query
            if q.get("program") != self.program:
                return self.error(404, f"Program not found: {q.get('program')}")
            units = [u for u in q.get("orgUnits", "").split(",") if u]
            if not units:
                return self.error(400, "orgUnits is required")
            try:
                page = int(q.get("page", "1"))
                size = int(q.get("pageSize", "50"))
            except ValueError:
                return self.error(400, "page and pageSize must be numbers")
            after = _parse(q["updatedAfter"]) if q.get("updatedAfter") else None
            with self.store.lock:
                start = self.store.since(after)
                rows = [self.store.cases[cid] for t, cid in self.store.ordered(start) if after is None or t > after]
            deleted = q.get("includeDeleted") == "true"
            rows = [c for c in rows if (deleted or c.deleted is None) and (c.owner_id in units or "*" in units)]
            chunk = rows[(page - 1) * size : page * size]
            pager: dict[str, Any] = {"page": page, "pageSize": size}
            if q.get("totalPages") == "true":
                pager["total"] = len(rows)
                pager["pageCount"] = (len(rows) + size - 1) // size
            return web.json_response({"pager": pager, "trackedEntities": [self.doc(c) for c in chunk]})

        app.router.add_get("/api/tracker/trackedEntities", tracked)


SYSTEMS: dict[str, type[System]] = {"commcare": CommCare, "odk_central": OdkCentral, "dhis2": Dhis2}


# --- the server --------------------------------------------------------------------------------------
class FakeSource(ThreadServer):
    """A fake system served from a daemon thread of this process (a context manager, or start()/stop())."""

    backlog = 256

    def __init__(self, kind: str = "commcare", *, port: int = 0, host: str = HOST, **options: Any):
        super().__init__(host, port, f"fake-{kind}")
        self.kind = kind
        self.store = Store()
        self.system = SYSTEMS[kind](self.store, **options)
        self.latency = 0.0
        self.failures: list[Failure] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The config of a casemsg source of this type reading this fake."""
        return {**self.system.config(self.url), **overrides}

    # what the system holds
    def add(self, count: int, **kw: Any) -> list[str]:
        if self.kind == "dhis2":
            kw.setdefault("owner_id", self.system.org_unit)  # type: ignore[attr-defined]
        return self.store.add(count, **kw)

    def update(self, case_id: str, **props: Any) -> None:
        self.store.update(case_id, **props)

    def touch(self, count: int) -> list[str]:
        return self.store.touch(count)

    def close(self, case_id: str) -> None:
        self.store.close(case_id)

    def delete(self, case_id: str) -> None:
        self.store.delete(case_id)

    def fail(self, status: int, times: int = 1, retry_after: str | None = None, body: str | None = None) -> None:
        """The next `times` data requests answer `status` (with Retry-After when given)."""
        with self._lock:
            self.failures.append(Failure(status, times, retry_after, body))

    def data_requests(self) -> list[Seen]:
        return [r for r in self.requests if not r.path.startswith(("/_fake", "/v1/sessions"))]

    async def before_data(self, request: web.Request) -> web.Response | None:
        """A scripted failure for this data request, if any (after the latency)."""
        if self.latency:
            await asyncio.sleep(self.latency)
        with self._lock:
            for f in self.failures:
                if f.times > 0:
                    f.times -= 1
                    return self.system.failure_response(f)
        return None

    def _app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
            seen = Seen(
                request.method, request.path, {k: request.query.getall(k) for k in request.query}, dict(request.headers)
            )
            self.requests.append(seen)
            resp: web.StreamResponse = await handler(request)
            seen.status = resp.status
            return resp

        app = web.Application(middlewares=[record], client_max_size=4 * 1024 * 1024)
        self.system.routes(app, self)
        app.router.add_route("*", "/_fake/{op}", self._control)
        return app

    async def _control(self, request: web.Request) -> web.Response:
        op = request.match_info["op"]
        body = await request.json() if request.can_read_body else {}
        if op == "add":
            ids = await asyncio.to_thread(
                self.add, int(body["count"]), **{k: v for k, v in body.items() if k != "count"}
            )
            return web.json_response({"ids": len(ids)})
        if op == "touch":
            ids = await asyncio.to_thread(self.touch, int(body["count"]))
            return web.json_response({"ids": ids})
        if op == "fail":
            self.fail(int(body["status"]), int(body.get("times", 1)), body.get("retry_after"))
            return web.json_response({"ok": True})
        if op == "latency":
            self.latency = float(body["seconds"])
            return web.json_response({"ok": True})
        if op == "stats":
            return web.json_response({"cases": len(self.store.cases), "requests": len(self.data_requests())})
        if op == "config":
            return web.json_response({"kind": self.kind, "config": self.system.config(f"http://{request.host}")})
        return web.json_response({"error": "unknown control operation"}, status=404)

    def app(self) -> web.Application:
        return self._app()


class FakeSourceProcess:
    """A fake system in a child process (`python -m fakes.sources`), for the benchmark."""

    def __init__(self, kind: str = "commcare", *, cases: int = 0, spread_seconds: float = 0.0):
        self.kind = kind
        args = [sys.executable, "-m", "fakes.sources", "--kind", kind, "--port", "0", "--cases", str(cases)]
        args += ["--spread", str(spread_seconds)]
        self.child = ChildProcess(args, "source")
        self.url = ""

    def _call(self, method: str, op: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_fake/{op}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.loads(resp.read())

    def start(self) -> FakeSourceProcess:
        self.url = self.child.start()
        return self

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> FakeSourceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def config(self) -> dict[str, Any]:
        return dict(self._call("GET", "config")["config"])

    def add(self, count: int, **kw: Any) -> int:
        return int(self._call("POST", "add", {"count": count, **kw})["ids"])

    def touch(self, count: int) -> list[str]:
        return list(self._call("POST", "touch", {"count": count})["ids"])

    def stats(self) -> dict[str, int]:
        return dict(self._call("GET", "stats"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake case system on 127.0.0.1 (tests and benchmarks).")
    parser.add_argument("--kind", choices=KINDS, default="commcare")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cases", type=int, default=0, help="cases to start with")
    parser.add_argument("--spread", type=float, default=0.0, help="their times spread over this many seconds")
    args = parser.parse_args(argv)
    fake = FakeSource(args.kind, port=args.port)
    if args.cases:
        fake.add(args.cases, spread_seconds=args.spread)
    serve_until_signalled(fake)


if __name__ == "__main__":
    main()
