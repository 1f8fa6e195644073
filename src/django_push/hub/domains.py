"""What the caps on pending verifications count: the callback's registrable domain.

Host names cost nothing under a wildcard domain, so counting them let one domain fill the
hub's total. A registrable domain costs a registration. The client's address was the other
choice: it is the proxy's behind a reverse proxy (every client would share one cap), and an
IPv6 client has a /64 of them for free.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList


@cache
def _suffixes() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    # ICANN rules only: the private section lists services that hand out subdomains for
    # free (github.io, duckdns.org...), which would make each of those a domain of its own.
    return PublicSuffixList(only_icann=True)


def registrable_domain(url: str) -> str:
    """``url``'s registrable domain, lower-cased ("example.co.uk" for
    "https://a.b.example.co.uk/"); an IPv6 address counts as its /64, a name that is a
    public suffix itself as that name."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""
    if not host:
        return ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return (_suffixes().privatesuffix(host) or host)[:255]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return host
