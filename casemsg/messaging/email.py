"""Email through Django's SMTP backend (CASEMSG_EMAIL_URL=smtp://host:port). One SMTP connection per
claimed batch; each message gets its own result so one refused address does not fail the batch."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from casemsg.core import errors
from casemsg.gateways.base import SendResult
from casemsg.messaging.models import Message


def send_batch(msgs: list[Message]) -> list[SendResult]:
    results: list[SendResult] = []
    conn = get_connection(fail_silently=False)
    try:
        conn.open()
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        return [SendResult(m.pk, "retry", error=errors.EMAIL_GATEWAY_ERROR, detail=f"SMTP: {exc}") for m in msgs]
    try:
        for m in msgs:
            mail = EmailMultiAlternatives(
                subject=m.subject or "",
                body=m.text,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[m.to],
                connection=conn,
                headers={"X-Casemsg-Message-Id": str(m.pk)},
            )
            if m.html:
                mail.attach_alternative(m.html, "text/html")
            try:
                mail.send()
                results.append(SendResult(m.pk, "sent", provider_id=f"email-{m.pk}"))
            except smtplib.SMTPRecipientsRefused as exc:
                results.append(SendResult(m.pk, "failed", error=errors.INVALID_EMAIL_ADDRESS, detail=str(exc)[:300]))
            except smtplib.SMTPResponseException as exc:
                status = "retry" if 400 <= exc.smtp_code < 500 else "failed"
                results.append(
                    SendResult(
                        m.pk,
                        status,
                        error=errors.EMAIL_GATEWAY_ERROR,
                        detail=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:300],
                    )
                )
            except (OSError, smtplib.SMTPException) as exc:
                results.append(SendResult(m.pk, "retry", error=errors.EMAIL_GATEWAY_ERROR, detail=f"SMTP: {exc}"[:300]))
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 — closing a broken connection must not hide the results
            pass
    return results
