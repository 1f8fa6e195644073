"""A stand-in hub for the tests of code that subscribes or publishes.

django-push 1.1 sent subscription requests with ``requests``, so its users' tests mocked
``requests.post``. 2.0 sends them with aiohttp, from a task, after commit: a mock of one
transport or another breaks at each change. ``FakeHub`` is a real HTTP server on 127.0.0.1
instead; it records what the subscriber asked and what the publisher pinged, answers as
told, serves topics for discovery, and can then play the hub's next steps (verification,
denial, delivery) against the site through Django's test client.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, overload
from urllib.parse import parse_qsl, urlsplit

from django_push import protocol, signatures

__all__ = ["ClientLike", "FakeHub", "HubRequest"]

ATOM = "application/atom+xml"


class ClientLike(Protocol):
    """What ``FakeHub`` needs of ``django.test.Client``."""

    def get(self, path: str, data: Any = ..., **extra: Any) -> Any: ...

    def post(self, path: str, data: Any = ..., content_type: str = ..., **extra: Any) -> Any: ...


@dataclass(frozen=True)
class HubRequest:
    """One request the hub received: a subscription request or a publish ping."""

    form: dict[str, str]
    """The form fields; the last value of a repeated field."""
    pairs: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """Every field in the order sent, repeated ones included."""

    @property
    def mode(self) -> str:
        return self.form.get(protocol.MODE, "")

    @property
    def topic(self) -> str:
        return self.form.get(protocol.TOPIC, "")

    @property
    def callback(self) -> str:
        return self.form.get(protocol.CALLBACK, "")

    @property
    def secret(self) -> str:
        return self.form.get(protocol.SECRET, "")

    @property
    def lease_seconds(self) -> int | None:
        """The lease the subscriber asked for, if it asked for one."""
        raw = self.form.get(protocol.LEASE_SECONDS, "")
        return int(raw) if raw.isdigit() else None

    @property
    def is_ping(self) -> bool:
        """A publisher's ``hub.mode=publish``."""
        return self.mode == protocol.PUBLISH

    @property
    def urls(self) -> list[str]:
        """The URLs a ping names: every ``hub.url``, else every ``hub.topic``."""
        urls = [value for name, value in self.pairs if name == protocol.URL]
        return urls or [value for name, value in self.pairs if name == protocol.TOPIC]

    def describe(self) -> str:
        """One line for assertion messages."""
        if self.is_ping:
            return f"publish {', '.join(self.urls) or '(no hub.url)'}"
        return f"{self.mode or '(no hub.mode)'} {self.topic or '(no hub.topic)'}"


class FakeHub:
    """A hub at ``url`` answering every POST with ``status`` and ``text``.

    Use it as a context manager. ``requests`` lists what it received, oldest first;
    ``subscription_requests`` and ``pings`` split them by kind. Change ``status`` and
    ``text`` at any time to make the hub refuse what comes next.
    """

    def __init__(self, status: int = 202, text: str = "") -> None:
        self.status, self.text = status, text
        self.requests: list[HubRequest] = []
        self._topics: dict[str, tuple[bytes, str]] = {}
        self._arrived = threading.Condition()
        self._client: ClientLike | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                pairs = parse_qsl(body, keep_blank_values=True)
                hub._record(HubRequest(dict(pairs), tuple(pairs)))
                self.reply(hub.status, hub.text.encode(), "text/plain; charset=utf-8")

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path not in hub._topics:
                    self.reply(404, b"", "text/plain")
                    return
                body, content_type = hub._topics[path]
                link = f'<{hub.url}>; rel="hub", <{hub.topic_url(path)}>; rel="self"'
                self.reply(200, body, content_type, Link=link)

        return Handler

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def settings(self) -> dict[str, Any]:
        """The settings that point a site at this hub: ``PUSH_HUB`` (feeds declare it,
        pings go to it), the network guard off (it is on 127.0.0.1), and secrets sent
        over plain HTTP (so that deliveries are signed, as they are from an HTTPS hub)."""
        return {
            "PUSH_HUB": self.url,
            "PUSH_ALLOW_PRIVATE_ADDRESSES": True,
            "PUSH_INSECURE_SECRETS": True,
        }

    def _record(self, request: HubRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    # What was received ------------------------------------------------------------------

    @property
    def last(self) -> HubRequest:
        """The newest request of any kind."""
        if not self.requests:
            raise AssertionError(f"the hub at {self.url} received no request")
        return self.requests[-1]

    @property
    def subscription_requests(self) -> list[HubRequest]:
        """The subscribe and unsubscribe requests, oldest first."""
        return [request for request in self.requests if not request.is_ping]

    @property
    def pings(self) -> list[HubRequest]:
        """The publishers' ``hub.mode=publish`` pings, oldest first."""
        return [request for request in self.requests if request.is_ping]

    @property
    def pinged_urls(self) -> list[str]:
        """Every URL the pings named, in order."""
        return [url for ping in self.pings for url in ping.urls]

    def clear(self) -> None:
        """Forget what was received."""
        with self._arrived:
            self.requests.clear()

    # Assertions -------------------------------------------------------------------------

    def assert_subscribed(self, topic: str, *, timeout: float = 0.0) -> HubRequest:
        """The newest subscribe request for ``topic``; an ``AssertionError`` naming what
        the hub did receive if there is none (within ``timeout`` seconds, for requests
        sent by a worker)."""
        return self._expect(
            lambda r: r.mode == protocol.SUBSCRIBE and r.topic == topic,
            f"subscription request for {topic}",
            timeout,
        )

    def assert_unsubscribed(self, topic: str, *, timeout: float = 0.0) -> HubRequest:
        """The newest unsubscribe request for ``topic``, as :meth:`assert_subscribed`."""
        return self._expect(
            lambda r: r.mode == protocol.UNSUBSCRIBE and r.topic == topic,
            f"unsubscription request for {topic}",
            timeout,
        )

    def assert_pinged(self, url: str, *, timeout: float = 0.0) -> HubRequest:
        """The newest ping naming ``url``, as :meth:`assert_subscribed`."""
        return self._expect(lambda r: r.is_ping and url in r.urls, f"ping for {url}", timeout)

    def assert_not_pinged(self) -> None:
        """Fail if any publish ping arrived."""
        if self.pings:
            raise AssertionError(
                f"the hub at {self.url} received pings: "
                + "; ".join(ping.describe() for ping in self.pings)
            )

    def _expect(
        self, matches: Callable[[HubRequest], bool], what: str, timeout: float
    ) -> HubRequest:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [request for request in self.requests if matches(request)]
                if found:
                    return found[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
            received = [request.describe() for request in self.requests]
        if received:
            summary = "it received: " + "; ".join(received)
        else:
            summary = (
                "it received nothing (requests go out once the transaction commits: wrap "
                "the call in captureOnCommitCallbacks(execute=True), or use "
                "django_capture_on_commit_callbacks with pytest)"
            ) + (queue_hint() if not timeout else "")
        raise AssertionError(f"the hub at {self.url} received no {what}; {summary}")

    # Topics for discovery ---------------------------------------------------------------

    def topic_url(self, path: str = "/feed/") -> str:
        """The URL of a topic this server serves at ``path``."""
        return self.url.rstrip("/") + "/" + path.lstrip("/")

    def serve_topic(
        self, path: str = "/feed/", body: bytes = b"<feed/>", content_type: str = ATOM
    ) -> str:
        """Serve ``body`` at ``path`` with ``Link`` headers naming this hub and the topic
        itself, so that subscribing without a hub discovers this one; returns the URL."""
        self._topics["/" + path.lstrip("/")] = (body, content_type)
        return self.topic_url(path)

    # The hub's next steps, played against the site -------------------------------------

    @property
    def client(self) -> ClientLike:
        """The Django test client the hub's steps use unless they are given one."""
        if self._client is None:
            from django.test import Client

            self._client = Client()
        return self._client

    @client.setter
    def client(self, client: ClientLike) -> None:
        self._client = client

    def subscription_request(self, topic: str | None = None) -> HubRequest:
        """The newest subscribe or unsubscribe request (for ``topic``, if given)."""
        if topic is None:
            return self._expect(lambda r: not r.is_ping, "subscription request", 0.0)
        return self._expect(
            lambda r: not r.is_ping and r.topic == topic, f"subscription request for {topic}", 0.0
        )

    def verify(
        self,
        client: ClientLike | None = None,
        lease_seconds: int = 86400,
        *,
        topic: str | None = None,
    ) -> Any:
        """Send the verification of intent of the newest subscription request (for
        ``topic``), as a hub would (WebSub 5.3); returns the site's response, whose body
        is the challenge when the site confirmed."""
        request = self.subscription_request(topic)
        params = {
            protocol.MODE: request.mode,
            protocol.TOPIC: request.topic,
            protocol.CHALLENGE: secrets.token_urlsafe(16),
        }
        if request.mode == protocol.SUBSCRIBE:
            params[protocol.LEASE_SECONDS] = str(lease_seconds)
        path, query = _split(request.callback)
        return (client or self.client).get(path, {**query, **params})

    def deny(
        self, client: ClientLike | None = None, reason: str = "", *, topic: str | None = None
    ) -> Any:
        """Tell the site the hub denied the newest subscription request (WebSub 5.2)."""
        request = self.subscription_request(topic)
        params = {protocol.MODE: protocol.DENIED, protocol.TOPIC: request.topic}
        if reason:
            params[protocol.REASON] = reason
        path, query = _split(request.callback)
        return (client or self.client).get(path, {**query, **params})

    @overload
    def deliver(
        self,
        body: bytes,
        /,
        *,
        content_type: str = ...,
        topic: str | None = ...,
        algorithm: protocol.Algorithm = ...,
        signature: str | None = ...,
    ) -> Any: ...

    @overload
    def deliver(
        self,
        client: ClientLike,
        body: bytes,
        /,
        content_type: str = ...,
        *,
        topic: str | None = ...,
        algorithm: protocol.Algorithm = ...,
        signature: str | None = ...,
    ) -> Any: ...

    def deliver(
        self,
        client_or_body: ClientLike | bytes,
        body: bytes | None = None,
        /,
        content_type: str = ATOM,
        *,
        topic: str | None = None,
        algorithm: protocol.Algorithm = "sha256",
        signature: str | None = None,
    ) -> Any:
        """POST ``body`` to the callback of the newest subscription request (for
        ``topic``), signed with the secret it sent, if any; returns the site's response.

        ``signature`` replaces the computed ``X-Hub-Signature`` (to test a forgery).
        """
        if isinstance(client_or_body, bytes):
            client, body = self.client, client_or_body
        else:
            client = client_or_body
        if body is None:
            raise TypeError("deliver() needs the body to deliver")
        request = self.subscription_request(topic)
        headers = {}
        if signature is not None:
            headers[protocol.SIGNATURE_HEADER] = signature
        elif request.secret:
            headers[protocol.SIGNATURE_HEADER] = signatures.sign(request.secret, body, algorithm)
        headers["Link"] = f'<{self.url}>; rel="hub", <{request.topic}>; rel="self"'
        parts = urlsplit(request.callback)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return client.post(path, body, content_type=content_type, headers=headers)


IMMEDIATE = "django.tasks.backends.immediate.ImmediateBackend"


def queue_hint() -> str:
    """Why a request may not have left at all: django-push's task backend is a queue that no
    worker runs during the test (``""`` for the immediate backend)."""
    from django.conf import settings

    from django_push.conf import conf
    from django_push.tasks import task_backends

    alias = conf.PUSH_TASK_BACKEND
    try:
        backend = task_backends[alias]
    except Exception:
        return f"; and PUSH_TASK_BACKEND {alias!r} is not an alias in TASKS"
    if any(kind.__name__ == "ImmediateBackend" for kind in type(backend).__mro__):
        return ""
    path = settings.TASKS.get(alias, {}).get("BACKEND", type(backend).__name__)
    return (
        f"; and django-push's requests are tasks for TASKS[{alias!r}], {path}, which no "
        f'worker runs in this test: in the test settings, set TASKS = {{"{alias}": '
        f'{{"BACKEND": "{IMMEDIATE}"}}}} (django_tasks.backends.immediate.ImmediateBackend '
        "on Django 5.2), or give the assertion a timeout while a worker runs"
    )


def _split(callback: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(callback)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
