"""`reply`: answer with the keyword's reply (in the sender's language)."""

from __future__ import annotations

from collections.abc import Mapping

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.inbound.actions.base import KeywordAction, KeywordContext
from casemsg.projects.models import Project


class Reply(KeywordAction):
    name = "reply"
    description = "Answer with the keyword's reply."

    def check(self, params: dict[str, str], reply: Mapping[str, str], project: Project) -> None:
        if not any(v.strip() for v in reply.values()):
            raise InputError(errors.VALIDATION_ERROR, 'A reply keyword needs reply text, e.g. {"en": "…"}.')

    def handle(self, ctx: KeywordContext) -> str:
        return ctx.answered()


ACTION = Reply()
