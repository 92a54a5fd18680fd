"""casemsg.core.netguard: address classification, URL checks at save time, and guarded sends against real
aiohttp servers on loopback (no other network exists here, so no test resolves a public name)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from casemsg.core.netguard import (
    ALLOW_PRIVATE_ENV,
    BlockedAddress,
    BlockedConnection,
    GuardedResolver,
    UnresolvableHost,
    blocked_reason,
    check_url,
    excerpt,
    guard_trace_config,
    guarded_connector,
    is_blocked_ip,
    make_session,
)
from tests.conftest import can_bind

# --- is_blocked_ip -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("100.64.0.1", "carrier-grade-nat"),
        ("100.127.255.254", "carrier-grade-nat"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "special-purpose"),  # documentation range: never a provider
        ("2001:db8::1", "special-purpose"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        # IPv6 forms that carry an IPv4 address are judged by that address.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::127.0.0.1", "loopback"),  # NAT64
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("::127.0.0.1", "loopback"),  # deprecated IPv4-compatible
        # Legacy numeric IPv4 forms, read the way inet_aton reads them.
        ("2130706433", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("0x7f.1", "loopback"),
        ("0x7f000001", "loopback"),
        ("127.1", "loopback"),
        ("0xa9fea9fe", "metadata"),
    ],
)
def test_internal_addresses_are_blocked_with_their_kind(ip: str, kind: str) -> None:
    assert is_blocked_ip(ip) == kind


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "1.1.1.1", "2001:4860::8888", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"]
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert is_blocked_ip(ip) is None


@pytest.mark.parametrize("not_ip", ["example.com", "", "1.2.3.4.5", "::g"])
def test_non_addresses_are_an_error_not_public(not_ip: str) -> None:
    with pytest.raises(ValueError):
        is_blocked_ip(not_ip)


# --- check_url ---------------------------------------------------------------------------------------


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Replace getaddrinfo: names in `answers` resolve to those addresses, others do not resolve."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)  # the module calls socket.getaddrinfo
    return asked


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "https://10.0.0.5:8443/send",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1%25eth0]/",
        "http://100.64.1.1/",
        "http://0.0.0.0:9000/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://0x7f.0.0.1:6379/",
        "http://127.1/",
        "http://127.0.0.1./",
    ],
)
def test_internal_literals_are_refused_without_dns_and_allowed_by_allow_private(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    asked = fake_dns(monkeypatch, {})
    with pytest.raises(BlockedAddress) as exc:
        check_url(url, allow_private=False)
    assert ALLOW_PRIVATE_ENV + "=1" in exc.value.reason
    check_url(url, allow_private=True)
    assert asked == []  # literals are judged as written, never looked up


def test_odd_numeric_form_reason_names_the_real_address() -> None:
    with pytest.raises(BlockedAddress) as exc:
        check_url("http://0x7f.1/", allow_private=False, label="gateway URL")
    assert exc.value.reason == (
        "gateway URL host '0x7f.1' is a legacy numeric form of 127.0.0.1, a loopback address; "
        "casemsg does not send to internal addresses unless CASEMSG_GATEWAY_ALLOW_PRIVATE=1"
    )
    assert (exc.value.address, exc.value.kind) == ("127.0.0.1", "loopback")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://2852039166/",  # 169.254.169.254 as one number
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_cloud_metadata_is_refused_even_when_private_addresses_are_allowed(url: str) -> None:
    with pytest.raises(BlockedAddress) as exc:
        check_url(url, allow_private=True, resolve=False)
    assert exc.value.kind == "metadata"
    assert "never sends to cloud metadata" in exc.value.reason


@pytest.mark.parametrize("url", ["http://8.8.8.8/sms", "https://[2001:4860::8888]:443/x"])
def test_public_literals_are_allowed_without_dns(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    asked = fake_dns(monkeypatch, {})
    check_url(url, allow_private=False)
    assert asked == []


def test_localhost_resolves_to_loopback_and_is_refused_unless_private_allowed() -> None:
    with pytest.raises(BlockedAddress) as exc:
        check_url("http://localhost/", allow_private=False)
    assert exc.value.kind == "loopback"
    check_url("http://localhost/", allow_private=True)  # real resolution through /etc/hosts
    check_url("http://LocalHost:8080/", allow_private=True)
    with pytest.raises(BlockedAddress):
        check_url("http://api.localhost/", allow_private=False, resolve=False)  # RFC 6761: always loopback


def test_a_name_is_refused_when_any_of_its_addresses_is_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(
        monkeypatch,
        {"gw.example": ["127.0.0.1"], "mixed.example": ["8.8.8.8", "10.0.0.7"], "ok.example": ["8.8.8.8"]},
    )
    with pytest.raises(BlockedAddress) as exc:
        check_url("https://gw.example/send", allow_private=False, label="gateway URL")
    assert exc.value.reason == (
        "gateway URL host 'gw.example' resolves to 127.0.0.1, a loopback address; "
        "casemsg does not send to internal addresses unless CASEMSG_GATEWAY_ALLOW_PRIVATE=1"
    )
    with pytest.raises(BlockedAddress) as exc:
        check_url("https://mixed.example/", allow_private=False)
    assert (exc.value.address, exc.value.kind) == ("10.0.0.7", "private")
    check_url("https://ok.example/", allow_private=False)
    check_url("https://mixed.example/", allow_private=True)


def test_an_unresolvable_host_gets_its_own_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    with pytest.raises(UnresolvableHost) as exc:
        check_url("https://no-such-gateway.example/", allow_private=False, label="event webhook URL")
    assert isinstance(exc.value, BlockedAddress)  # one except clause covers every refusal
    assert exc.value.reason.startswith("event webhook URL host 'no-such-gateway.example' does not resolve")


def test_resolve_false_does_not_look_names_up(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_dns(monkeypatch, {})
    check_url("https://gw.example/", allow_private=False, resolve=False)
    assert asked == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "ftp://files.example/",
        "javascript:alert(1)",
        "dict://gw.example:11211/",
        "//gw.example/no-scheme",
        "gw.example/no-scheme",
    ],
)
def test_only_http_and_https_schemes(url: str) -> None:
    with pytest.raises(BlockedAddress) as exc:
        check_url(url, allow_private=True, resolve=False)
    assert "only sends over http:// or https://" in exc.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://trusted.example@127.0.0.1/",
        "http://user:secret@gw.example/",
        "http://trusted.example:80@8.8.8.8/",
        "http://gw.example\\@127.0.0.1/",
        "http://8.8.8.8 127.0.0.1/",
        "http://gw.example/\r\nHost: evil",
        "http:///path-only",
        "http://[::1/",
        "http://gw.example:99999/",
        "http://gw_ex%41mple/",
    ],
)
def test_userinfo_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_url(url, allow_private=True, resolve=False)


def test_custom_block_predicate_is_not_lifted_by_allow_private() -> None:
    def policy(ip: str) -> str | None:
        return "office" if ip == "8.8.4.4" else None

    with pytest.raises(BlockedAddress) as exc:
        check_url("http://8.8.4.4/", allow_private=True, blocked=policy)
    assert exc.value.kind == "office"
    check_url("http://127.0.0.1/", allow_private=False, blocked=policy)  # the predicate replaces the default


# --- send time: real aiohttp servers on loopback -------------------------------------------------------


@dataclass
class Served:
    host: str
    port: int = 0
    hits: list[str] = field(default_factory=list)
    redirect_to: str = ""  # where GET /start redirects

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


@asynccontextmanager
async def serve(host: str) -> AsyncIterator[Served]:
    served = Served(host)

    async def handle(request: web.Request) -> web.StreamResponse:
        served.hits.append(request.path)
        if request.path == "/start" and served.redirect_to:
            raise web.HTTPFound(served.redirect_to)
        if request.path == "/relative":
            raise web.HTTPFound("/final")
        return web.Response(text=f"hello from {host}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, 0).start()
        served.port = int(runner.addresses[0][1])
        yield served
    finally:
        await runner.cleanup()


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await coro_fn()

    asyncio.run(main())


def test_guarded_session_cannot_reach_loopback_and_the_server_sees_nothing() -> None:
    async def scenario() -> None:
        async with serve("127.0.0.1") as server:
            async with make_session(False) as session:
                with pytest.raises(BlockedConnection) as exc:
                    await session.get(server.url("/"))
                assert "127.0.0.1" in exc.value.reason and ALLOW_PRIVATE_ENV in exc.value.reason
                for url in (f"http://localhost:{server.port}/", f"http://0x7f.1:{server.port}/"):
                    with pytest.raises((BlockedConnection, aiohttp.ClientError)) as exc2:
                        await session.get(url)
                    assert blocked_reason(exc2.value) is not None
            assert server.hits == []

    run(scenario)


def test_allow_private_session_reaches_loopback() -> None:
    async def scenario() -> None:
        async with serve("127.0.0.1") as server:
            async with make_session(True) as session:
                async with session.get(server.url("/")) as resp:
                    assert resp.status == 200
                async with session.get(f"http://localhost:{server.port}/by-name") as resp:
                    assert resp.status == 200
            assert server.hits == ["/", "/by-name"]

    run(scenario)


def test_connector_alone_blocks_names_and_literals() -> None:
    """Without the trace hooks: the resolver refuses names (what DNS rebinding relies on), the socket
    factory refuses IP literals, which aiohttp connects to without asking the resolver."""

    async def scenario() -> None:
        async with serve("127.0.0.1") as server:
            async with aiohttp.ClientSession(connector=guarded_connector(False)) as session:
                with pytest.raises(aiohttp.ClientConnectorDNSError) as by_name:
                    await session.get(f"http://localhost:{server.port}/")
                assert "resolves to 127.0.0.1, a loopback address" in (blocked_reason(by_name.value) or "")
                with pytest.raises(aiohttp.ClientConnectorError) as by_literal:
                    await session.get(server.url("/"))
                assert "127.0.0.1" in (blocked_reason(by_literal.value) or "")
                assert isinstance(by_literal.value.os_error, BlockedConnection)
            assert server.hits == []

    run(scenario)


class FixedResolver(AbstractResolver):
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=6, flags=0) for a in self.addresses
        ]

    async def close(self) -> None:
        pass


def test_resolver_drops_internal_answers_and_refuses_when_none_remain() -> None:
    async def scenario() -> None:
        mixed = GuardedResolver(False, inner=FixedResolver(["10.0.0.1", "8.8.8.8", "169.254.169.254"]))
        assert [r["host"] for r in await mixed.resolve("gw.example", 443)] == ["8.8.8.8"]
        internal = GuardedResolver(False, inner=FixedResolver(["127.0.0.1", "::1"]), label="gateway URL")
        with pytest.raises(BlockedConnection) as exc:
            await internal.resolve("rebind.example", 80)
        assert exc.value.reason.startswith("gateway URL host 'rebind.example' resolves to 127.0.0.1")
        lifted = GuardedResolver(True, inner=FixedResolver(["10.0.0.1", "169.254.169.254"]))
        assert [r["host"] for r in await lifted.resolve("gw.example", 443)] == ["10.0.0.1"]

    run(scenario)


def test_redirect_to_a_blocked_address_is_refused_at_the_hop() -> None:
    """First hop 127.0.0.1 is allowed by the injected policy, the redirect target 127.0.0.2 is not.

    The control run proves the redirect really goes to the second server; each guarded run then shows
    the second server never receives a request, for the full session and for each layer on its own.
    """
    if not can_bind("127.0.0.2"):
        pytest.skip("this system cannot bind 127.0.0.2")

    def policy(ip: str) -> str | None:
        return "test-blocked" if ip == "127.0.0.2" else None

    async def scenario() -> None:
        async with serve("127.0.0.1") as first, serve("127.0.0.2") as second:
            first.redirect_to = second.url("/target")

            async with make_session(True) as session:  # control: nothing blocked, the hop is followed
                async with session.get(first.url("/start")) as resp:
                    assert resp.status == 200 and await resp.text() == "hello from 127.0.0.2"
            assert (first.hits, second.hits) == (["/start"], ["/target"])
            first.hits.clear()
            second.hits.clear()

            async with make_session(True, blocked=policy) as session:
                with pytest.raises(BlockedConnection) as exc:
                    await session.get(first.url("/start"))
                assert exc.value.reason.startswith(
                    "URL redirect host '127.0.0.2' is an address blocked as test-blocked"
                )
                async with session.get(first.url("/relative")) as resp:  # same-host redirects still work
                    assert resp.status == 200
            assert first.hits == ["/start", "/relative", "/final"]

            trace_only = aiohttp.ClientSession(trace_configs=[guard_trace_config(True, blocked=policy)])
            async with trace_only as session:
                with pytest.raises(BlockedConnection):
                    await session.get(first.url("/start"))

            connector_only = aiohttp.ClientSession(connector=guarded_connector(True, blocked=policy))
            async with connector_only as session:
                with pytest.raises(aiohttp.ClientConnectorError) as exc2:
                    await session.get(first.url("/start"))
                assert "127.0.0.2" in (blocked_reason(exc2.value) or "")

            assert second.hits == []

    run(scenario)


def test_make_session_refuses_settings_that_bypass_the_guard_and_keeps_trace_configs() -> None:
    async def scenario() -> None:
        with pytest.raises(TypeError):
            make_session(False, connector=aiohttp.TCPConnector())
        with pytest.raises(TypeError):
            make_session(False, trust_env=True)
        with pytest.raises(TypeError):
            make_session(False, proxy="http://proxy.example:3128")
        mine = aiohttp.TraceConfig()
        async with make_session(False, trace_configs=[mine], connector_kwargs={"limit": 5}) as session:
            assert mine in session.trace_configs and len(session.trace_configs) == 2
            assert isinstance(session.connector, aiohttp.TCPConnector) and session.connector.limit == 5

    run(scenario)


def test_blocked_reason_ignores_other_errors() -> None:
    assert blocked_reason(ValueError("nope")) is None
    assert blocked_reason(aiohttp.ClientError("down")) is None


# --- excerpt -------------------------------------------------------------------------------------------


def test_excerpt_strips_markup_scripts_and_entities() -> None:
    body = (
        "<html><head><title>502 Bad Gateway</title><style>h1{color:red}</style>"
        "<script>var secret = 1;</script></head><body><!-- debug: token=abc -->"
        "<h1>Error</h1>\n\n<p>Upstream   &amp; friends &lt;b&gt;failed&lt;/b&gt; at 1 &lt; 2</p></body></html>"
    )
    assert excerpt(body) == "502 Bad Gateway Error Upstream & friends failed at 1 < 2"


def test_excerpt_removes_control_and_invisible_characters() -> None:
    body = "OK\x00\x1b[31mred\x07\tdone\u202eevil\u200b!\r\n\x85end"
    assert excerpt(body) == "OK [31mred doneevil! end"  # the bidi override and zero-width space are gone


def test_excerpt_decodes_bytes_leniently() -> None:
    assert excerpt(b"caf\xc3\xa9 \xff\xfe bad") == "caf\u00e9 \ufffd\ufffd bad"


def test_excerpt_truncates_to_the_limit_with_an_ellipsis() -> None:
    text = excerpt("word " * 100, limit=20)
    assert len(text) <= 20 and text.endswith("…")
    assert text == "word word word word…"
    assert excerpt("short", limit=20) == "short"
    assert excerpt("<p>" + "x" * 10 + "</p>", limit=10) == "x" * 10  # tags do not count
    assert excerpt("<p>" + "x" * 11 + "</p>", limit=10) == "x" * 9 + "…"
    assert excerpt("<div class='unterminated", limit=10) == ""
    with pytest.raises(ValueError):
        excerpt("x", limit=0)
