"""Who is acting: the consent ledger names the source of every consent truthfully (`api`, `page`,
`import`, …) and who recorded it (an API key, a user), whatever path the change took to get there.

The interfaces set it once per request or command — the API's key authentication, `ActorMiddleware`
for pages, the importer — and the consent area reads it when it writes a ledger row, so no service in
between needs to pass it along (and a new endpoint cannot forget to).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Actor:
    source: str  # how the change came in: "api", "page", "import", "system", …
    who: str = ""  # who made it: "api key cm_AbCdEf… (forwarder)", "user alice", "command line"


SYSTEM = Actor("system", "")
_current: ContextVar[Actor] = ContextVar("casemsg_actor", default=SYSTEM)


def current() -> Actor:
    return _current.get()


def set_current(actor: Actor) -> None:
    """For the rest of this request (ActorMiddleware resets it when the next request starts)."""
    _current.set(actor)


@contextmanager
def acting_as(source: str, who: str | None = None) -> Iterator[Actor]:
    """Within the block, changes are made as `source`; `who` defaults to whoever is acting now."""
    actor = Actor(source, current().who if who is None else who)
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


class ActorMiddleware:
    """A page request acts as its logged-in user; every request starts from `system` (threads are reused
    between requests, so nothing may leak from the previous one). API requests are named by their key
    when it is authenticated."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(SYSTEM)
        try:
            if not request.path.startswith("/api/"):
                user = getattr(request, "user", None)
                if user is not None and user.is_authenticated:
                    _current.set(Actor("page", f"user {user.get_username()}"))
            return self.get_response(request)
        finally:
            _current.reset(token)
