"""Subscribers that misbehave on purpose, and the topic they subscribe to, on one aiohttp
server on 127.0.0.1.

Each callback ``/cb/<n>`` answers verifications by echoing the challenge and counts the
notifications it reads. A test gives a callback a list of faults for its next
notifications (hang, reset, trickle, 500), or holds the first verification or topic fetch
until it has killed the worker doing it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque

from aiohttp import web

HANG_SECONDS = 3.0  # longer than the hub's PUSH_TIMEOUT in tests/faults/settings.py
TRICKLE = b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"x" * 20


class Subscribers:
    def __init__(self, count: int, delay: float = 0.0) -> None:
        self.count = count
        self.delay = delay  # seconds each notification takes to answer
        self.version = 1
        self.faults: dict[int, deque[str]] = {}
        self.topic_faults: deque[str] = deque()  # for the next fetches of the topic
        self.received: Counter[int] = Counter()  # notification bodies read, per callback
        self.acknowledged: Counter[int] = Counter()  # ... and answered 2xx
        self.injected: Counter[str] = Counter()
        self.verifications = 0
        self.holding: set[str] = set()  # "verify", "fetch": hold the next one of these
        self.held = threading.Event()
        self.released = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    # What the test reads -------------------------------------------------------------

    @property
    def topic(self) -> str:
        return f"{self.url}/topic"

    def callback(self, n: int) -> str:
        return f"{self.url}/cb/{n}"

    def lost(self) -> int:
        """Callbacks that never acknowledged a notification."""
        return sum(1 for n in range(self.count) if not self.acknowledged[n])

    def duplicates(self) -> int:
        """Notification bodies read beyond one per callback."""
        return sum(self.received.values()) - sum(1 for n in self.received if self.received[n])

    def next_round(self) -> None:
        """Forget the counts, and serve new content (a hub may skip unchanged content)."""
        self.version += 1
        self.delay = 0.0
        self.received.clear()
        self.acknowledged.clear()
        self.injected.clear()
        self.held.clear()
        self.released.clear()

    def hold(self, what: str) -> None:
        self.holding.add(what)

    def wait_held(self, timeout: float = 60) -> None:
        if not self.held.wait(timeout):
            raise TimeoutError(f"nothing held: {self.holding}")

    # The server ---------------------------------------------------------------------

    async def _hold(self, what: str) -> bool:
        if what not in self.holding:
            return False
        self.holding.discard(what)
        self.held.set()
        deadline = time.monotonic() + 60
        while not self.released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return True

    async def _topic(self, request: web.Request) -> web.StreamResponse:
        await self._hold("fetch")
        fault = self.topic_faults.popleft() if self.topic_faults else None
        if fault is not None:
            self.injected[f"topic {fault}"] += 1
        if fault == "503":
            return web.Response(status=503, headers={"Retry-After": "1"})
        if fault == "hang":
            await asyncio.sleep(HANG_SECONDS)
        body = f"<feed>version {self.version}</feed>".encode()
        return web.Response(body=body, content_type="application/atom+xml")

    async def _verify(self, request: web.Request) -> web.StreamResponse:
        if await self._hold("verify"):
            return web.Response(status=503)  # its worker is dead: nobody reads this
        self.verifications += 1
        return web.Response(text=request.query.get("hub.challenge", ""))

    async def _notify(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        await request.read()
        self.received[n] += 1
        pending = self.faults.get(n)
        fault = pending.popleft() if pending else None
        if fault is not None:
            self.injected[fault] += 1
        if fault == "500":
            return web.Response(status=500, text="down for a moment")
        if fault == "hang":
            await asyncio.sleep(HANG_SECONDS)
            return web.Response(status=204)
        if fault in ("reset", "trickle"):
            transport = request.transport
            assert transport is not None
            if fault == "trickle":  # a status line, one byte at a time, never finished
                for byte in TRICKLE:
                    transport.write(bytes([byte]))
                    await asyncio.sleep(0.1)
            transport.abort()
            raise asyncio.CancelledError
        if self.delay:
            await asyncio.sleep(self.delay)
        self.acknowledged[n] += 1
        return web.Response(status=204)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/topic", self._topic)
        app.router.add_get("/cb/{n}", self._verify)
        app.router.add_post("/cb/{n}", self._notify)
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    def __enter__(self) -> Subscribers:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
