"""Email through Django's SMTP backend to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import pytest
from django.utils import timezone

from casemsg.messaging.models import Message
from tests.conftest import closed_port
from tests.messaging.conftest import deliver, msg, send, use_smtp
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db

ADDRESS = "asha@example.org"


def _email_case(api, address: str = ADDRESS, **props) -> str:
    return api.case({"commcare_email_address": address, **props}, name="Asha")["case_id"]


def test_subject_text_and_html_arrive(api, settings, smtp):
    settings.DEFAULT_FROM_EMAIL = "program@casemsg.test"
    case_id = _email_case(api, clinic="Kisumu clinic")
    m = send(
        api,
        case_id,
        channel="email",
        subject="Your visit",
        text="Dear {case.name}, please visit {case.clinic}.",
        html="<p>Dear Asha</p>",
    )
    assert m["status"] == "queued" and m["to"] == ADDRESS
    deliver()
    row = msg(m)
    assert (row.status, row.error, row.attempts) == ("sent", "", 1)
    assert row.gateway_name == "" and row.segments == 0  # SMS-only notions
    (got,) = smtp.wait_for(1)
    assert got.rcpt_tos == [ADDRESS]
    assert got.mail_from == "program@casemsg.test"
    assert got.message["Subject"] == "Your visit"
    assert got.message["To"] == ADDRESS
    assert got.message["X-Casemsg-Message-Id"] == str(row.pk)
    assert got.text.strip() == "Dear Asha, please visit Kisumu clinic."
    assert got.html.strip() == "<p>Dear Asha</p>"
    assert row.text == "Dear Asha, please visit Kisumu clinic."
    api_row = api.get(f"messages/{row.pk}").json()
    assert (api_row["channel"], api_row["status"], api_row["subject"]) == ("email", "sent", "Your visit")


def test_text_only_email_has_no_html_part(api, smtp):
    m = send(api, _email_case(api), channel="email", subject="Plain", text="Just text")
    deliver()
    assert msg(m).status == "sent"
    (got,) = smtp.wait_for(1)
    assert got.text.strip() == "Just text"
    assert got.html == ""
    assert not got.message.is_multipart()


def test_email_translation_and_worker_recipient(api, smtp):
    r = api.post(
        "mobile-workers", {"username": "juma", "name": "Juma", "email": "juma@example.org", "language_code": "sw"}
    )
    assert r.status_code == 201, r.content
    r = api.post(
        "messages",
        {
            "recipient": {"mobile_worker_id": r.json()["id"]},
            "channel": "email",
            "subject": "Ripoti",
            "translations": {"en": "Hello {recipient.name}", "sw": "Habari {recipient.name}"},
        },
    )
    assert r.status_code == 202, r.content
    deliver()
    assert (msg(r.json()).status, msg(r.json()).language) == ("sent", "sw")
    (got,) = smtp.wait_for(1)
    assert got.rcpt_tos == ["juma@example.org"] and got.text.strip() == "Habari Juma"


def test_a_batch_goes_out_and_one_refused_recipient_fails_alone(api, smtp):
    smtp.reject_recipient("nobody@example.org")
    good = [
        send(api, _email_case(api, f"person{i}@example.org"), channel="email", subject="S", text=f"T{i}")
        for i in range(4)
    ]
    bad = send(api, _email_case(api, "nobody@example.org"), channel="email", subject="S", text="T")
    deliver()
    assert {msg(m).status for m in good} == {"sent"}
    row = msg(bad)
    assert (row.status, row.error, row.attempts) == ("failed", "INVALID_EMAIL_ADDRESS", 1)
    assert "550" in row.error_detail
    got = smtp.wait_for(4)
    assert sorted(r for m in got for r in m.rcpt_tos) == [f"person{i}@example.org" for i in range(4)]


def test_a_temporary_smtp_refusal_is_retried(api, settings, smtp):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    smtp.refuse(times=1, reply="451 4.3.0 Try again later")
    m = send(api, _email_case(api), channel="email", subject="S", text="Retry me")
    deliver()
    row = msg(m)
    assert (row.status, row.attempts) == ("sent", 2)
    (got,) = smtp.wait_for(1)
    assert got.text.strip() == "Retry me"


def test_server_down_is_retried_then_sent_when_it_is_back(api, settings):
    settings.CASEMSG_RETRY_BASE_SECONDS = 30
    port = closed_port()
    use_smtp(settings, "127.0.0.1", port)
    m = send(api, _email_case(api), channel="email", subject="S", text="Eventually")
    deliver()
    row = msg(m)
    assert (row.status, row.attempts, row.error) == ("queued", 1, "")
    assert "SMTP" in row.error_detail and row.next_attempt_on > timezone.now()
    with SmtpServer() as server:
        use_smtp(settings, server.host, server.port)
        Message.objects.filter(pk=row.pk).update(next_attempt_on=timezone.now())
        deliver()
        assert (msg(m).status, msg(m).attempts) == ("sent", 2)
        assert server.wait_for(1)[0].text.strip() == "Eventually"


def test_server_down_gives_email_gateway_error_after_three_attempts(api, settings):
    settings.CASEMSG_RETRY_BASE_SECONDS = 0
    use_smtp(settings, "127.0.0.1", closed_port())
    m = send(api, _email_case(api), channel="email", subject="S", text="Never")
    for _ in range(4):
        deliver()
    row = msg(m)
    assert (row.status, row.error, row.attempts) == ("failed", "EMAIL_GATEWAY_ERROR", 3)
    assert api.get(f"messages/{row.pk}").json()["error"]["code"] == "EMAIL_GATEWAY_ERROR"


def test_subject_is_a_template_rendered_at_send_time(api, smtp):
    case_id = _email_case(api, clinic="Kisumu {clinic}")
    m = send(api, case_id, channel="email", subject="Visit at {case.clinic} for {case.name}", text="Hi")
    deliver()
    (got,) = smtp.wait_for(1)
    # case data containing braces is shown as written, not read as a placeholder
    assert got.message["Subject"] == "Visit at Kisumu {clinic} for Asha"
    assert msg(m).subject == "Visit at Kisumu {clinic} for Asha"


def test_malformed_subject_template_is_refused(api):
    r = api.post(
        "messages",
        {"recipient": {"case_id": _email_case(api)}, "channel": "email", "subject": "Visit {case.name", "text": "Hi"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "CANNOT_RENDER_MESSAGE"
