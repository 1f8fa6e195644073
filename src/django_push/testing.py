"""A stand-in hub for the tests of code that subscribes.

django-push 1.1 sent subscription requests with ``requests``, so its users' tests mocked
``requests.post``. 2.0 sends them with aiohttp, from a task, after commit: a mock of one
transport or another breaks at each change. ``FakeHub`` is a real HTTP server on 127.0.0.1
instead; it records what the subscriber asked, answers as told, and can then play the
hub's next steps (verification, delivery) against the site through Django's test client.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from django_push import protocol

__all__ = ["FakeHub", "HubRequest"]


class ClientLike(Protocol):
    """What ``FakeHub`` needs of ``django.test.Client``."""

    def get(self, path: str, data: Any = ..., **extra: Any) -> Any: ...

    def post(self, path: str, data: Any = ..., content_type: str = ..., **extra: Any) -> Any: ...


@dataclass(frozen=True)
class HubRequest:
    """One subscription request the hub received (its form fields)."""

    form: dict[str, str]

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


class FakeHub:
    """A hub at ``url`` answering every subscription request with ``status`` and ``text``.

    Use it as a context manager; ``requests`` lists what it received, in order.
    """

    def __init__(self, status: int = 202, text: str = "") -> None:
        self.status, self.text = status, text
        self.requests: list[HubRequest] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                hub.requests.append(HubRequest(dict(parse_qsl(body, keep_blank_values=True))))
                reply = hub.text.encode()
                self.send_response(hub.status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

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

    @property
    def last(self) -> HubRequest:
        if not self.requests:
            raise AssertionError(f"the hub at {self.url} received no request")
        return self.requests[-1]

    def verify(self, client: ClientLike, lease_seconds: int = 86400) -> Any:
        """Send the verification of intent of the last request, as a hub would (WebSub 5.3)."""
        request = self.last
        params = {
            protocol.MODE: request.mode,
            protocol.TOPIC: request.topic,
            protocol.CHALLENGE: secrets.token_urlsafe(16),
        }
        if request.mode == protocol.SUBSCRIBE:
            params[protocol.LEASE_SECONDS] = str(lease_seconds)
        path, query = self._split(request.callback)
        return client.get(path, {**query, **params})

    def deliver(
        self, client: ClientLike, body: bytes, content_type: str = "application/atom+xml"
    ) -> Any:
        """POST content to the last request's callback, signed with its secret if it sent one."""
        request = self.last
        headers = {}
        if request.secret:
            digest = hmac.new(request.secret.encode(), body, hashlib.sha256).hexdigest()
            headers[protocol.SIGNATURE_HEADER] = f"sha256={digest}"
        parts = urlsplit(request.callback)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return client.post(path, body, content_type=content_type, headers=headers)

    @staticmethod
    def _split(callback: str) -> tuple[str, dict[str, str]]:
        parts = urlsplit(callback)
        return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
