"""Parse and validate what reaches the hub endpoint; every refusal carries its reason (H-3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http import QueryDict
from django.http.request import split_domain_port, validate_host
from django.utils.module_loading import import_string

from django_push import http, protocol
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.urlnorm import decode_unreserved

MAX_URL_LENGTH = 2048


class InvalidRequest(ValueError):
    """A hub request that must be answered with a 4xx; ``str()`` is the reason."""


@dataclass(frozen=True)
class SubscriptionRequest:
    mode: protocol.Mode
    topic: str
    callback: str
    lease_seconds: int | None
    secret: str


@dataclass(frozen=True)
class PublishRequest:
    topics: list[str]


def parse(data: QueryDict) -> SubscriptionRequest | PublishRequest:
    """Turn the form data of a hub request into a typed request, or raise ``InvalidRequest``.

    Unknown parameters are ignored (H-1).
    """
    mode = data.get(protocol.MODE, "")
    if mode == protocol.PUBLISH:
        urls = [*data.getlist(protocol.URL), *data.getlist(protocol.TOPIC)]
        cap = conf.PUSH_HUB_MAX_PUBLISH_URLS
        if len(urls) > cap:  # each one is a fetch: refused before any lookup or row
            raise InvalidRequest(f"hub.mode=publish takes at most {cap} hub.url values")
        urls = list(dict.fromkeys(decode_unreserved(url.strip()) for url in urls if url.strip()))
        if not urls:
            raise InvalidRequest("hub.mode=publish needs hub.url (or hub.topic)")
        for url in urls:
            check_public_url(url, "hub.url")
            if not topic_allowed(url):
                raise InvalidRequest(f"topic {url} is not published through this hub")
        return PublishRequest(urls)
    if mode not in (protocol.SUBSCRIBE, protocol.UNSUBSCRIBE):
        raise InvalidRequest(
            "hub.mode must be subscribe, unsubscribe or publish"
            + (f", not {mode!r}" if mode else "")
        )
    # H-4: stored decoded, so equal URLs compare equal at publish time.
    callback = decode_unreserved(_required(data, protocol.CALLBACK))
    topic = decode_unreserved(_required(data, protocol.TOPIC))
    check_public_url(callback, protocol.CALLBACK)
    check_public_url(topic, protocol.TOPIC)
    if mode == protocol.SUBSCRIBE and not topic_allowed(topic):
        # Refused now: a request the hub never accepted needs no denial GET (WebSub 5.1).
        raise InvalidRequest(f"topic {topic} is not published through this hub")
    lease_seconds = _lease(data.get(protocol.LEASE_SECONDS, "").strip())
    secret = data.get(protocol.SECRET, "")
    if len(secret.encode()) > protocol.MAX_SECRET_BYTES:
        raise InvalidRequest("hub.secret must be less than 200 bytes")
    if "\x00" in secret:
        raise InvalidRequest("hub.secret must not contain NUL characters")
    return SubscriptionRequest(mode, topic, callback, lease_seconds, secret)  # type: ignore[arg-type]


def _lease(raw: str) -> int | None:
    """The lease asked for, capped at the longest this hub grants (the hub may shorten it)."""
    if not raw:
        return None
    lease = protocol.parse_lease(raw, conf.PUSH_HUB_LEASE_SECONDS[2])
    if not lease:  # not digits, or zero
        raise InvalidRequest("hub.lease_seconds must be a positive integer")
    return lease


def _required(data: QueryDict, name: str) -> str:
    value = data.get(name, "").strip()
    if not value:
        raise InvalidRequest(f"{name} is required")
    return value


def check_public_url(url: str, name: str) -> None:
    """An absolute http(s) URL, and (unless allowed) not on a private network."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # .port raises for "x:99999" or "x:abc"
    except ValueError:  # "http://[::1" and the like
        raise InvalidRequest(f"{name} must be an absolute http or https URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidRequest(f"{name} must be an absolute http or https URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"{name} is longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) < 0x20 or char == "\x7f" for char in url):
        raise InvalidRequest(f"{name} must not contain control characters")
    # No DNS lookup here: it would block the request thread, once per URL. Addresses, ports
    # and loopback names are refused now; the guard checks what a name resolves to on connecting.
    try:
        http.check_url(url)
    except FetchError as exc:
        raise InvalidRequest(f"{name}: {exc.reason}") from None


def topic_allowed(topic: str) -> bool:
    """Whether ``PUSH_HUB_TOPICS`` lets this hub serve ``topic`` (the hub is no open relay)."""
    policy = conf.PUSH_HUB_TOPICS
    if isinstance(policy, str):
        policy = import_string(policy)
    if callable(policy):
        check: Callable[[str], bool] = policy
        return bool(check(topic))
    if policy is None:
        host, _port = split_domain_port(urlsplit(topic).netloc)
        allowed: Sequence[str] = settings.ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]"]
        return bool(host) and validate_host(host, allowed)
    return any(_under(topic, prefix) for prefix in policy)


def _under(topic: str, prefix: str) -> bool:
    """Whether ``topic`` lies under ``prefix``: the same origin, and a path that continues
    the prefix's path at a segment boundary. So ``https://example.com`` never matches
    ``https://example.com.evil.net/`` or ``https://example.com@evil.net/``, and
    ``https://a.example/feeds`` never matches ``https://a.example/feedsevil``."""
    try:
        want, got = urlsplit(prefix), urlsplit(topic)
        want_port, got_port = want.port, got.port
    except ValueError:
        return False
    if (want.scheme.lower(), want.netloc.lower(), want_port) != (
        got.scheme.lower(),
        got.netloc.lower(),
        got_port,
    ):
        return False
    base, path = want.path or "/", got.path or "/"
    if not base.endswith("/"):
        if path != base and not path.startswith(base + "/"):
            return False
    elif not path.startswith(base):
        return False
    return not want.query or (path == base and got.query.startswith(want.query))
