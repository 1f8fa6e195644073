"""The only module that talks HTTP out.

Every request carries django-push's User-Agent and a timeout, bodies are read up
to a size cap, and (for the hub) a resolver refuses non-public addresses so the
hub cannot be turned against the network it runs in.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from django_push import UA
from django_push.conf import conf
from django_push.exceptions import FetchError

FormData = Sequence[tuple[str, str]] | Mapping[str, str]
Credentials = tuple[str, str] | None

# Enough for any hub's error text or a verification echo; bigger bodies are cut.
SMALL_BODY = 64 * 1024
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Response:
    """What came back: status, headers, the (capped) body and the final URL."""

    url: str
    status: int
    headers: CIMultiDictProxy[str] = field(repr=False)
    body: bytes = field(repr=False)

    @property
    def status_code(self) -> int:
        """``requests``-style alias, so code written against 1.1's return value keeps working."""
        return self.status

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode(self.charset or "utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header as sent, parameters included (WebSub H-14)."""
        return self.headers.get("Content-Type", "")

    @property
    def charset(self) -> str | None:
        for param in self.content_type.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None

    @property
    def links(self) -> list[str]:
        return self.headers.getall("Link", [])


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url(url: str, *, guard: bool) -> None:
    """Refuse non-http(s) URLs and, when ``guard`` is on, literal non-public IP hosts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(url, "not an absolute http(s) URL")
    if guard:
        try:
            literal = ipaddress.ip_address(parts.hostname)
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not is_public_address(str(literal)):
            raise FetchError(url, f"address {literal} is not public")


class RefusedAddress(OSError):
    """A host name resolved to an address the guard refuses."""


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses non-public addresses."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            if not is_public_address(result["host"]):
                raise RefusedAddress(f"{host} resolves to {result['host']}, which is not public")
        return results

    async def close(self) -> None:
        await self._resolver.close()


def guard_enabled() -> bool:
    return not conf.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES


def client_session(*, guard: bool = False, limit: int = 100) -> aiohttp.ClientSession:
    """A session with our User-Agent; one per batch of work, shared by its requests."""
    connector = aiohttp.TCPConnector(
        limit=limit, resolver=GuardedResolver() if guard else None, ttl_dns_cache=60
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": UA},
        timeout=_timeout(None),
        auto_decompress=True,
        trust_env=False,
    )


def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=conf.timeout if seconds is None else seconds)


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise FetchError(str(response.url), f"body of {declared} bytes is over the {max_bytes} cap")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(str(response.url), f"body is over the {max_bytes} bytes cap")
        chunks.append(chunk)
    return b"".join(chunks)


async def request(
    method: str,
    url: str,
    *,
    data: FormData | bytes | None = None,
    params: Sequence[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: Credentials = None,
    timeout: float | None = None,
    max_bytes: int = SMALL_BODY,
    follow_redirects: bool = False,
    guard: bool = False,
    session: aiohttp.ClientSession | None = None,
) -> Response:
    """Send one request and return its ``Response``; transport failures raise ``FetchError``.

    With ``follow_redirects=False``, 307 and 308 are still followed for POSTs: WebSub
    lets a hub move with them and asks subscribers to repeat the request (S-8). Any other
    3xx is returned as it is (a verification answered with a redirect has failed, H-10).
    """
    own_session = session is None
    session = session or client_session(guard=guard)
    kwargs: dict[str, Any] = {
        "data": data,
        "headers": dict(headers or {}),
        "timeout": _timeout(timeout),
        # Redirects are followed here, not by aiohttp, so every hop passes check_url().
        "allow_redirects": False,
    }
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        kwargs["headers"]["Authorization"] = f"Basic {token}"
    try:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, guard=guard)
            target = _with_params(url, params)
            async with session.request(method, target, **kwargs) as response:
                status, location = response.status, response.headers.get("Location")
                if location and (
                    (status in (307, 308) and method == "POST")
                    or (follow_redirects and status in REDIRECTS)
                ):
                    target_url = response.url.join(URL(location))
                    if target_url.origin() != response.url.origin():
                        kwargs["headers"].pop("Authorization", None)  # credentials stay home
                    url = str(target_url)
                    params = None  # already part of the URL redirected from
                    if status == 303 or (status in (301, 302) and method == "POST"):
                        method, kwargs["data"] = "GET", None
                    continue
                body = await _read(response, max_bytes)
                return Response(str(response.url), response.status, response.headers, body)
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError as exc:
        raise FetchError(url, f"no answer within {kwargs['timeout'].total} seconds") from exc
    except (aiohttp.ClientError, OSError) as exc:
        refused = _refused(exc)
        reason = str(refused or exc) or type(exc).__name__
        raise FetchError(url, reason) from exc
    finally:
        if own_session:
            await session.close()


def _refused(exc: BaseException | None) -> RefusedAddress | None:
    """The guard's refusal, if it is what made aiohttp give up."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, RefusedAddress):
            return exc
        exc = getattr(exc, "os_error", None) or exc.__cause__ or exc.__context__
        seen += 1
    return None


def _with_params(url: str, params: Sequence[tuple[str, str]] | None) -> str:
    """Append ``params`` to ``url``'s own query string with ``&`` (WebSub H-8)."""
    if not params:
        return url
    base, _, fragment = url.partition("#")
    joined = base + ("&" if "?" in base else "?") + urlencode(params)
    return joined + (f"#{fragment}" if fragment else "")


async def post_form(url: str, data: FormData, **kwargs: Any) -> Response:
    """POST ``application/x-www-form-urlencoded`` data (subscription requests, pings)."""
    items = list(data.items()) if isinstance(data, Mapping) else list(data)
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    return await request("POST", url, data=urlencode(items).encode(), headers=headers, **kwargs)


async def get(url: str, **kwargs: Any) -> Response:
    return await request("GET", url, **kwargs)


__all__ = [
    "CIMultiDict",
    "FetchError",
    "Response",
    "check_url",
    "client_session",
    "get",
    "guard_enabled",
    "is_public_address",
    "post_form",
    "request",
]


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float | None = None,
    guard: bool = False,
) -> int:
    """POST ``body`` to ``url`` and return the status; the answer's body is not read.

    Redirects are not followed: WebSub counts a 3xx as a failed delivery (H-17).
    Transport failures raise ``FetchError``.
    """
    if guard:  # callbacks were checked when subscribed; the guard re-checks literal addresses
        check_url(url, guard=guard)
    options: dict[str, Any] = {"allow_redirects": False}
    if timeout is not None:  # else the session's default
        options["timeout"] = _timeout(timeout)
    try:
        async with session.post(url, data=body, headers=headers, **options) as response:
            return response.status
    except TimeoutError as exc:
        raise FetchError(url, "no answer in time") from exc
    except (aiohttp.ClientError, OSError) as exc:
        refused = _refused(exc)
        raise FetchError(url, str(refused or exc) or type(exc).__name__) from exc
