"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for the email tests.

with SmtpServer() as smtp:
    settings: CASEMSG_EMAIL_URL = smtp.url            # smtp://127.0.0.1:PORT
    ... send ...
    smtp.messages[0].message["Subject"], smtp.messages[0].rcpt_tos, smtp.messages[0].text
    smtp.refuse(times=1, reply="451 4.3.0 Try again later")   # refuse the next DATA
    smtp.reject_recipient("nobody@example.org")                # 550 at RCPT TO
"""

from __future__ import annotations

import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


@dataclass
class SmtpMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    t: float  # arrival, time.monotonic()

    @property
    def text(self) -> str:
        """The text/plain body."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.server.rejected.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            if self.server.refusals:
                reply, left = self.server.refusals[0]
                if left is not None:
                    if left <= 1:
                        self.server.refusals.pop(0)
                    else:
                        self.server.refusals[0] = (reply, left - 1)
                return reply
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode()
        parsed = BytesParser(policy=email.policy.default).parsebytes(data)
        msg = SmtpMessage(str(envelope.mail_from), list(envelope.rcpt_tos), data, parsed, time.monotonic())  # type: ignore[arg-type]
        with self.server.lock:
            self.server.messages.append(msg)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's Controller, bound to port 0 (a free port chosen by the OS): the real port is read from
    the listening socket before the controller's own readiness probe connects to it."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    def __init__(self, host: str = HOST, **smtp_options: Any):
        self.host = host
        self.messages: list[SmtpMessage] = []
        self.refusals: list[tuple[str, int | None]] = []
        self.rejected: dict[str, str] = {}
        self.lock = threading.Lock()
        # SMTPUTF8 so addresses and headers outside ASCII reach the tests as sent.
        self.controller = _Controller(_Handler(self), hostname=host, port=0, enable_SMTPUTF8=True, **smtp_options)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self, times: int | None = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next `times` messages (None: all) at DATA with `reply` instead of accepting them."""
        with self.lock:
            self.refusals.append((reply, times))

    def reject_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        self.rejected[address.lower()] = reply

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.refusals.clear()
            self.rejected.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[SmtpMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        with self.lock:
            return list(self.messages)
