"""``push_worker`` runs a committed task at once, not at its next poll (real processes).

SQLite: the datagram on ``PUSH_WORKER_WAKEUP``; with ``PUSH_TEST_DB=postgres``, NOTIFY alone
(the datagram is switched off there, so the test fails if LISTEN/NOTIFY does not work).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.test import override_settings

from django_push.checks import check_common_settings
from django_push.wakeup import Wakeup, parse_address, send_datagram
from tests.conftest import wait_until
from tests.test_hub_kill import POSTGRES, CountingServer, manage, run, worker_env

__all__ = ["worker_env"]  # the fixture, imported to be used here

SUBSCRIBERS = 5
# Far longer than the test waits for a delivery: only a wake-up can make it in time.
POLL = "60"

PUBLISH = """
from django_push.hub.tasks import publish_task
publish_task.enqueue("{base}/topic", "http://hub.test/hub/")
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_a_publish_is_delivered_long_before_the_next_poll(worker_env):
    env, _query = worker_env
    env["PUSH_WORKER_WAKEUP"] = "" if POSTGRES else f"127.0.0.1:{free_udp_port()}"
    with CountingServer(delay=0) as server:
        base = f"http://127.0.0.1:{server.port}"
        run(env, "migrate", "--verbosity", "0")
        setup = "\n".join(
            [
                "import datetime",
                "from django.utils import timezone",
                "from django_push.hub.models import HubSubscription",
                "HubSubscription.objects.bulk_create(HubSubscription(topic=f'{base}/topic', "
                "callback=f'{base}/cb/{n}', lease_seconds=86400, "
                "expires_at=timezone.now() + datetime.timedelta(days=1)) "
                f"for n in range({SUBSCRIBERS}))",
            ]
        ).replace("{base}", base)
        run(env, "shell", "-c", setup)
        run(env, "shell", "-c", PUBLISH.format(base=base))
        worker = manage(env, "push_worker", "--interval", POLL, "--no-startup-delay")
        try:
            # The worker's first poll finds the first publish.
            wait_until(lambda: server.posts == SUBSCRIBERS, timeout=30, message="the first")
            time.sleep(0.5)  # the worker has found the queue empty and waits
            for round_ in range(2, 4):
                run(env, "shell", "-c", PUBLISH.format(base=base))
                wait_until(
                    lambda n=round_: server.posts == n * SUBSCRIBERS,
                    timeout=10,
                    message="deliveries after a wake-up",
                )
        finally:
            worker.terminate()
            worker.wait(10)
        assert worker.returncode == 0


def test_the_address_is_host_and_port():
    assert parse_address("127.0.0.1:29417") == ("127.0.0.1", 29417)
    assert parse_address("[::1]:8000") == ("::1", 8000)
    for bad in ("127.0.0.1", ":80", "host:", "host:0", "host:70000", "host:x"):
        with pytest.raises(ValueError, match="host:port"):
            parse_address(bad)


@pytest.mark.parametrize("value", ["localhost", 29417, "127.0.0.1:"])
def test_a_malformed_address_is_an_error(value):
    with override_settings(PUSH_WORKER_WAKEUP=value):
        ids = [message.id for message in check_common_settings()]
    assert "django_push.E013" in ids


def test_the_listener_wakes_on_a_datagram_and_times_out_without_one(db):
    address = f"127.0.0.1:{free_udp_port()}"
    with override_settings(PUSH_WORKER_WAKEUP=address):
        wakeup = Wakeup("default")
        try:
            started = time.monotonic()
            assert wakeup.wait(0.2) is False
            assert time.monotonic() - started >= 0.19
            send_datagram()
            send_datagram()
            assert wakeup.wait(5) is True
            assert wakeup.wait(0.05) is False  # both datagrams were consumed
        finally:
            wakeup.close()


def test_a_flood_of_stray_datagrams_costs_a_bounded_number_of_polls(db):
    """Issue 16, low 8: any local process can send the datagram, as fast as it likes; the
    worker answers at most one wake-up per WAKE_GAP, the rest coalesced."""
    host, port = "127.0.0.1", free_udp_port()
    with override_settings(PUSH_WORKER_WAKEUP=f"{host}:{port}"):
        wakeup = Wakeup("default")
    stop = threading.Event()

    def flood():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not stop.is_set():
                sock.sendto(b"x", (host, port))

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        polls, started = 0, time.monotonic()
        while time.monotonic() - started < 1.0:
            polls += wakeup.wait(5)
    finally:
        stop.set()
        sender.join()
        wakeup.close()
    assert 1 <= polls <= 12  # WAKE_GAP = 0.1 s; it was one poll per datagram


def test_a_wake_up_after_a_quiet_time_is_answered_at_once(db):
    address = f"127.0.0.1:{free_udp_port()}"
    with override_settings(PUSH_WORKER_WAKEUP=address):
        wakeup = Wakeup("default")
        try:
            send_datagram()
            started = time.monotonic()
            assert wakeup.wait(5) is True
            assert time.monotonic() - started < 0.05
            send_datagram()  # within the gap: answered at its end, not before
            assert wakeup.wait(5) is True
            assert time.monotonic() - started >= 0.09
        finally:
            wakeup.close()


def test_a_taken_port_leaves_the_worker_polling(db, caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: nobody may share it
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with override_settings(PUSH_WORKER_WAKEUP=address):
            wakeup = Wakeup("default")
        try:
            assert wakeup.sock is None
            assert "polling only" in caplog.text
            assert wakeup.wait(0.05) is False
        finally:
            wakeup.close()


def test_batch_mode_is_db_workers_own(worker_env):
    env, query = worker_env
    run(env, "migrate", "--verbosity", "0")
    run(
        env,
        "shell",
        "-c",
        "from django_push.hub.tasks import sweep_task; sweep_task.enqueue(False)",
    )
    run(env, "push_worker", "--batch", "--no-startup-delay")
    assert query("SELECT status FROM django_tasks_database_dbtaskresult") == [("SUCCESSFUL",)]


def test_the_worker_holds_a_file_database_open(db, tmp_path):
    from django.db import connections

    connection = connections["default"]

    from django_push.hub.management.commands.push_worker import keep_open

    if POSTGRES:
        assert keep_open(connection) is None
        return
    path = tmp_path / "held.sqlite3"
    wrapper = type(connection)({**connection.settings_dict, "NAME": str(path)}, connection.alias)
    keeper = keep_open(wrapper)
    try:
        assert keeper is not None
        assert path.exists()  # opened, not only configured
    finally:
        keeper.close()
    memory = type(connection)({**connection.settings_dict, "NAME": ":memory:"}, connection.alias)
    assert keep_open(memory) is None
