"""The only module that talks HTTP out.

Every request carries django-push's User-Agent and a timeout, bodies are read up
to a size cap, and the network guard (``django_push.guard``) refuses private addresses
and ports outside the allow-list unless the development switch is on: callers get it
without asking, so none can forget it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import aiohttp.abc
import aiohttp.payload
from django.utils.http import parse_http_date_safe
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from django_push import UA
from django_push.conf import conf
from django_push.exceptions import FetchError, GuardRefusal
from django_push.guard import (
    GuardedConnector,
    RefusedAddress,
    enabled,
    is_public_address,
    refusal,
)

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


# Longest validators kept (the hub's Content.etag and .last_modified columns).
MAX_ETAG = 1024
MAX_DATE = 64


@dataclass(frozen=True, slots=True)
class Validators:
    """A response's ``ETag`` and ``Last-Modified``, as sent, for a conditional request.

    A value that could not be sent back as it came (not printable ASCII, too long) or a
    ``Last-Modified`` that is not an HTTP date is dropped: the next request goes without it.
    """

    etag: str = ""
    last_modified: str = ""

    @classmethod
    def of(cls, response: Response) -> Validators:
        etag = response.headers.get("ETag", "").strip()
        date = response.headers.get("Last-Modified", "").strip()
        if not (_sendable(etag) and len(etag) <= MAX_ETAG):
            etag = ""
        if not (_sendable(date) and len(date) <= MAX_DATE and parse_http_date_safe(date)):
            date = ""
        return cls(etag, date)

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)

    def headers(self) -> dict[str, str]:
        """``If-None-Match`` and ``If-Modified-Since`` for what is known."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def _sendable(value: str) -> bool:
    return value.isascii() and value.isprintable()


def check_url(url: str, *, guard: bool | None = None) -> None:
    """Refuse non-http(s) URLs and, while guarded, what the network guard refuses up front.

    The host is judged as aiohttp will see it (yarl's normalisation), so ``127。0。0。1`` is
    the loopback literal it becomes. Names pass; their addresses are checked on connecting.
    """
    _checked(url, guard)


def _checked(url: str, guard: bool | None) -> URL:
    """:func:`check_url`, returning the URL parsed (aiohttp then need not parse it again)."""
    try:
        target = URL(url)
        absolute = target.scheme in ("http", "https") and bool(target.raw_host)
    except ValueError:  # "http://[::1", a host IDNA cannot encode, ...
        absolute = False
    if not absolute:
        raise FetchError(url, "not an absolute http(s) URL")
    if _guarding(guard):
        reason = refusal(target)
        if reason is not None:
            raise GuardRefusal(url, reason)
    return target


def guard_enabled() -> bool:
    """Whether requests are guarded by default (the development switch is off)."""
    return enabled()


def _guarding(guard: bool | None) -> bool:
    return enabled() if guard is None else guard


def same_origin(first: str | URL, second: str | URL) -> bool:
    """Same scheme, host and port: where a request body (and ``hub.secret``) may be resent."""
    one, other = URL(first), URL(second)
    return (one.scheme, one.host, one.port) == (other.scheme, other.host, other.port)


def client_session(*, guard: bool | None = None, limit: int = 100) -> aiohttp.ClientSession:
    """A session with our User-Agent; one per batch of work, shared by its requests.

    Guarded unless the development switch is on (``guard=None``, the default).
    """
    connector = (
        GuardedConnector(limit=limit, ttl_dns_cache=60)
        if _guarding(guard)
        else aiohttp.TCPConnector(limit=limit, ttl_dns_cache=60)
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
    guard: bool | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Response:
    """Send one request and return its ``Response``; transport failures raise ``FetchError``
    (``GuardRefusal`` when the network guard refused it: retrying cannot help).

    With ``follow_redirects=False``, 307 and 308 are still followed for POSTs: WebSub
    lets a hub move with them and asks subscribers to repeat the request (S-8). Any other
    3xx is returned as it is (a verification answered with a redirect has failed, H-10).
    A redirect that would resend a body to another origin (another host or port, or from
    HTTPS to HTTP) raises ``FetchError``: a subscription request carries ``hub.secret``.
    The network guard applies unless ``guard=False`` or the development switch is on.
    """
    own_session = session is None
    session = session or client_session(guard=guard)
    options = _options(data, headers, auth, timeout)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, guard=guard)
            target = _with_params(url, params)
            async with session.request(method, target, **options) as response:
                hop = _next_hop(url, response, method, options, follow_redirects)
                if hop is None:
                    body = await _read(response, max_bytes)
                    return Response(str(response.url), response.status, response.headers, body)
            method, url = hop
            params = None  # already part of the URL redirected from
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError as exc:
        raise FetchError(url, f"no answer within {options['timeout'].total} seconds") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise _failure(url, exc) from exc
    finally:
        if own_session:
            await session.close()


def _options(
    data: FormData | bytes | None,
    headers: Mapping[str, str] | None,
    auth: Credentials,
    timeout: float | None,
) -> dict[str, Any]:
    """aiohttp's keyword arguments for the first hop: body, headers with Basic credentials,
    timeout; redirects are followed by :func:`request`, so every hop passes ``check_url()``."""
    options: dict[str, Any] = {
        "data": data,
        "headers": dict(headers or {}),
        "timeout": _timeout(timeout),
        "allow_redirects": False,
    }
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        options["headers"]["Authorization"] = f"Basic {token}"
    return options


def _next_hop(
    url: str,
    response: aiohttp.ClientResponse,
    method: str,
    options: dict[str, Any],
    follow_redirects: bool,
) -> tuple[str, str] | None:
    """The ``(method, url)`` a redirect sends the request to, with ``options`` changed for it,
    or ``None`` when ``response`` is the answer.

    303 (and 301/302 after a POST) becomes a GET without body; a body is never resent to
    another origin, and credentials stay with the origin that was given them.
    """
    status, location = response.status, response.headers.get("Location")
    follows = (status in (307, 308) and method == "POST") or (
        follow_redirects and status in REDIRECTS
    )
    if not (location and follows):
        return None
    target = response.url.join(URL(location))
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, options["data"] = "GET", None
    if not same_origin(response.url, target):
        if options["data"] is not None:
            raise FetchError(
                url,
                f"HTTP {status} to another origin ({target.origin()}): "
                "the request body is not sent there",
            )
        options["headers"].pop("Authorization", None)
    return method, str(target)


def _failure(url: str, exc: BaseException) -> FetchError:
    """The ``FetchError`` for a transport failure: a ``GuardRefusal`` if the guard caused it."""
    cause: BaseException | None = exc
    for _ in range(5):
        if cause is None:
            break
        if isinstance(cause, RefusedAddress):
            return GuardRefusal(url, str(cause))
        cause = getattr(cause, "os_error", None) or cause.__cause__ or cause.__context__
    return FetchError(url, str(exc) or type(exc).__name__)


def is_transient(exc: FetchError) -> bool:
    """Whether the same request may succeed a little later: a timeout, or a connection
    refused, reset or dropped (not a refused address, a redirect or a size cap)."""
    if isinstance(exc, GuardRefusal):
        return False
    return isinstance(exc.__cause__, TimeoutError | aiohttp.ClientConnectionError | OSError)


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
    "GuardRefusal",
    "Response",
    "Validators",
    "check_url",
    "client_session",
    "get",
    "guard_enabled",
    "is_public_address",
    "is_transient",
    "post_form",
    "request",
    "same_origin",
]


# A delivery's body goes out in slices of this size: see SharedBody.
BODY_SLICE = 64 * 1024


class SharedBody(aiohttp.payload.Payload):
    """A request body written as slices of one shared buffer, never copied whole.

    A fan-out sends the same body to many subscribers at once. Given plain ``bytes``,
    aiohttp joins the headers and the whole body into one new object before writing (on
    Python before 3.12.9 and 3.13.2), and that copy waits in the connection's buffer until
    the subscriber has read it: one copy of the body per connection in flight. Slices of a
    ``memoryview`` copy only the first slice (joined to the headers); the others are views
    the transport holds until sent, and each write waits for the buffer to drain.
    """

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self._size = len(body)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        body = self._value
        if len(body) <= BODY_SLICE:
            await writer.write(body)
            return
        view = memoryview(body)
        for start in range(0, len(view), BODY_SLICE):
            await writer.write(view[start : start + BODY_SLICE])

    async def write_with_length(
        self, writer: aiohttp.abc.AbstractStreamWriter, content_length: int | None
    ) -> None:
        # aiohttp 3.12+ asks for at most ``content_length`` bytes; we never declare less.
        await self.write(writer)


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float | None = None,
    guard: bool | None = None,
) -> int:
    """POST ``body`` to ``url`` and return the status; the answer's body is not read.

    Redirects are not followed: WebSub counts a 3xx as a failed delivery (H-17).
    Transport failures raise ``FetchError``, the guard's refusals ``GuardRefusal``.
    The body is sent without being copied (:class:`SharedBody`).
    """
    target = _checked(url, guard)  # the session's connector checks again where it connects
    options: dict[str, Any] = {"allow_redirects": False}
    if timeout is not None:  # else the session's default
        options["timeout"] = _timeout(timeout)
    try:
        async with session.post(
            target, data=SharedBody(body), headers=headers, **options
        ) as response:
            return response.status
    except TimeoutError as exc:
        raise FetchError(url, "no answer in time") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise _failure(url, exc) from exc
