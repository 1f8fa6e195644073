"""A worker killed with SIGKILL in the middle of a fan-out loses nothing (at-least-once).

``PUSH_KILL_SUBSCRIBERS`` sets the topic's size (default 2,000, what CI runs); the database is
SQLite, or PostgreSQL with ``PUSH_TEST_DB=postgres`` (a database of its own, created beside
``PGDATABASE`` and dropped after). The test prints the deliveries received more than once.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import wait_until

SUBSCRIBERS = int(os.environ.get("PUSH_KILL_SUBSCRIBERS", "2000"))
POSTGRES = os.environ.get("PUSH_TEST_DB") == "postgres"
ROOT = Path(__file__).resolve().parent.parent


class CountingServer:
    """An aiohttp server on 127.0.0.1 standing in for the subscribers (and the topic)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: set[int] = set()
        self.times: collections.Counter[int] = collections.Counter()  # POSTs per subscriber
        self.posts = 0
        self.fetches = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def topic(self, request: web.Request) -> web.Response:
        self.fetches += 1  # new content at each fetch: the hub skips unchanged content
        body = f"<feed>news {self.fetches}</feed>".encode()
        return web.Response(body=body, content_type="application/atom+xml")

    async def callback(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.delay)
        self.posts += 1
        self.received.add(int(request.match_info["n"]))
        self.times[int(request.match_info["n"])] += 1
        return web.Response(status=204)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/topic", self.topic)
        app.router.add_post("/cb/{n}", self.callback)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> CountingServer:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def manage(env, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "django", *args], env=env, cwd=ROOT, **kwargs)


def run(env, *args):
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


SETUP = """
import datetime
from django.utils import timezone
from django_push.hub.models import HubSubscription
from django_push.hub.tasks import publish_task
topic = "{base}/topic"
expires = timezone.now() + datetime.timedelta(days=1)
HubSubscription.objects.bulk_create(
    HubSubscription(
        topic=topic, callback=f"{base}/cb/{{n}}", lease_seconds=86400, expires_at=expires
    )
    for n in range({count})
)
publish_task.enqueue(topic, "http://hub.test/hub/")
"""


Query = Callable[[str], list[tuple]]


@pytest.fixture
def worker_env(tmp_path) -> Iterator[tuple[dict[str, str], Query]]:
    """Environment of worker processes on a database of their own, and a query function."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "PYTHONPATH": str(ROOT),
    }
    if not POSTGRES:
        env["PUSH_WORKER_DB"] = str(tmp_path / "hub.sqlite3")

        def query(sql: str) -> list[tuple]:
            with sqlite3.connect(env["PUSH_WORKER_DB"]) as db:
                return db.execute(sql).fetchall()

        yield env, query
        return

    import psycopg

    name = f"{os.environ.get('PGDATABASE', 'test')}_worker_{uuid.uuid4().hex[:8]}"
    server = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env["PUSH_WORKER_DB"] = name

    def query_pg(sql: str) -> list[tuple]:
        with psycopg.connect(dbname=name, **server) as db:
            return db.execute(sql).fetchall()

    try:
        yield env, query_pg
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


BATCH_SIZE = 100  # PUSH_HUB_BATCH_SIZE in tests/worker_settings.py


@pytest.mark.slow
def test_sigkill_mid_fanout_then_new_worker_delivers_everything(worker_env, capsys):
    env, query = worker_env
    kill_at = min(350, SUBSCRIBERS // 5) if SUBSCRIBERS <= 2000 else SUBSCRIBERS // 6
    # The fan-out runs at about 400 deliveries/s (20 at a time, 50 ms each).
    timeout = max(90, SUBSCRIBERS / 50)
    with CountingServer(delay=0.05) as server:
        base = f"http://127.0.0.1:{server.port}"
        run(env, "migrate", "--verbosity", "0")
        run(env, "shell", "-c", SETUP.format(base=base, count=SUBSCRIBERS))

        worker = manage(env, "db_worker", "--interval", "0.05", "--no-startup-delay")
        try:
            wait_until(
                lambda: len(server.received) >= kill_at, timeout=60, message="the fan-out to start"
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            worker.kill()
        at_kill = len(server.received)
        assert at_kill < SUBSCRIBERS, "the worker finished before it could be killed"

        time.sleep(2.5)  # let the dead worker's claims expire (PUSH_HUB_CLAIM_SECONDS = 2)
        swept = run(env, "hub_sweep")
        ranges = int(swept.split(" stale range(s)")[0].split()[-1])
        assert ranges >= 1, swept  # the dead worker's claimed range, at least
        replacement = manage(env, "db_worker", "--interval", "0.05", "--no-startup-delay")
        try:
            wait_until(
                lambda: len(server.received) == SUBSCRIBERS,
                timeout=timeout,
                message="every subscriber",
            )
        finally:
            replacement.terminate()
            replacement.wait(10)

    [(delivered, undecided)] = query(
        "SELECT SUM(delivered), SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) "
        "FROM push_hub_span"
    )
    assert (delivered, undecided) == (SUBSCRIBERS, 0)
    assert query("SELECT COUNT(*) FROM push_hub_delivery") == [(0,)]  # no row per success
    assert server.posts >= SUBSCRIBERS
    duplicates = sum(1 for times in server.times.values() if times > 1)
    # The range being sent when the worker died is sent again whole; the one it had
    # claimed next was not sent at all.
    assert duplicates <= BATCH_SIZE, duplicates
    with capsys.disabled():  # shown in CI's output, which captures passing tests' prints
        print(
            f"\nkill test ({'PostgreSQL' if POSTGRES else 'SQLite'}): killed after {at_kill} "
            f"deliveries; {SUBSCRIBERS} subscribers, 0 missing, {duplicates} received more "
            f"than once, {server.posts} POSTs"
        )
