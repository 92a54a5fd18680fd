"""Log lines about messages' outcomes, with the structured fields (casemsg.core.logs): a failure at INFO,
a send at DEBUG, each with message_id, project, gateway and error. The number is masked."""

from __future__ import annotations

import logging

from casemsg.core import logs
from casemsg.messaging.models import Message

log = logging.getLogger("casemsg.messages")


def on_statuses_changed(sender: object, *, messages: list[Message], **_kw: object) -> None:
    if not log.isEnabledFor(logging.INFO):
        return  # the usual case (WARNING): nothing to format for a batch
    slugs: dict[int, str] = {}
    for m in messages:
        project = m._state.fields_cache.get("project")
        if project is not None and m.project_id is not None:
            slugs[m.project_id] = project.slug
    debug = log.isEnabledFor(logging.DEBUG)
    for m in messages:
        if m.status != Message.FAILED and not debug:
            continue
        extra = logs.fields(
            message_id=m.pk,
            project=slugs.get(m.project_id, m.project_id) if m.project_id is not None else None,
            gateway=m.gateway_name,
            error=m.error,
        )
        to = logs.mask_phone(m.to) if m.channel == "sms" else "an email address"
        if m.status == Message.FAILED:
            log.info("message %s to %s failed: %s", m.pk, to, m.error, extra=extra)
        else:
            log.debug("message %s to %s %s", m.pk, to, m.status, extra=extra)
