"""HTTP to a source system: one guarded session per sync, retries with back-off, errors in words.

Every URL a source type calls was typed by a project, so the session is `casemsg.core.netguard`'s: the
address of every connection is checked after DNS resolution and right before connecting, and so is every
redirect target (unless the installation allows private addresses, CASEMSG_GATEWAY_ALLOW_PRIVATE=1; cloud
metadata addresses never pass). The URL was checked when the source was saved, too (services).

A 429 or 5xx answer, a timeout or a dropped connection is tried again, up to `attempts` times, after the
wait the source asks for (`Retry-After`, in seconds or as an HTTP date) or else 0.5 s, 1 s, 2 s, …; a wait
longer than `max_wait` is not sat through: the call fails with SOURCE_UNAVAILABLE and `retry_after`, and
the sync is tried again that much later. Before each wait `on_wait` runs, if given.

Failures raise `SourceError` with a catalogue code: SOURCE_AUTH_FAILED (401/403), SOURCE_REQUEST_REFUSED
(another 4xx), SOURCE_UNAVAILABLE (429/5xx/timeouts after the retries), SOURCE_BAD_ANSWER (not JSON, too
large), SOURCE_URL_NOT_ALLOWED (an internal address). Messages name the source by its scheme, host and
port only (an ODK app-user token is part of the path, a CommCare key never is in a URL), with at most a
short, sanitised excerpt of its answer: credentials are never logged.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import aiohttp
from django.conf import settings
from yarl import URL

from casemsg.core import errors, netguard

MAX_BODY = 64 * 1024 * 1024  # bytes of one answer (a page of 1,000 CommCare cases is 1–3 MB)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SourceError(Exception):
    """A call to a source failed; `code` is a catalogue code, `message` a sentence without secrets."""

    def __init__(self, code: str, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reply:
    status: int
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError as exc:
            raise SourceError(
                errors.SOURCE_BAD_ANSWER,
                f"{where(self.url)} answered HTTP {self.status} with something that is not JSON: "
                f"{netguard.excerpt(self.body)}",
                self.status,
            ) from exc

    @property
    def date(self) -> datetime | None:
        """The source's clock when it answered (the Date header), if it said."""
        return http_date(self.headers.get("date", ""))


def where(url: str) -> str:
    """How a message names a source: scheme, host and port, never the path or query (tokens live there)."""
    try:
        u = URL(url)
        return f"{u.scheme}://{u.host}" + (f":{u.explicit_port}" if u.explicit_port else "")
    except (ValueError, TypeError):
        return "the source"


def http_date(value: str) -> datetime | None:
    try:
        d = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None
    if d is None:
        return None
    return d.astimezone(UTC) if d.tzinfo else d.replace(tzinfo=UTC)


def retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    d = http_date(value)
    if d is None:
        return None
    return max(0.0, d.timestamp() - (time.time() if now is None else now))


class Client:
    """One sync's HTTP session (its own event loop, so it can be used from plain synchronous code)."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        attempts: int = 5,
        retry_base: float = 0.5,
        max_wait: float = 60.0,
        on_wait: Callable[[float], None] | None = None,
        blocked: netguard.BlockedCheck | None = None,
    ) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.retry_base = retry_base
        self.max_wait = max_wait
        self.on_wait = on_wait
        self.blocked = blocked
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._loop is not None:
            if self._session is not None and not self._session.closed:
                self._loop.run_until_complete(self._session.close())
            self._loop.close()
        self._loop = self._session = None

    def _run(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = netguard.make_session(
                settings.CASEMSG_GATEWAY_ALLOW_PRIVATE,
                blocked=self.blocked,
                label="The source URL",
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector_kwargs={"limit": 4},
            )
        return self._session

    async def _once(
        self,
        method: str,
        url: str,
        params: Any,
        headers: Mapping[str, str] | None,
        json: Any,
        data: Any,
    ) -> Reply:
        session = await self._get_session()
        async with session.request(
            method, url, params=params, headers=headers, json=json, data=data, allow_redirects=True
        ) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > MAX_BODY:
                    raise SourceError(
                        errors.SOURCE_BAD_ANSWER,
                        f"{where(url)} answered more than {MAX_BODY // (1024 * 1024)} MB for one page; "
                        "ask for smaller pages (page_size).",
                        resp.status,
                    )
                chunks.append(chunk)
            body = b"".join(chunks)
            return Reply(resp.status, str(resp.url), body, {k.lower(): v for k, v in resp.headers.items()})

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
    ) -> Reply:
        """The answer (2xx or 3xx), after the retries; raises SourceError otherwise."""
        last = ""
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            self.requests += 1
            try:
                reply: Reply = self._run(self._once(method, url, params, headers, json, data))
            except SourceError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                reason = netguard.blocked_reason(exc)
                if reason is not None:
                    raise SourceError(errors.SOURCE_URL_NOT_ALLOWED, reason) from exc
                last = f"{where(url)} did not answer ({type(exc).__name__}: {netguard.excerpt(str(exc), 120)})"
            else:
                if reply.status < 400:
                    return reply
                if reply.status in (401, 403):
                    raise SourceError(
                        errors.SOURCE_AUTH_FAILED,
                        f"{where(url)} refused the credentials (HTTP {reply.status}): {netguard.excerpt(reply.body)}",
                        reply.status,
                    )
                if reply.status not in RETRY_STATUSES:
                    raise SourceError(
                        errors.SOURCE_REQUEST_REFUSED,
                        f"{where(url)} refused the request (HTTP {reply.status}): {netguard.excerpt(reply.body)}",
                        reply.status,
                    )
                wait = retry_after(reply.headers.get("retry-after", ""))
                last = f"{where(url)} answered HTTP {reply.status}"
                if wait is not None and wait > self.max_wait:
                    raise SourceError(
                        errors.SOURCE_UNAVAILABLE,
                        f"{last} and asked to wait {wait:.0f} s before trying again.",
                        reply.status,
                        retry_after=wait,
                    )
            if attempt == self.attempts:
                break
            delay = wait if wait is not None else self.retry_base * 2 ** (attempt - 1)
            if self.on_wait is not None:
                self.on_wait(delay)
            time.sleep(delay)
        raise SourceError(errors.SOURCE_UNAVAILABLE, f"{last}, {self.attempts} times; giving up for now.")

    def get_json(self, url: str, method: str = "GET", **kw: Any) -> tuple[Any, Reply]:
        """The answer's JSON and the answer (SOURCE_BAD_ANSWER when it is not JSON)."""
        reply = self.request(method, url, **kw)
        return reply.json(), reply
