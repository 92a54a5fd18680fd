"""The fake providers and the SMTP server themselves: what other tests rely on."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection

from casemsg.gateways.base import OutboundSms
from fakes.gateways import FakeApi, Received
from tests.gateways.helpers import adapter, send, send_one


def test_child_process_fake_is_controlled_remotely(fake_gateway_process):
    fake = fake_gateway_process("twilio")
    assert fake.kind == "twilio" and fake.proc is not None
    gw = adapter("twilio", fake.gateway_config())
    fake.fail(times=1, status=500)
    fake.error_for("15550000002", "opted_out")
    results = send(gw, OutboundSms(1, "15550000001", "a"))
    assert results[0].status == "retry"
    results = send(gw, OutboundSms(1, "15550000001", "a"), OutboundSms(2, "15550000002", "b"))
    assert [(r.status, r.error) for r in results] == [("sent", None), ("failed", "PHONE_OPTED_OUT")]
    assert fake.count_by_number() == {"15550000001": 1}
    assert fake.stats() == {"requests": 3, "accepted": 1}
    assert [r.seq for r in fake.requests(since=1)] == [2, 3]
    fake.reset()
    assert fake.requests() == []


def test_lean_child_process_records_no_details(fake_gateway_process):
    fake = fake_gateway_process("http", lean=True)
    send_one(adapter("http", fake.gateway_config()), message_id=5)
    (req,) = fake.wait_for(1)
    assert (req.message_id, req.fields, req.headers) == ("5", {}, {})


def test_burst_measured_on_the_server_clock(fake_http):
    gw = adapter("http", fake_http.gateway_config())
    send(gw, *(OutboundSms(i, "254711000001", "x" * 200) for i in range(30)))
    assert fake_http.max_in_window(1.0) == 30
    assert fake_http.max_in_window(1.0, weight=lambda r: 2) == 60  # e.g. segments per message
    assert sum(fake_http.arrivals_per_second()) == 30


def test_max_in_window_counts_a_sliding_window():
    class Fixed(FakeApi):
        def __init__(self, times):
            self.records = [
                Received(i + 1, t, t, "http", "POST", "/", "1", "", accepted=True) for i, t in enumerate(times)
            ]

        def requests(self, accepted=None, since=0):
            return self.records

    fake = Fixed([0.0, 0.5, 0.9, 1.2, 1.3, 1.4, 3.0])
    assert fake.max_in_window(1.0) == 5  # 0.5 … 1.4
    assert fake.max_in_window(0.25) == 3  # 1.2, 1.3, 1.4
    assert fake.arrivals_per_second() == [3, 3, 0, 1]


def test_rules_for_one_number_and_forever(fake_twilio):
    fake_twilio.error_for("15550000009", 21211)
    gw = adapter("twilio", fake_twilio.gateway_config())
    for _ in range(3):
        assert send_one(gw, "15550000009").error == "INVALID_DESTINATION_NUMBER"
    assert send_one(gw, "15550000008").status == "sent"
    fake_twilio.clear_rules()
    assert send_one(gw, "15550000009").status == "sent"


def test_latency(fake_http):
    fake_http.set_latency(0.3)
    gw = adapter("http", fake_http.gateway_config(timeout=0.1))
    assert send_one(gw).status == "retry"


# --- SMTP ---------------------------------------------------------------------------------------------
def test_smtp_collects_messages(smtp_server):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "casemsg@example.org", "asha@example.org", "Karibu"
    msg.set_content("Habari Asha")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(msg)
    (got,) = smtp_server.wait_for(1)
    assert got.mail_from == "casemsg@example.org" and got.rcpt_tos == ["asha@example.org"]
    assert got.message["Subject"] == "Karibu" and got.text.strip() == "Habari Asha"
    assert smtp_server.url == f"smtp://127.0.0.1:{smtp_server.port}"


def test_smtp_through_django_backend_with_html(smtp_server):
    conn = get_connection("django.core.mail.backends.smtp.EmailBackend", host=smtp_server.host, port=smtp_server.port)
    mail = EmailMultiAlternatives("Subject ü", "text body", "from@example.org", ["to@example.org"], connection=conn)
    mail.attach_alternative("<p>html body</p>", "text/html")
    assert mail.send() == 1
    (got,) = smtp_server.wait_for(1)
    assert got.message["Subject"] == "Subject ü"
    assert got.text.strip() == "text body" and "<p>html body</p>" in got.html


def test_smtp_refusals(smtp_server):
    smtp_server.refuse(times=1)
    smtp_server.reject_recipient("nobody@example.org")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        with pytest.raises(smtplib.SMTPDataError) as e:
            client.sendmail("a@example.org", ["b@example.org"], "Subject: x\r\n\r\nbody")
        assert e.value.smtp_code == 451
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.org", ["nobody@example.org"], "Subject: x\r\n\r\nbody")
        client.sendmail("a@example.org", ["b@example.org"], "Subject: x\r\n\r\nbody")
    assert len(smtp_server.messages) == 1
