"""Keep project-configured URLs (gateway URLs, event webhooks) away from internal addresses.

casemsg sends HTTP requests to URLs that *projects* type in. Without a guard, a project could point a
gateway at ``http://169.254.169.254/`` (cloud credentials), ``http://127.0.0.1:6379/`` (the queue's Redis)
or a private-network admin page, and read the answer back through error details: server-side request
forgery. An installation that really sends to a gateway on its own network sets
``CASEMSG_GATEWAY_ALLOW_PRIVATE=1``; the caller maps that to the ``allow_private`` boolean used here.

Two moments are guarded, because one is not enough:

- **When a project saves a URL**, ``check_url`` refuses bad schemes, userinfo, internal IP literals
  (including legacy numeric forms such as ``2130706433`` or ``0x7f.1``) and names that resolve to an
  internal address, with a sentence the project can act on.
- **When casemsg sends**, the name may resolve differently (DNS rebinding) and the provider may
  redirect. ``make_session`` returns an ``aiohttp.ClientSession`` guarded three ways:

  1. ``GuardedResolver`` drops internal addresses from every DNS answer the connector uses;
  2. a socket factory re-checks the exact address right before each ``connect()`` — aiohttp does not
     call the resolver for IP-literal hosts, so this is the backstop that no URL form can skip;
  3. a ``TraceConfig`` checks the host of the first URL (``on_request_start``, which aiohttp 3.14 sends
     once per request) and of every redirect target (``on_request_redirect``, sent for each hop before
     aiohttp follows it), so a refused hop fails early with a clear sentence.

Recommended use (inside a coroutine, since aiohttp needs a running loop)::

    async with make_session(allow_private) as session:
        async with session.post(url, data=...) as resp:
            ...

A refused send raises ``BlockedConnection`` (an ``OSError``), either directly or wrapped by aiohttp in a
``ClientConnectorError``; ``blocked_reason(exc)`` finds the sentence in both cases, so a gateway can
record it as a permanent failure instead of retrying.

Limitation: a proxy resolves names itself, so the DNS guard cannot see the target behind it;
``make_session`` refuses ``trust_env=True`` and a session-wide ``proxy`` for that reason.
"""

from __future__ import annotations

import errno
import html
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "BlockedAddress",
    "BlockedCheck",
    "BlockedConnection",
    "GuardedResolver",
    "LIFTABLE_KINDS",
    "UnresolvableHost",
    "blocked_reason",
    "check_url",
    "excerpt",
    "guard_trace_config",
    "guarded_connector",
    "guarded_socket_factory",
    "is_blocked_ip",
    "make_session",
]

ALLOW_PRIVATE_ENV = "CASEMSG_GATEWAY_ALLOW_PRIVATE"

BlockedCheck = Callable[[str], str | None]
"""A block predicate: an IP address string in, the kind of internal address (or None if public) out."""

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*cidrs: str) -> tuple[_Net, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Instance-metadata services hand out cloud credentials: the most valuable target of a forged request,
# so they keep their own kind, which even allow_private does not lift.
_METADATA_IPS: frozenset[_IP] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.169.253",  # AWS VPC DNS
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
    )
)
# Names that are internal by definition (RFC 6761 reserves .localhost for loopback), refused even when
# the caller cannot or does not want to resolve.
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "instance-data"})

_V4_UNSPECIFIED = _nets("0.0.0.0/8")  # "this network": Linux connects 0.x to the local host
_V4_LOOPBACK = _nets("127.0.0.0/8")
_V4_LINK_LOCAL = _nets("169.254.0.0/16")
_V4_PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_V4_CGNAT = _nets("100.64.0.0/10")  # often reaches other tenants or the provider's own network
_V4_MULTICAST = _nets("224.0.0.0/4")
_V4_RESERVED = _nets("240.0.0.0/4")  # includes 255.255.255.255
_V6_LINK_LOCAL = _nets("fe80::/10")
_V6_PRIVATE = _nets("fc00::/7", "fec0::/10")  # unique-local, and deprecated site-local
_V6_MULTICAST = _nets("ff00::/8")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the low 32 bits are the IPv4 target
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: site-local translators
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d form

_KIND_PHRASES: dict[str, str] = {
    "loopback": "a loopback address",
    "private": "a private-network address",
    "link-local": "a link-local address",
    "carrier-grade-nat": "a carrier-grade NAT (shared) address",
    "unspecified": "an unspecified address",
    "multicast": "a multicast address",
    "reserved": "a reserved address",
    "special-purpose": "a special-purpose (not publicly routed) address",
    "metadata": "a cloud metadata address",
}

LIFTABLE_KINDS = frozenset(_KIND_PHRASES) - {"metadata"}
"""The kinds that allow_private lets through. Cloud metadata is never lifted: no gateway lives there,
and an installation that allows its own network still must not hand out its cloud credentials. A custom
block predicate's own kinds are not in this set either, so they block regardless of allow_private."""


class BlockedAddress(ValueError):
    """A configured URL casemsg refuses to send to; ``reason`` is a sentence for the project.

    A ValueError so that config validation that already catches ValueError treats it as bad input.
    """

    def __init__(self, reason: str, *, host: str = "", address: str = "", kind: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.host = host
        self.address = address
        self.kind = kind


class UnresolvableHost(BlockedAddress):
    """The URL's host has no address: refused at save time, since it cannot be checked (or used)."""


class BlockedConnection(OSError):
    """A send refused by the guard. An OSError so aiohttp treats it like any failed connection (it wraps
    it in ClientConnectorError) and gateway code that already catches OSError keeps working."""

    def __init__(self, reason: str, *, host: str = "", address: str = "", kind: str = "") -> None:
        super().__init__(errno.EACCES, reason)
        self.reason = reason
        self.host = host
        self.address = address
        self.kind = kind

    def __str__(self) -> str:
        return self.reason


def blocked_reason(exc: BaseException) -> str | None:
    """The guard's sentence if `exc` is (or wraps) a refusal, else None.

    aiohttp wraps resolver and socket errors in ClientConnectorError (``os_error``, ``__cause__``), while
    errors from trace hooks arrive unwrapped; callers should not have to know which path refused.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BlockedConnection | BlockedAddress):
            return current.reason
        inner = getattr(current, "os_error", None)
        if isinstance(inner, BaseException) and id(inner) not in seen:
            current = inner
            continue
        current = current.__cause__ or current.__context__
    return None


# --- classifying addresses -----------------------------------------------------------------------------


def _parse_ip(ip: str) -> _IP:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        pass
    legacy = _legacy_ipv4(ip)
    if legacy is None:
        raise ValueError(f"{ip!r} is not an IP address")
    return legacy


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read `host` the way the C resolver would if it is an IPv4 address in a legacy numeric form.

    inet_aton (which getaddrinfo uses) accepts decimal (2130706433), octal (0177.0.0.1), hex (0x7f.1)
    and short (127.1) forms, so a check that only knows dotted quads would let them through. Only
    digits, dots and hex notation qualify: glibc's inet_aton also ignores anything after a space.
    """
    candidate = host.rstrip(".")
    if not candidate or not re.fullmatch(r"[0-9a-fA-FxX.]+", candidate) or not candidate[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except OSError:
        return None


def _in(ip: _IP, nets: Iterable[_Net]) -> bool:
    return any(ip in net for net in nets)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, for the forms that deliver to that IPv4 address."""
    if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 reaches 127.0.0.1 on a dual-stack socket
        return ip.ipv4_mapped
    if ip in _NAT64_WELL_KNOWN or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


def _classify_v4(ip: ipaddress.IPv4Address) -> str | None:
    for kind, nets in (
        ("unspecified", _V4_UNSPECIFIED),
        ("loopback", _V4_LOOPBACK),
        ("link-local", _V4_LINK_LOCAL),
        ("private", _V4_PRIVATE),
        ("carrier-grade-nat", _V4_CGNAT),
        ("multicast", _V4_MULTICAST),
        ("reserved", _V4_RESERVED),
    ):
        if _in(ip, nets):
            return kind
    # Everything else IANA lists as not globally reachable (documentation and benchmark ranges,
    # 192.0.0.0/24, ...): not a provider's address, so refused rather than enumerated.
    return None if ip.is_global else "special-purpose"


def _classify_v6(ip: ipaddress.IPv6Address) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        # The embedded address decides: ::ffff:8.8.8.8 is as public as 8.8.8.8.
        return "metadata" if embedded in _METADATA_IPS else _classify_v4(embedded)
    if ip in _NAT64_LOCAL:
        return "special-purpose"
    for kind, nets in (("link-local", _V6_LINK_LOCAL), ("private", _V6_PRIVATE), ("multicast", _V6_MULTICAST)):
        if _in(ip, nets):
            return kind
    if ip.is_reserved:
        return "reserved"
    return None if ip.is_global else "special-purpose"


def is_blocked_ip(ip: str) -> str | None:
    """The kind of internal address `ip` is ('loopback', 'private', 'metadata', ...), or None if public.

    Accepts IPv4 (including legacy numeric forms) and IPv6 (with or without a ``%zone``). Raises
    ValueError for anything that is not an IP address, since answering None ("public") would be unsafe.
    """
    parsed = _parse_ip(ip.strip("[]"))
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id:
        parsed = ipaddress.IPv6Address(str(parsed).split("%", 1)[0])
    if parsed in _METADATA_IPS:
        return "metadata"
    if isinstance(parsed, ipaddress.IPv4Address):
        return _classify_v4(parsed)
    return _classify_v6(parsed)


# --- the policy and its sentences ----------------------------------------------------------------------


def _refused_kind(ip: str, allow_private: bool, blocked: BlockedCheck | None) -> str | None:
    """The kind that makes the guard refuse `ip` under this policy, or None to let it through."""
    kind = (blocked or is_blocked_ip)(ip)
    if kind is None or (allow_private and kind in LIFTABLE_KINDS):
        return None
    return kind


def _tail(kind: str) -> str:
    if kind in LIFTABLE_KINDS:
        return f"casemsg does not send to internal addresses unless {ALLOW_PRIVATE_ENV}=1"
    if kind == "metadata":
        return "casemsg never sends to cloud metadata addresses"
    return "this installation does not send there"


def _reason(label: str, host: str, verb: str, address: str, kind: str) -> str:
    phrase = _KIND_PHRASES.get(kind, f"an address blocked as {kind}")
    if address == host:  # an IP literal: "host '127.0.0.1' is a loopback address"
        return f"{label} host '{host}' is {phrase}; {_tail(kind)}"
    return f"{label} host '{host}' {verb} {address}, {phrase}; {_tail(kind)}"


def _literal_address(host: str) -> tuple[str, str] | None:
    """(address, verb) if `host` is an IP literal in any form the resolver would accept, else None."""
    bare = host.strip("[]")
    try:
        return str(ipaddress.ip_address(bare)), "is"
    except ValueError:
        pass
    legacy = _legacy_ipv4(bare)
    if legacy is not None:
        return str(legacy), "is a legacy numeric form of"
    return None


def _name_kind(host: str) -> str | None:
    """Names that are internal by definition, refused without asking DNS."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    if name in _METADATA_NAMES:
        return "metadata"
    return None


def _check_host_offline(host: str, allow_private: bool, blocked: BlockedCheck | None, label: str) -> bool:
    """Refuse `host` if it is internal without resolving it; True when it was an IP literal (fully
    checked), False when it is a name that still needs resolving to be sure."""
    literal = _literal_address(host)
    if literal is not None:
        address, verb = literal
        kind = _refused_kind(address, allow_private, blocked)
        if kind is not None:
            raise BlockedAddress(_reason(label, host, verb, address, kind), host=host, address=address, kind=kind)
        return True
    kind = _name_kind(host)
    if kind is not None and not (allow_private and kind in LIFTABLE_KINDS):
        what = "a name reserved for loopback" if kind == "loopback" else "a cloud metadata service name"
        raise BlockedAddress(f"{label} host '{host}' is {what}; {_tail(kind)}", host=host, kind=kind)
    return False


_HOST_CHARS = re.compile(r"[A-Za-z0-9._-]+")


def check_url(
    url: str,
    allow_private: bool,
    resolve: bool = True,
    *,
    blocked: BlockedCheck | None = None,
    label: str = "URL",
) -> None:
    """Refuse `url` (raise BlockedAddress with a sentence) unless casemsg may send to it.

    Meant for the moment a project saves a gateway or webhook URL. `label` names the setting in the
    sentence ("gateway URL", "event webhook URL"). With `resolve`, the host is resolved with
    getaddrinfo and refused if ANY address is internal: a name that answers with a mix is a rebinding
    setup, not a provider. An unresolvable host raises UnresolvableHost (a BlockedAddress). `blocked`
    replaces the block predicate (tests, or an installation with its own list).
    """
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url) or "\\" in url:
        # Parsers disagree about whitespace, control characters and backslashes; refusing them removes
        # the disagreement instead of betting on one parser's reading.
        raise BlockedAddress(f"{label} '{url[:200]}' contains whitespace, control characters or backslashes")
    try:
        # yarl is the parser aiohttp uses, so the host checked here is the host aiohttp will connect to.
        parsed = URL(url)
        port = parsed.port
    except ValueError as exc:
        raise BlockedAddress(f"{label} '{url[:200]}' is not a valid URL ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        shown = f"'{parsed.scheme}:'" if parsed.scheme else "no scheme"
        raise BlockedAddress(f"{label} '{url[:200]}' has {shown}; casemsg only sends over http:// or https://")
    if parsed.raw_user is not None or parsed.raw_password is not None or "@" in (parsed.raw_authority or ""):
        # userinfo is how 'http://trusted.example@127.0.0.1/' reads as trusted to a person but not to a parser.
        raise BlockedAddress(
            f"{label} '{url[:200]}' contains a user name or password before the host; "
            "put credentials in the gateway's own settings"
        )
    host = parsed.raw_host or ""
    if not host:
        raise BlockedAddress(f"{label} '{url[:200]}' has no host")
    if _check_host_offline(host, allow_private, blocked, label):
        return
    if not _HOST_CHARS.fullmatch(host.rstrip(".")):
        raise BlockedAddress(f"{label} host '{host}' is not a valid host name")
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(
            f"{label} host '{host}' does not resolve to any address ({exc}); check the spelling", host=host
        ) from exc
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        kind = _refused_kind(address, allow_private, blocked)
        if kind is not None:
            reason = _reason(label, host, "resolves to", address, kind)
            raise BlockedAddress(reason, host=host, address=address, kind=kind)
    if not infos:
        raise UnresolvableHost(f"{label} host '{host}' does not resolve to any address; check the spelling", host=host)


# --- send time: resolver, socket factory, trace hooks ----------------------------------------------------


class GuardedResolver(AbstractResolver):
    """Wraps a resolver (aiohttp's ThreadedResolver by default) and drops internal addresses.

    Checked at every connection's lookup, not when the URL was saved, so a name that later rebinds to
    127.0.0.1 is refused. Raises BlockedConnection when no address is left, which aiohttp surfaces as
    ClientConnectorDNSError. Filtered answers are what aiohttp's DNS cache stores.
    """

    def __init__(
        self,
        allow_private: bool,
        *,
        blocked: BlockedCheck | None = None,
        inner: AbstractResolver | None = None,
        label: str = "URL",
    ) -> None:
        self._allow_private = allow_private
        self._blocked = blocked
        self._label = label
        # Created on first use: ThreadedResolver needs a running loop, a guard should not.
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        first_refusal: BlockedConnection | None = None
        for result in results:
            address = result["host"]
            kind = _refused_kind(address, self._allow_private, self._blocked)
            if kind is None:
                kept.append(result)
            elif first_refusal is None:
                reason = _reason(self._label, host, "resolves to", address, kind)
                first_refusal = BlockedConnection(reason, host=host, address=address, kind=kind)
        if not kept:
            if first_refusal is not None:
                raise first_refusal
            raise OSError(errno.EHOSTUNREACH, f"{self._label} host '{host}' resolved to no address")
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def guarded_socket_factory(
    allow_private: bool,
    *,
    blocked: BlockedCheck | None = None,
    inner: SocketFactoryType | None = None,
    label: str = "URL",
) -> SocketFactoryType:
    """A socket factory for TCPConnector that refuses internal addresses right before connect().

    This is the one check every connection passes, whatever the URL looked like: aiohttp skips the
    resolver for IP literals, and only here is the address the socket will really use known.
    """

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _canon, sockaddr = addr_info
        address = str(sockaddr[0])
        kind = _refused_kind(address, allow_private, blocked)
        if kind is not None:
            reason = _reason(label, address, "is", address, kind)
            raise BlockedConnection(reason, host=address, address=address, kind=kind)
        if inner is not None:
            return inner(addr_info)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def guarded_connector(
    allow_private: bool, *, blocked: BlockedCheck | None = None, label: str = "URL", **kwargs: Any
) -> aiohttp.TCPConnector:
    """A TCPConnector with GuardedResolver and the guarded socket factory; kwargs go to TCPConnector.

    A `resolver` or `socket_factory` passed in is wrapped, not replaced, so it cannot switch the guard off.
    Must be called with a running event loop (aiohttp's requirement).
    """
    kwargs["resolver"] = GuardedResolver(allow_private, blocked=blocked, inner=kwargs.get("resolver"), label=label)
    kwargs["socket_factory"] = guarded_socket_factory(
        allow_private, blocked=blocked, inner=kwargs.get("socket_factory"), label=label
    )
    return aiohttp.TCPConnector(**kwargs)


# Hosts that passed the offline check, by (host, policy): the check is a pure function of them (a name is
# resolved and checked again by the connector on every connection), and a sending worker asks it for each
# request to the same provider host — parsing the address each time measured 4 % of its CPU.
_PASSED: set[tuple[str, bool, BlockedCheck | None]] = set()


def _check_send_host(host: str | None, allow_private: bool, blocked: BlockedCheck | None, label: str) -> None:
    if not host:
        return  # aiohttp refuses host-less URLs itself
    key = (host, allow_private, blocked)
    if key in _PASSED:
        return
    try:
        _check_host_offline(host, allow_private, blocked, label)
    except BlockedAddress as exc:
        raise BlockedConnection(exc.reason, host=exc.host, address=exc.address, kind=exc.kind) from None
    if len(_PASSED) > 1024:
        _PASSED.clear()
    _PASSED.add(key)


def guard_trace_config(
    allow_private: bool, *, blocked: BlockedCheck | None = None, label: str = "URL"
) -> aiohttp.TraceConfig:
    """Trace hooks that refuse internal IP literals and reserved names in the URL and every redirect.

    Checked: the request URL (on_request_start) and each redirect target (on_request_redirect, which
    aiohttp sends with the redirect response before following it; it sends on_request_start only once
    per request, so the redirect hook is what covers later hops). Names are not resolved here — the
    GuardedResolver does that on the connection — so this adds early, clear refusals, while the
    connector remains the backstop. Raises BlockedConnection, which aiohttp passes through unwrapped.
    """

    async def on_start(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        _check_send_host(params.url.raw_host, allow_private, blocked, label)

    async def on_redirect(
        session: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestRedirectParams
    ) -> None:
        response = params.response
        location = response.headers.get("Location") or response.headers.get("URI")
        if not location:
            return  # aiohttp stops at a redirect without a target
        try:
            # Joined like aiohttp does: relative targets keep the current host, absolute ones replace it.
            target = response.url.join(URL(location))
        except ValueError:
            return  # aiohttp refuses an unparsable Location itself
        _check_send_host(target.raw_host, allow_private, blocked, f"{label} redirect")

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_redirect.append(on_redirect)
    return config


def make_session(
    allow_private: bool,
    *,
    blocked: BlockedCheck | None = None,
    label: str = "URL",
    connector_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> aiohttp.ClientSession:
    """The recommended way to send to project-configured URLs: a ClientSession with the guarded connector
    (resolver + socket factory) and the guard's trace hooks. kwargs go to ClientSession,
    connector_kwargs to TCPConnector. Call it inside a coroutine.

    Refuses a `connector` (it would bypass the guard), and `trust_env=True` or a session `proxy` (a proxy
    resolves names itself, out of the guard's sight).
    """
    if "connector" in kwargs:
        raise TypeError("make_session builds its own guarded connector; pass connector_kwargs instead")
    if kwargs.get("trust_env") or kwargs.get("proxy") is not None:
        raise TypeError("make_session does not send through proxies: the proxy would resolve names unguarded")
    trace_configs = list(kwargs.pop("trace_configs", None) or [])
    trace_configs.append(guard_trace_config(allow_private, blocked=blocked, label=label))
    connector = guarded_connector(allow_private, blocked=blocked, label=label, **dict(connector_kwargs or {}))
    return aiohttp.ClientSession(connector=connector, trace_configs=trace_configs, **kwargs)


# --- showing provider answers --------------------------------------------------------------------------

_EXCERPT_INPUT_LIMIT = 64 * 1024  # bounds the work per failed send; the excerpt's head is what matters
_HIDDEN_BLOCKS = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)", re.I | re.S)
_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>")
_UNCLOSED_TAG = re.compile(r"</?[A-Za-z!?][^<>]*\Z")


def excerpt(body: str | bytes, limit: int = 160) -> str:
    """A short, plain-text excerpt of a provider's answer, safe to show to a project.

    Bytes are decoded as UTF-8 with replacement (a provider's odd charset must not raise); scripts,
    styles, comments and tags are removed, entities decoded (then tags removed again, so ``&lt;b&gt;``
    cannot become markup), control and format characters (including bidi overrides) removed, whitespace
    collapsed, and the result cut to `limit` characters ending in '…'.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if isinstance(body, bytes):
        text = body[:_EXCERPT_INPUT_LIMIT].decode("utf-8", "replace")
    else:
        text = body[:_EXCERPT_INPUT_LIMIT]
    text = _HIDDEN_BLOCKS.sub(" ", text)
    text = _UNCLOSED_TAG.sub(" ", _TAG.sub(" ", text))
    text = html.unescape(text)
    text = _UNCLOSED_TAG.sub(" ", _TAG.sub(" ", text))
    cleaned: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace() or category in ("Cc", "Zl", "Zp"):
            cleaned.append(" ")
        elif category in ("Cf", "Cs"):
            continue  # invisible: bidi overrides and zero-width characters can disguise the text
        else:
            cleaned.append(ch)
    text = " ".join("".join(cleaned).split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"
