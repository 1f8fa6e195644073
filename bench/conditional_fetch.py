"""What a conditional fetch saves per publish of an unchanged ~200 KB feed (issue 18, part 3).

The hub (``tests.settings``: SQLite in a temporary file, the immediate task backend, so a
publish request returns once its fetch and fan-out are done) runs under Django's threaded
WSGI server on 127.0.0.1. A topic server serves an Atom feed of about 200 KB with an
``ETag`` and ``Last-Modified``, answers ``304`` when ``If-None-Match`` matches, and counts the
bytes it writes; one subscriber's callback answers 204. The driver POSTs ``hub.mode=publish``
to the hub's endpoint and times each request, for:

- ``304``: ``PUSH_HUB_CONDITIONAL_FETCH`` on, the feed unchanged: the topic answers 304;
- ``200, same body``: the setting off, the feed unchanged: the whole feed is fetched, hashed
  and found unchanged (what every publish cost before);
- ``200, new body``: a new entry each time: fetched, stored and delivered to the subscriber;
- ``no subscriber``: a publish of a topic nobody follows, answered without a fetch nor a
  row: the endpoint's own cost, the floor under the others.

::

    .venv/test-django6-py3.12/bin/python bench/conditional_fetch.py [--publishes 40]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("PUSH_TEST_SQLITE", str(Path(tempfile.mkdtemp()) / "hub.sqlite3"))

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.http import http_date  # noqa: E402

from django_push.hub.models import HubSubscription, Ping  # noqa: E402

ENTRIES = 200  # of about 1 KB each


def feed(version: int) -> bytes:
    """An Atom feed of about 200 KB; each ``version`` adds one entry on top."""
    head = '<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>B</title>\n'
    entries = "".join(
        f"<entry><id>tag:blog.example,2026:{n}</id><title>Post {n}</title>"
        f"<updated>2026-12-05T10:00:00Z</updated><content>{'x' * 900}</content></entry>\n"
        for n in range(version, version - ENTRIES, -1)
    )
    return (head + entries + "</feed>\n").encode()


class CountingWriter:
    """A handler's ``wfile`` that adds what a GET's answer writes to ``publisher.sent``."""

    def __init__(self, raw: Any, handler: BaseHTTPRequestHandler, publisher: Publisher) -> None:
        self.raw, self.handler, self.publisher = raw, handler, publisher

    def write(self, data: bytes) -> int:
        if self.handler.command == "GET":
            self.publisher.sent += len(data)
        return int(self.raw.write(data))

    def flush(self) -> None:
        self.raw.flush()

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    def close(self) -> None:
        self.raw.close()


class Publisher:
    """The topic: the current feed under ``ETag: "<version>"``, 304 when the hub's matches;
    also the subscriber's callback (POST: 204). Counts the bytes of its GET answers."""

    def __init__(self) -> None:
        self.version, self.sent, self.answers = 1000, 0, list[int]()
        self.modified = http_date(time.time() - 3600)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.wfile = CountingWriter(self.wfile, self, outer)

            def do_GET(self) -> None:
                etag = f'"{outer.version}"'
                body = b"" if self.headers.get("If-None-Match") == etag else feed(outer.version)
                self.send_response(200 if body else 304)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", outer.modified)
                if body:
                    self.send_header("Content-Type", "application/atom+xml")
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.answers.append(200 if body else 304)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve_hub() -> str:
    httpd = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    httpd.set_app(get_wsgi_application())
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/hub/"


def publish(hub_url: str, topic: str) -> float:
    """Seconds from the publish request to its answer, the fetch done (immediate backend)."""
    data = urlencode({"hub.mode": "publish", "hub.url": topic}).encode()
    started = time.perf_counter()
    with urllib.request.urlopen(hub_url, data=data, timeout=30) as response:
        assert response.status == 202, response.status
    elapsed = time.perf_counter() - started
    assert not Ping.objects.filter(status=Ping.Status.PENDING).exists()
    return elapsed


@dataclass
class Row:
    case: str
    answers: str  # the topic's statuses
    outcomes: str  # the publish requests'
    bytes: float  # per fetch, headers included
    median: float  # ms per publish
    p90: float


def run(case: str, publishes: int, hub_url: str, publisher: Publisher) -> Row:
    topic = publisher.url + ("/nobody" if case == FLOOR else "/feed")
    with override_settings(PUSH_HUB_CONDITIONAL_FETCH=case == "304"):
        publisher.version += 1
        publish(hub_url, topic)  # a stored version, with its validators
        publish(hub_url, topic)  # warm
        sent, answered, times = publisher.sent, len(publisher.answers), []
        for _ in range(publishes):
            if case == "200, new body":
                publisher.version += 1
            times.append(publish(hub_url, topic))
    answers = sorted(set(publisher.answers[answered:]))
    pings = Ping.objects.filter(topic=topic).order_by("-pk")[:publishes]
    outcomes = sorted(set(pings.values_list("status", flat=True))) or ["skipped"]
    return Row(
        case,
        "/".join(map(str, answers)),
        "/".join(outcomes),
        (publisher.sent - sent) / publishes,
        statistics.median(times) * 1000,
        statistics.quantiles(times, n=10)[-1] * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=40, help="timed publishes per case")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    call_command("migrate", verbosity=0)
    publisher = Publisher()
    hub_url = serve_hub()
    override_settings(PUSH_HUB_URL=hub_url).enable()
    HubSubscription.objects.create(
        topic=publisher.url + "/feed",
        callback=publisher.url + "/callback",
        lease_seconds=86400,
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    print(f"feed: {len(feed(1)):,} bytes; {args.publishes} publishes per case; SQLite")
    print(f"{'case':<15} {'answer':>6} {'outcome':>9} {'bytes/fetch':>12} {'median':>9} {'p90':>9}")
    rows = [run(case, args.publishes, hub_url, publisher) for case in CASES]
    for row in rows:
        print(
            f"{row.case:<15} {row.answers:>6} {row.outcomes:>9} {row.bytes:>12,.0f} "
            f"{row.median:>7.1f}ms {row.p90:>7.1f}ms"
        )
    conditional, full = rows[0], rows[1]
    print(
        f"304 against a full fetch of the same feed: {conditional.bytes / full.bytes:.4f} of "
        f"the bytes, {conditional.median / full.median:.2f} of the time per publish; "
        f"above the endpoint's floor: {conditional.median - rows[3].median:.1f} ms against "
        f"{full.median - rows[3].median:.1f} ms"
    )


FLOOR = "no subscriber"  # the endpoint alone: nothing fetched, no row written
CASES = ("304", "200, same body", "200, new body", FLOOR)

if __name__ == "__main__":
    main()
