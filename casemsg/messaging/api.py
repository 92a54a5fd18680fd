from __future__ import annotations

from ninja import Router

from casemsg.messaging import errors

router = Router(tags=["errors"])


@router.get("/errors", auth=None)
def list_errors(request):
    """The error catalogue: every code a message or a contact can carry, with how to fix it."""
    return [
        {"code": e.code, "title": e.title, "description": e.description, "fix": e.fix, "delay": e.delay}
        for e in errors.CATALOGUE.values()
    ]
