"""A large content is held once by the hub, not once per subscriber or connection (issue 10)."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import socket
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from django_push.hub import fanout
from django_push.hub.models import HubSubscription
from tests.hub_rows import counts, store

pytestmark = pytest.mark.django_db

BODY_SIZE = 6 * 1024 * 1024
SUBSCRIBERS = 8
SECRET = "large-body-secret"


class StallingCallbacks(ThreadingHTTPServer):
    """Reads no request body until every subscriber's request has arrived, then drains
    each in small reads (keeping nothing) and answers 204: while it waits, what the kernel
    cannot buffer stays in the hub's process, once per connection if the hub copies."""

    daemon_threads = True

    def __init__(self, expected: int) -> None:
        self.barrier = threading.Barrier(expected, timeout=10)
        self.bodies: list[tuple[int, bool]] = []  # (length, signature ok)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                with contextlib.suppress(threading.BrokenBarrierError):
                    outer.barrier.wait()
                left = int(self.headers["Content-Length"])
                mac = hmac.new(SECRET.encode(), digestmod=hashlib.sha256)
                length = 0
                while left:
                    chunk = self.rfile.read(min(left, 64 * 1024))
                    if not chunk:
                        break
                    mac.update(chunk)
                    left -= len(chunk)
                    length += len(chunk)
                signed = self.headers["X-Hub-Signature"] == f"sha256={mac.hexdigest()}"
                outer.bodies.append((length, signed))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)

    def server_bind(self) -> None:
        # A small receive buffer (inherited by accepted sockets): the kernel takes little.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        super().server_bind()


@pytest.fixture
def stalling():
    server = StallingCallbacks(SUBSCRIBERS)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_large_body_is_not_copied_per_connection(stalling, settings):
    settings.PUSH_HUB_MAX_CONTENT_SIZE = BODY_SIZE
    url = f"http://127.0.0.1:{stalling.server_address[1]}"
    topic = f"{url}/topic"
    for n in range(SUBSCRIBERS):
        HubSubscription.objects.create(
            topic=topic,
            callback=f"{url}/cb/{n}",
            secret=SECRET,
            lease_seconds=3600,
            expires_at=timezone.now() + datetime.timedelta(hours=1),
        )
    body = bytes(range(256)) * (BODY_SIZE // 256)
    content = store(topic, body, "application/octet-stream", f"{url}/hub")
    del body
    tracemalloc.start()
    try:
        assert fanout.fanout(content.pk) == (SUBSCRIBERS, SUBSCRIBERS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stalling.bodies == [(BODY_SIZE, True)] * SUBSCRIBERS
    assert counts(content)["delivered"] == SUBSCRIBERS
    # The body loaded once for the fan-out, and small slices per connection: far less than
    # the SUBSCRIBERS copies (48 MB) that joining headers and body for each request makes.
    assert peak < 2.5 * BODY_SIZE, f"peak {peak / 2**20:.1f} MB"
