from __future__ import annotations

import os

import pytest
from django.contrib.sites.models import Site

from tests.hub_queue import hub_queue  # noqa: F401  (a fixture)
from tests.servers import Server

# The push_hub fixture, loaded as the testing docs tell users to; pytester for the kit's tests.
pytest_plugins = ["django_push.testing.pytest", "pytester"]


def pytest_configure(config):
    serialize_shared_sqlite()


def serialize_shared_sqlite():
    """Make the in-memory test database safe to share between threads.

    With an in-memory SQLite database, Django's live server hands its request threads the
    test's own connection. One ``sqlite3`` connection used from several threads at once can
    return another thread's rows or none (a statement bound by one thread is stepped by
    another: reproduced with four threads running the same ``SELECT``, about 10 wrong
    results in 80,000). It happened here when the hub's fan-out called back the live server
    concurrently: a subscriber's lookup found nothing and answered 410. Deployed sites have
    a connection per thread. This lock makes each statement and fetch on the shared one
    safe; its transaction state stays shared (two threads' ``atomic()`` blocks nest), which
    is why some modules still set ``PUSH_HUB_CONCURRENCY = 1``. File and PostgreSQL
    databases are left alone.
    """
    import threading

    from django.conf import settings
    from django.db.backends.sqlite3 import base

    name = settings.DATABASES["default"].get("NAME", "")
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3" or (
        name not in ("", ":memory:") and "mode=memory" not in str(name)
    ):
        return
    lock = threading.RLock()
    cursor = base.SQLiteCursorWrapper

    def locked(method):
        def call(self, *args, **kwargs):
            with lock:
                return method(self, *args, **kwargs)

        return call

    for name in ("execute", "executemany", "fetchone", "fetchmany", "fetchall"):
        setattr(cursor, name, locked(getattr(cursor, name)))


@pytest.fixture
def server():
    """A recording HTTP server on 127.0.0.1 (a hub, a topic or a subscriber, as the test needs)."""
    with Server() as srv:
        yield srv


@pytest.fixture
def live_domain(live_server, settings):
    """Point callback URLs at the live Django server, so real hubs can call back."""
    settings.PUSH_DOMAIN = live_server.url.removeprefix("http://")
    return live_server


@pytest.fixture
def unused_tcp_port():
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout=20.0, interval=0.05, message="condition"):
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture
def task_workers(transactional_db, live_server):
    """Real worker processes for PUSH_TEST_TASKS=db|rq|celery (none for the immediate backend).

    They run this test settings module against the test database, so tests that use them
    must see their data committed (``transactional_db``) and must wait for results.
    """
    import os

    from django.db import connection

    mode = os.environ.get("PUSH_TEST_TASKS", "immediate")
    if mode == "immediate":
        yield []
        return
    if (connection.vendor == "sqlite" and connection.settings_dict["NAME"] in ("", ":memory:")) or (
        "mode=memory" in str(connection.settings_dict["NAME"])
    ):
        pytest.fail(
            "worker processes need a shared database: run this leg with PUSH_TEST_DB=postgres"
        )
    workers = start_workers(mode, live_server)
    yield workers
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)


def start_workers(mode, live_server, *, purge=True, **env):
    """Start the worker processes of ``mode`` (db, rq or celery) on the test database, with
    ``env`` added to their environment; ``purge`` first empties the RQ or Celery queue."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PGDATABASE": str(connection.settings_dict["NAME"]),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "PUSH_TEST_DOMAIN": live_server.url.removeprefix("http://"),
        "PUSH_TEST_INSECURE_SECRETS": "1",
        **env,
    }
    if mode == "rq":
        import django_rq

        if purge:
            django_rq.get_queue("default").empty()
        command = ["rqworker", "--with-scheduler", "--job-class", "django_tasks_rq.Job"]
        command += ["--worker-class", "tests.rq_worker.QuietWorker", "default"]
    elif mode == "celery":
        from tests.celery_app import app

        if purge:
            app.control.purge()
    else:
        command = ["db_worker", "--interval", "0.1", "--no-startup-delay"]
    if mode == "celery":  # one worker, two prefork processes
        celery = ["celery", "-A", "tests.celery_app", "worker", "-c", "2", "-l", "WARNING"]
        workers = [subprocess.Popen([sys.executable, "-m", *celery, "--without-gossip"], env=env)]
    else:
        workers = [
            subprocess.Popen([sys.executable, "-m", "django", *command], env=env) for _ in range(2)
        ]
    return workers


# The browser test starts the whole demo; only the browser leg of .ci/run collects it.
collect_ignore_glob = [] if os.environ.get("PUSH_BROWSER_TESTS") == "1" else ["browser/*"]


@pytest.fixture
def close_async_connections():
    """Close the connection that sync_to_async's worker thread opened, so PostgreSQL can drop
    the test database at the end of the run."""
    yield
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all)())


@pytest.fixture
def site(hub_queue, live_domain, settings, task_workers):  # noqa: F811
    """Publisher, hub and subscriber on one live server, with real workers: the hub is
    ``PUSH_HUB`` and callbacks point at the live server's host."""
    # hub_queue first: jobs left in Redis by an earlier run must not reach these workers.
    host = live_domain.url.removeprefix("http://")
    Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"domain": host, "name": host})
    settings.PUSH_HUB = f"{live_domain.url}/hub/"
    settings.PUSH_INSECURE_SECRETS = True  # the hub is plain HTTP on 127.0.0.1
    return live_domain.url
