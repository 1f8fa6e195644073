"""The queue is only the trigger: verifications and publish requests live in the hub's tables,
and the sweeper enqueues again what a dead worker held or a lost task never started.
(Deliveries: test_hub_delivery.py and the SIGKILL test in test_hub_kill.py.)"""

from __future__ import annotations

import asyncio
import datetime
import io
import os
import signal
import sqlite3
import time

import pytest
from aiohttp import web
from django.core.management import call_command
from django.utils import timezone

from django_push.conf import conf
from django_push.hub.models import Content, HubSubscription, Intent, Ping
from django_push.hub.tasks import publish_task, sweep, verify_intent_task
from django_push.hub.verification import verify
from tests.conftest import wait_until
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import counts
from tests.servers import Reply
from tests.test_hub_kill import ROOT, CountingServer, manage, run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]

HUB_URL = "https://hub.example/hub/"
PAST = datetime.timedelta(seconds=-1)
FUTURE = datetime.timedelta(seconds=60)


def echo(received):
    return Reply(200, received.query["hub.challenge"][0].encode())


def aged():
    """A creation time older than a claim lasts: no task can still be waiting to run it."""
    return timezone.now() - datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS + 1)


def sweep_command():
    out = io.StringIO()
    call_command("hub_sweep", stdout=out)
    run_queued()
    return out.getvalue()


@pytest.mark.parametrize("dead", ["worker died holding it", "its task was lost"])
def test_stale_verification_is_enqueued_again(server, settings, dead):
    server.replies["/cb"] = echo
    intent = Intent.objects.create(
        mode="subscribe", topic="http://testserver/feed", callback=server.url + "/cb"
    )
    if dead == "worker died holding it":
        Intent.objects.update(claimed_until=timezone.now() + PAST)
    else:
        Intent.objects.update(created_at=aged())
    assert "1 stale verification(s) and 0 stale publish request(s) found." in sweep_command()
    intent.refresh_from_db()
    assert intent.status == Intent.Status.VERIFIED
    assert HubSubscription.objects.get().callback == server.url + "/cb"


def test_recent_unclaimed_verification_is_left_to_its_task(server):
    Intent.objects.create(mode="subscribe", topic="http://testserver/feed", callback=server.url)
    assert sweep() == (0, 0)
    assert server.requests == []


def test_verification_held_by_a_live_worker_is_not_run_twice(server):
    server.replies["/cb"] = echo
    intent = Intent.objects.create(
        mode="subscribe",
        topic="http://testserver/feed",
        callback=server.url + "/cb",
        claimed_until=timezone.now() + FUTURE,
    )
    assert verify_intent_task.call(intent.pk) == 0
    assert not verify(intent)
    assert server.requests == []
    assert sweep() == (0, 0)
    assert Intent.objects.get().status == Intent.Status.PENDING


def test_endpoint_records_pings_and_their_outcome(client, server, settings):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    server.replies["/ok"] = Reply(200, b"news", {"Content-Type": "text/plain"})
    server.replies["/missing"] = Reply(404)
    for path in ["/ok", "/missing"]:
        HubSubscription.objects.create(
            topic=server.url + path,
            callback=server.url + "/cb",
            lease_seconds=3600,
            expires_at=timezone.now() + FUTURE,
        )
    response = client.post(
        "/hub/", {"hub.mode": "publish", "hub.url": [server.url + "/ok", server.url + "/missing"]}
    )
    assert response.status_code == 202
    # Recorded with the answer, before any task ran (on_commit has not fired in this test).
    assert set(Ping.objects.values_list("topic", "status")) == {
        (server.url + "/ok", "pending"),
        (server.url + "/missing", "pending"),
    }
    for ping in Ping.objects.all():
        publish_task.call(ping.topic, ping.hub_url, ping.pk)
    ok, missing = (
        Ping.objects.get(topic__endswith="/ok"),
        Ping.objects.get(topic__endswith="/missing"),
    )
    assert (ok.status, ok.content, ok.finished_at is not None) == (
        Ping.Status.FETCHED,
        Content.objects.get(),
        True,
    )
    assert (missing.status, missing.reason, missing.content) == (
        Ping.Status.FAILED,
        "HTTP 404",
        None,
    )
    # Done: another run of the same ping (a duplicate task) fetches nothing.
    assert publish_task.call(ok.topic, ok.hub_url, ok.pk) is None
    assert len([r for r in server.requests if r.method == "GET"]) == 2


@pytest.mark.parametrize("dead", ["worker died holding it", "its task was lost"])
def test_stale_ping_is_fetched_and_delivered(server, settings, dead):
    server.replies["/topic"] = Reply(200, b"news", {"Content-Type": "text/plain"})
    HubSubscription.objects.create(
        topic=server.url + "/topic",
        callback=server.url + "/cb",
        lease_seconds=3600,
        expires_at=timezone.now() + FUTURE,
    )
    ping = Ping.objects.create(topic=server.url + "/topic", hub_url=HUB_URL)
    if dead == "worker died holding it":
        Ping.objects.update(claimed_until=timezone.now() + PAST)
    else:
        Ping.objects.update(received_at=aged())
    assert "0 stale verification(s) and 1 stale publish request(s) found." in sweep_command()
    ping.refresh_from_db()
    assert ping.status == Ping.Status.FETCHED
    assert counts(ping.content)["delivered"] == 1
    assert [r.path for r in server.requests if r.method == "POST"] == ["/cb"]


def test_ping_held_by_a_live_worker_is_not_fetched_twice(server):
    ping = Ping.objects.create(
        topic=server.url + "/topic", hub_url=HUB_URL, claimed_until=timezone.now() + FUTURE
    )
    assert publish_task.call(ping.topic, ping.hub_url, ping.pk) is None
    assert sweep() == (0, 0)
    assert server.requests == []


class EchoServer(CountingServer):
    """Callbacks on 127.0.0.1 that echo the challenge after ``delay``; records who did."""

    async def verification(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        self.received.add(int(request.match_info["n"]))
        return web.Response(text=request.query["hub.challenge"])

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/cb/{n}", self.verification)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()


INTENTS = """
from django_push.hub.models import Intent
from django_push.hub.tasks import verify_intent_task
Intent.objects.bulk_create(
    Intent(mode="subscribe", topic="http://testserver/feed", callback=f"{base}/cb/{{n}}")
    for n in range({count})
)
verify_intent_task.enqueue()
"""


@pytest.mark.slow
def test_sigkill_mid_batch_of_verifications_loses_none(tmp_path):
    count = 1000
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "PUSH_WORKER_DB": str(tmp_path / "hub.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    database = env["PUSH_WORKER_DB"]

    def verified() -> int:
        with sqlite3.connect(database) as db:
            [(done,)] = db.execute("SELECT COUNT(*) FROM push_hub_intent WHERE status='verified'")
        return int(done)

    with EchoServer(delay=0.05) as server:
        run(env, "migrate", "--verbosity", "0")
        run(env, "shell", "-c", INTENTS.format(base=f"http://127.0.0.1:{server.port}", count=count))
        worker = manage(env, "db_worker", "--interval", "0.05", "--no-startup-delay")
        try:
            wait_until(lambda: len(server.received) >= 150, timeout=60, message="verifications")
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            worker.kill()
        at_kill = verified()
        assert at_kill < count, "the worker finished before it could be killed"

        time.sleep(2.5)  # let the dead worker's claim expire (PUSH_HUB_CLAIM_SECONDS = 2)
        swept = run(env, "hub_sweep")
        assert " 0 stale verification(s)" not in swept, swept
        replacement = manage(env, "db_worker", "--interval", "0.05", "--no-startup-delay")
        try:
            wait_until(lambda: verified() == count, timeout=60, message="every verification")
        finally:
            replacement.terminate()
            replacement.wait(10)

    with sqlite3.connect(database) as db:
        [(subscriptions,)] = db.execute("SELECT COUNT(*) FROM push_hub_hubsubscription")
    assert subscriptions == count
    assert server.received == set(range(count))
    print(f"killed with {at_kill} of {count} verified")
