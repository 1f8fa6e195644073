"""Waking a worker of the database queue when a task is committed, not at its next poll.

django-tasks-db's ``db_worker`` looks for tasks every ``--interval`` seconds when idle, and
that wait is most of the time from a publish to its first delivery. The sender here is a
receiver of ``task_enqueued``: on PostgreSQL it runs ``NOTIFY`` in the enqueueing transaction
(delivered at commit, to workers on any machine); on other databases it sends a UDP datagram
to ``PUSH_WORKER_WAKEUP`` once the transaction commits. :class:`Wakeup` is what
``push_worker`` waits on between polls. A lost wake-up costs nothing but latency: the
worker still polls at its interval.

A wake-up carries nothing and is not authenticated: any local process can send the datagram
(and any role of the database can NOTIFY). It can only make a worker poll sooner, and a
worker polls at most once per :data:`WAKE_GAP` because of wake-ups: those arriving within
the gap after the last one are coalesced into one poll at its end.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import time
from importlib.util import find_spec
from typing import Any

from django.db import connections, router, transaction

from django_push.conf import conf

logger = logging.getLogger("django_push.hub")

# The PostgreSQL channel of the wake-ups (NOTIFY reaches the listeners of one database).
CHANNEL = "django_push_wakeup"
DATAGRAM = b"wake"
# Seconds: after a wake-up, the next one is answered no sooner than this. A flood of stray
# datagrams (240,000 a second from one local process) then costs ten polls a second; a
# publish right after another waits at most this long for its poll.
WAKE_GAP = 0.1


def parse_address(value: str) -> tuple[str, int]:
    """``"host:port"`` (IPv6 in brackets) as ``(host, port)``; ValueError if malformed."""
    host, separator, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port: {value!r}")
    return host, int(port)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def queue_database() -> str:
    """Alias of the database that holds django-tasks-db's queue."""
    from django_tasks_db.models import DBTaskResult

    return router.db_for_write(DBTaskResult) or "default"


def send_datagram() -> None:
    """Send the wake-up datagram; nobody listening is not an error."""
    if not conf.PUSH_WORKER_WAKEUP:
        return
    host, port = parse_address(conf.PUSH_WORKER_WAKEUP)
    with contextlib.suppress(OSError), socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.sendto(DATAGRAM, (host, port))


def on_task_enqueued(sender: type, **kwargs: Any) -> None:
    """Wake a ``push_worker`` when the task just saved by django-tasks-db is committed."""
    from django_tasks_db.backend import DatabaseBackend

    if not issubclass(sender, DatabaseBackend):
        return
    alias = queue_database()
    connection = connections[alias]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")
    elif conf.PUSH_WORKER_WAKEUP:
        transaction.on_commit(send_datagram, using=alias)


def connect_sender() -> None:
    """Connect :func:`on_task_enqueued` (once), if django-tasks-db is installed."""
    if not find_spec("django_tasks_db"):
        return
    from django_push.tasks import task_enqueued

    task_enqueued.connect(on_task_enqueued, dispatch_uid="django_push.wakeup")


class Wakeup:
    """What a worker waits on between polls: the datagram socket of ``PUSH_WORKER_WAKEUP``
    and, on PostgreSQL, a connection that LISTENs. Either may be missing (taken port,
    broken connection): the wait then only times out, as a plain poll would."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.postgres = connections[alias].vendor == "postgresql"
        self.sock = self._bind()
        self.listener: Any = None
        self.warned = False
        self.woken_at = -WAKE_GAP  # time.monotonic() of the last wake-up answered

    def _bind(self) -> socket.socket | None:
        if not conf.PUSH_WORKER_WAKEUP:
            return None
        host, port = parse_address(conf.PUSH_WORKER_WAKEUP)
        sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        # Several workers on one machine share the port; the kernel wakes one of them.
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            logger.warning("No wake-ups on %s (%s): polling only", conf.PUSH_WORKER_WAKEUP, error)
            sock.close()
            return None
        sock.setblocking(False)
        return sock

    def _listen(self) -> Any:
        connection = connections[self.alias]
        try:
            raw = connection.get_new_connection(connection.get_connection_params())
            raw.autocommit = True
            with raw.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
        except Exception as error:  # any driver's error: fall back to polling
            if not self.warned:
                logger.warning("No LISTEN on %s (%s): polling only", self.alias, error)
                self.warned = True
            return None
        return raw

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a wake-up; True if one came. Within
        :data:`WAKE_GAP` of the last wake-up answered, wake-ups wait for the gap's end (one
        poll for all of them)."""
        if self.postgres and self.listener is None:
            self.listener = self._listen()
        sources = [source for source in (self.sock, self.listener) if source is not None]
        if not sources:
            time.sleep(timeout)
            return False
        quiet = min(self.woken_at + WAKE_GAP - time.monotonic(), timeout)
        if quiet > 0:
            time.sleep(quiet)
            timeout -= quiet
        ready, _, _ = select.select(sources, [], [], timeout)
        self._drain()
        if ready:
            self.woken_at = time.monotonic()
        return bool(ready)

    def _drain(self) -> None:
        """Consume every pending wake-up: one poll answers them all."""
        if self.sock is not None:
            with contextlib.suppress(BlockingIOError):
                while self.sock.recv(64):
                    pass
        if self.listener is not None:
            try:
                if hasattr(self.listener, "poll"):  # psycopg2
                    self.listener.poll()
                    self.listener.notifies.clear()
                else:
                    for _ in self.listener.notifies(timeout=0):
                        pass
            except Exception:  # the connection broke: listen again at the next wait
                self.close_listener()

    def close_listener(self) -> None:
        with contextlib.suppress(Exception):
            self.listener.close()
        self.listener = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.listener is not None:
            self.close_listener()
