"""Pytest fixtures for the fake providers and the SMTP server (loaded from tests/conftest.py).

- fake_gateway(kind="http", **options) -> FakeGateway     factory; every server it starts is stopped after
                                                          the test
- fake_twilio, fake_telerivet, fake_africastalking, fake_http   one started FakeGateway of that kind
- fake_gateway_process(kind="http", lean=False, **options) -> FakeGatewayProcess   factory; the fake runs
                                                          in a child process (multi-worker, throughput)
- smsc -> FakeSmsc                                        a started fake SMSC (SMPP 3.4) on 127.0.0.1
- smtp_server -> SmtpServer                               a started aiosmtpd server on 127.0.0.1
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol, Self, TypeVar

import pytest

from fakes.gateways import FakeGateway, FakeGatewayProcess
from fakes.smsc import FakeSmsc
from tests.servers.smtp import SmtpServer

# The fake providers listen on 127.0.0.1, which casemsg refuses to send to unless the installation allows
# internal addresses. This process allows them already (settings: on under pytest); worker processes a
# test starts (without PYTEST_VERSION) inherit this instead.
os.environ.setdefault("CASEMSG_GATEWAY_ALLOW_PRIVATE", "1")


class _Fake(Protocol):
    def start(self) -> Self: ...
    def stop(self) -> None: ...


F = TypeVar("F", bound=_Fake)


def started_fakes(cls: Callable[..., F]) -> Iterator[Callable[..., F]]:
    """A fixture's body: `make(kind, **options)` starts a fake of `cls` (its own default kind when none);
    every one started is stopped when the test ends (the fake providers, the fake sources, …)."""
    started: list[F] = []

    def make(*args: Any, **options: Any) -> F:
        fake = cls(*args, **options).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def fake_gateway() -> Iterator[Callable[..., FakeGateway]]:
    yield from started_fakes(FakeGateway)


@pytest.fixture
def fake_twilio(fake_gateway: Callable[..., FakeGateway]) -> FakeGateway:
    return fake_gateway("twilio")


@pytest.fixture
def fake_telerivet(fake_gateway: Callable[..., FakeGateway]) -> FakeGateway:
    return fake_gateway("telerivet")


@pytest.fixture
def fake_africastalking(fake_gateway: Callable[..., FakeGateway]) -> FakeGateway:
    return fake_gateway("africastalking")


@pytest.fixture
def fake_http(fake_gateway: Callable[..., FakeGateway]) -> FakeGateway:
    return fake_gateway("http")


@pytest.fixture
def fake_gateway_process() -> Iterator[Callable[..., FakeGatewayProcess]]:
    yield from started_fakes(FakeGatewayProcess)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smsc() -> Iterator[FakeSmsc]:
    """A started fake SMSC (fakes/smsc.py) on 127.0.0.1; this process's SMPP binds are closed after the test."""
    from casemsg.gateways import smpp_bind

    server = FakeSmsc().start()
    yield server
    smpp_bind.shutdown()
    server.stop()
