"""The network guard: which hosts and ports outgoing requests may reach.

Anyone can make a hub send requests, and publishers and subscribers fetch URLs that people
type, so none of them may be aimed at the network they run in. Only globally reachable
addresses on allowed ports pass. The check runs on the host aiohttp really connects to, after
its own normalisation (``127。0。0。1`` is ``127.0.0.1`` by then), and on every address a name
resolves to, so neither a redirect, a Unicode dot nor a DNS answer gets around it.
``PUSH_ALLOW_PRIVATE_ADDRESSES`` turns all of it off, for development and tests.
"""

from __future__ import annotations

import ipaddress
import re
import socket

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.connector import Connection
from aiohttp.resolver import ThreadedResolver
from aiohttp.tracing import Trace
from yarl import URL

from django_push.conf import conf

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052) and the
# deprecated IPv4-compatible form. IPv4-mapped and 6to4 have their own ipaddress properties.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Never globally reachable, although some Python versions' is_global says otherwise.
NOT_GLOBAL = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.IPv6Network("3fff::/20"),  # documentation (RFC 9637)
    ipaddress.IPv6Network("fec0::/10"),  # site-local (deprecated, still routed in places)
)
# What the C resolver also reads as IPv4: a last label of digits or 0x-hex (WHATWG URL).
NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)", re.IGNORECASE)


class RefusedAddress(OSError):
    """The guard refused a host, an address or a port."""


def enabled() -> bool:
    """Whether requests are guarded: always, unless the development switch is on."""
    return not conf.PUSH_ALLOW_PRIVATE_ADDRESSES


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or ip in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """True only for a globally reachable unicast address (IPv4 inside IPv6 judged as IPv4)."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in NOT_GLOBAL):
            return False
        ip = embedded_ipv4(ip) or ip
    # is_global alone lets multicast through on Python 3.11 .. 3.13.
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
    )


def address_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, ``None`` for a name; refuses non-canonical IPv4 forms.

    ``2130706433``, ``0x7f.1``, ``127.1`` and ``0177.0.0.1`` are 127.0.0.1 to the C
    resolver, and to some aiohttp versions; no URL a person means to share looks like that.
    """
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        raise RefusedAddress(f"host {host} is not a canonical IPv4 address")
    return None


def refusal(url: URL) -> str | None:
    """Why the guard refuses ``url`` without a DNS lookup, or ``None``.

    ``url`` is a yarl URL, normalised as aiohttp will connect to it. A host name passes here;
    the addresses it resolves to are checked by :class:`GuardedResolver` when connecting.
    """
    host = (url.raw_host or "").lower()
    try:
        literal = address_literal(host)
    except RefusedAddress as exc:
        return str(exc)
    name = host.rstrip(".")
    if literal is None and (name == "localhost" or name.endswith(".localhost")):
        return f"host {name} is not a public address (a loopback name)"
    if literal is not None and not is_public_address(str(literal)):
        return f"{literal} is not a public address"
    if url.port not in conf.PUSH_ALLOWED_PORTS:
        return f"port {url.port} is not allowed (PUSH_ALLOWED_PORTS)"
    return None


class GuardedResolver(ThreadedResolver):
    """Resolves with the system resolver, then refuses if any address is not public.

    Refusing the whole answer, not just its private addresses, leaves DNS rebinding with a
    mixed answer nothing to work with. The connector connects to exactly these addresses.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for result in results:
            if not is_public_address(result["host"]):
                raise RefusedAddress(
                    f"{host} resolves to {result['host']}, which is not a public address"
                )
        return results


class GuardedConnector(aiohttp.TCPConnector):
    """A connector that applies the guard to every connection it opens or reuses.

    aiohttp connects to an address literal without asking any resolver, so ``connect()``
    checks the URL as aiohttp normalised it; names go through :class:`GuardedResolver`.
    """

    def __init__(self, *, limit: int = 100, ttl_dns_cache: int | None = 60) -> None:
        super().__init__(limit=limit, ttl_dns_cache=ttl_dns_cache, resolver=GuardedResolver())

    async def connect(
        self, req: aiohttp.ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        reason = refusal(req.url)
        if reason is not None:
            raise RefusedAddress(reason)
        return await super().connect(req, traces, timeout)
