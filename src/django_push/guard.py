"""The network guard: which hosts and ports outgoing requests may reach.

Anyone can make a hub send requests, and publishers and subscribers fetch URLs that people
type, so none of them may be aimed at the network they run in. Only globally reachable
addresses on allowed ports pass. The check runs on the host aiohttp really connects to, after
its own normalisation (``127。0。0。1`` is ``127.0.0.1`` by then), and on every address a name
resolves to, so neither a redirect, a Unicode dot nor a DNS answer gets around it.
``PUSH_TRUSTED_DESTINATIONS`` lets a site's own networks and hosts through while the guard
stays on for everything else; ``PUSH_ALLOW_PRIVATE_ADDRESSES`` turns all of it off, for
development and tests.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.connector import Connection
from aiohttp.resolver import ThreadedResolver
from aiohttp.tracing import Trace
from yarl import URL

from django_push.conf import conf

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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


@dataclass(frozen=True)
class Destination:
    """One entry of ``PUSH_TRUSTED_DESTINATIONS``: a network or a host name, and maybe a port.

    Without a port, the entry trusts the address or name on ``PUSH_ALLOWED_PORTS`` only.
    """

    network: IPNetwork | None
    name: str | None
    port: int | None

    def admits(self, host: str, address: IPAddress | None, port: int | None) -> bool:
        """Whether this entry lets ``host`` (at ``address``) through on ``port``; a ``None``
        port asks about the host alone."""
        if port is not None:
            on_port = port in conf.PUSH_ALLOWED_PORTS if self.port is None else port == self.port
            if not on_port:
                return False
        if self.network is not None:
            return address is not None and _in_network(address, self.network)
        return host.rstrip(".").lower() == self.name


def _in_network(address: IPAddress, network: IPNetwork) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and network.version == 4:
        address = embedded_ipv4(address) or address
    return address.version == network.version and address in network


def parse_destination(entry: str) -> Destination:
    """Read ``"10.0.0.0/8"``, ``"10.0.0.5:8080"``, ``"[fd00::1]:8080"``, ``"hub.internal"``
    or ``"hub.internal:8080"``; raise ``ValueError`` for anything else."""
    host, port = entry.strip(), None
    if host.startswith("["):  # [IPv6] or [IPv6]:port or [IPv6/len]:port
        inside, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r}: unbalanced brackets")
        host, port = inside, _port(entry, rest[1:]) if rest else None
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = _port(entry, number)
    try:
        return Destination(ipaddress.ip_network(host, strict=False), None, port)
    except ValueError:
        pass
    name = host.rstrip(".").lower()
    if not name or not re.fullmatch(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*", name):
        raise ValueError(f"{entry!r} is neither a network nor a host name")
    if NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        raise ValueError(f"{entry!r} is not a canonical address")
    return Destination(None, name, port)


def _port(entry: str, number: str) -> int:
    if not number.isdigit() or not 0 < int(number) < 65536:
        raise ValueError(f"{entry!r}: {number!r} is not a port number")
    return int(number)


def trusted_destinations() -> tuple[Destination, ...]:
    """``PUSH_TRUSTED_DESTINATIONS`` parsed (entries ``check`` reports as wrong are skipped)."""
    entries: object = conf.PUSH_TRUSTED_DESTINATIONS
    if not isinstance(entries, (list, tuple)):
        return ()
    return _parsed(tuple(entry for entry in entries if isinstance(entry, str)))


@functools.lru_cache(maxsize=8)
def _parsed(entries: tuple[str, ...]) -> tuple[Destination, ...]:
    destinations = []
    for entry in entries:
        try:
            destinations.append(parse_destination(entry))
        except ValueError:
            continue  # E014
    return tuple(destinations)


def is_trusted(host: str, address: IPAddress | None, port: int | None) -> bool:
    """Whether an entry of ``PUSH_TRUSTED_DESTINATIONS`` lets ``host`` (at ``address``,
    when known) through on ``port``."""
    return any(entry.admits(host, address, port) for entry in trusted_destinations())


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
    name, port = host.rstrip("."), url.port
    if is_trusted(name, literal, port):
        return None
    private = (literal is None and (name == "localhost" or name.endswith(".localhost"))) or (
        literal is not None and not is_public_address(str(literal))
    )
    if private:
        what = f"host {name}" if literal is None else str(literal)
        if not any(entry.admits(name, literal, None) for entry in trusted_destinations()):
            return f"{what} is not a public address (to trust it, {trust_hint(name, port)})"
        if port in conf.PUSH_ALLOWED_PORTS:
            hint = trust_hint(name, port)
            return f"{what} is trusted on other ports only (to trust this one, {hint})"
    if port not in conf.PUSH_ALLOWED_PORTS:
        return (
            f"port {port} is not allowed (add it to PUSH_ALLOWED_PORTS, or "
            f"{trust_hint(name, port)} for this host only)"
        )
    return None


def trust_hint(host: str, port: int | None) -> str:
    """How to let ``host`` through on ``port``: the entry to add to the allow-list."""
    entry = f"[{host}]" if ":" in host else host
    if port not in conf.PUSH_ALLOWED_PORTS:
        entry = f"{entry}:{port}"
    return f"add {entry!r} to PUSH_TRUSTED_DESTINATIONS"


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
            address = result["host"]
            if not is_public_address(address) and not is_trusted(
                host, ipaddress.ip_address(address.split("%", 1)[0]), port
            ):
                raise RefusedAddress(
                    f"{host} resolves to {address}, which is not a public address "
                    f"(to trust it, {trust_hint(host, port)})"
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
