"""Issue 17's end-to-end case, over real HTTP with this project's hub on the live server: the
subscriber is down while three contents are published, the hub gives up, the subscriber comes
back, and reconciliation brings the latest content, with no ``updated`` sent twice."""

from __future__ import annotations

import hashlib
import time
import urllib.request

import pytest
from django.http import HttpResponse
from django.utils import timezone

from django_push import signatures
from django_push.hub.models import Delivery, HubSubscription
from django_push.hub.tasks import sweep
from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription
from django_push.subscriber.tasks import reconcile_task
from django_push.subscriber.views import CallbackView
from tests.conftest import wait_until
from tests.hub_queue import run_queued
from tests.receiving import receiving
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)

ATOM = "application/atom+xml; charset=utf-8"


@pytest.fixture
def notifications():
    with receiving(
        lambda sender, notification, polled=False, **_: (notification, polled)
    ) as received:
        yield received


def feed(version):
    return f"<feed><entry>version {version}</entry></feed>".encode()


def test_down_while_the_hub_gives_up_then_back(site, server, settings, monkeypatch, notifications):
    settings.PUSH_SUBSCRIBER_RECONCILE = 1
    # The subscription has a secret (PUSH_INSECURE_SECRETS) and the topic is plain HTTP.
    settings.PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP = True
    settings.PUSH_HUB_CONCURRENCY = 1  # the live server's threads share one SQLite connection
    settings.PUSH_HUB_RETRY_BASE = 0.05
    settings.PUSH_HUB_RETRY_HORIZON = 0.3
    hub_url = f"{site}/hub/"
    topic = server.url + "/feed"
    bodies = {"body": feed(0)}
    server.replies["/feed"] = lambda received: Reply(200, bodies["body"], {"Content-Type": ATOM})

    # Every delivery that reaches the callback is recorded; while down, it answers 503.
    down, attempts = {"on": False}, []
    real_post = CallbackView.post

    def post(view, request, pk):
        attempts.append("down" if down["on"] else "up")
        return HttpResponse(status=503) if down["on"] else real_post(view, request, pk)

    monkeypatch.setattr(CallbackView, "post", post)

    # Subscribed through our hub; the catch-up on verification fetches the topic once.
    subscription = Subscription.objects.subscribe(topic, hub=hub_url, lease_seconds=3600)
    wait_until(lambda: HubSubscription.objects.exists(), message="the hub-side subscription")
    wait_until(lambda: notifications, message="the catch-up")
    assert notifications == [(feed(0), True)]

    # The hub pushes version 0 too: the subscriber already has it, and sends nothing.
    assert ping_hub(topic, hub_url).status == 202
    run_queued()
    wait_until(lambda: attempts == ["up"], message="the push of version 0")
    assert notifications == [(feed(0), True)]

    # Down while three versions are published, until the hub gives up on each.
    down["on"] = True
    for version in (1, 2, 3):
        bodies["body"] = feed(version)
        assert ping_hub(topic, hub_url).status == 202
        run_queued()

    def hub_gave_up():
        # Each version's retry is superseded by the next one's: the hub ends up giving up
        # on the latest only (docs/hub.rst, "Order").
        sweep()
        run_queued()
        failed = Delivery.objects.filter(status=Delivery.Status.FAILED)
        pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
        return failed.count() == 1 and not pending.exists()

    wait_until(hub_gave_up, timeout=30, interval=0.1, message="the hub to give up")
    assert attempts.count("down") >= 3
    assert notifications == [(feed(0), True)]

    # Back: the next reconciliation finds the latest version, once.
    down["on"] = False
    subscription.refresh_from_db()
    time.sleep(max((subscription.next_poll_at - timezone.now()).total_seconds(), 0) + 0.05)
    assert reconcile_task.call(False) == {"missed": 1}
    assert notifications == [(feed(0), True), (feed(3), True)]
    subscription.refresh_from_db()
    assert subscription.content_hash == hashlib.sha256(feed(3)).hexdigest()
    assert subscription.last_poll_error == ""

    # Nothing more: the next poll finds the same body, and a late delivery of it (a hub that
    # had not given up after all) is answered 200 and dropped.
    Subscription.objects.update(next_poll_at=None)
    assert reconcile_task.call(False) == {"unchanged": 1}
    signature = signatures.sign(subscription.secret, feed(3), "sha256")
    late = urllib.request.Request(
        subscription.callback_url, data=feed(3), headers={"X-Hub-Signature": signature}
    )
    with urllib.request.urlopen(late) as response:
        assert response.status == 200
    assert notifications == [(feed(0), True), (feed(3), True)]
