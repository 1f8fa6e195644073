"""The subscriber is a patient client (issue 16): a busy or restarting hub (429, 5xx, a
timeout, a refused connection) is asked again with back-off, honouring ``Retry-After`` within
``PUSH_SUBSCRIBER_RETRY_HORIZON``; ``subscription_failed`` is sent once, when it is final."""

from __future__ import annotations

import os
import threading
import time

import pytest

from django_push.hub import views as hub_views
from django_push.hub.models import HubSubscription, Intent
from django_push.subscriber.models import Subscription, SubscriptionError
from django_push.subscriber.signals import subscription_failed
from tests.conftest import wait_until
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def failures():
    seen = []

    def receiver(sender, subscription, mode, status, text, **kwargs):
        seen.append((mode, status))

    subscription_failed.connect(receiver)
    yield seen
    subscription_failed.disconnect(receiver)


def answers(*replies):
    """A hub handler answering ``replies`` in turn, then the last one forever."""
    queue = list(replies)

    def handle(received):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handle


def row(hub):
    return Subscription.objects.create(topic="http://example.com/f", hub=hub)


def test_busy_then_restarting_hub_is_asked_again(server, settings, failures):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 10
    server.default = answers(Reply(429, headers={"Retry-After": "1"}), Reply(503), Reply(202))
    subscription = row(server.url)
    started = time.monotonic()
    assert subscription.subscribe().status == 202
    assert time.monotonic() - started >= 1  # Retry-After honoured
    assert [r.form["hub.mode"] for r in server.requests] == [["subscribe"]] * 3
    subscription.refresh_from_db()
    assert (subscription.pending, subscription.last_error) == ("subscribe", "")
    assert failures == []


def test_a_refused_connection_is_tried_again(unused_tcp_port, settings, failures, caplog):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 2
    subscription = row(f"http://127.0.0.1:{unused_tcp_port}/")
    started = time.monotonic()
    with pytest.raises(SubscriptionError):
        subscription.unsubscribe()
    # Tried at 0, 0.5 and 1.5 s; the next try (3.5 s) would be past the horizon.
    assert 1.4 <= time.monotonic() - started < 5
    assert sum("asking again" in message for message in caplog.messages) == 2
    assert failures == [("unsubscribe", None)]


def test_horizon_ends_the_retries_with_one_failure(server, settings, failures):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 2
    server.default = Reply(503, b"restarting")
    with pytest.raises(SubscriptionError, match="restarting"):
        row(server.url).subscribe()
    assert 2 <= len(server.requests) <= 4
    assert failures == [("subscribe", 503)]


def test_retry_after_beyond_the_horizon_is_final_at_once(server, settings, failures):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 30
    server.default = Reply(429, headers={"Retry-After": "3600"})
    started = time.monotonic()
    with pytest.raises(SubscriptionError):
        row(server.url).subscribe()
    assert time.monotonic() - started < 2
    assert len(server.requests) == 1
    assert failures == [("subscribe", 429)]


def test_a_redirect_to_another_origin_is_final(server, settings, failures):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 30
    server.default = Reply(307, headers={"Location": "http://localhost:9/hub"})
    with pytest.raises(SubscriptionError, match="another origin"):
        row(server.url).subscribe()
    assert len(server.requests) == 1
    assert failures == [("subscribe", None)]


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_other_refusals_are_final(server, settings, failures, status):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 30
    server.default = Reply(status)
    with pytest.raises(SubscriptionError):
        row(server.url).subscribe()
    assert len(server.requests) == 1
    assert failures == [("subscribe", status)]


def test_horizon_zero_never_waits(server, settings, failures):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 0
    server.default = Reply(503)
    with pytest.raises(SubscriptionError):
        row(server.url).subscribe()
    assert len(server.requests) == 1


def test_our_own_busy_hub_verifies_the_subscription_once_it_has_room(
    site, settings, monkeypatch, failures
):
    """This project's hub, over HTTP, with its total cap at 1 and a stranger's verification
    holding it: 429 with Retry-After, then room, then verified."""
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 10
    settings.PUSH_HUB_MAX_PENDING = 1
    monkeypatch.setattr(hub_views, "RETRY_AFTER", 1)
    stranger = Intent.objects.create(
        mode="subscribe", topic=f"{site}/feed/", callback="https://stranger.example/cb"
    )
    threading.Timer(
        0.5, lambda: Intent.objects.filter(pk=stranger.pk).update(status="failed")
    ).start()

    subscription = Subscription.objects.subscribe(f"{site}/feed/", lease_seconds=3600)

    wait_until(lambda: Subscription.objects.get(pk=subscription.pk).verified, timeout=10)
    assert HubSubscription.objects.filter(callback=subscription.callback_url).exists()
    assert failures == []


def test_a_renewal_run_goes_out_over_one_connection(server):
    """Renewing N subscriptions opened N client sessions, so N connections to one hub."""
    import datetime

    from django.core.management import call_command
    from django.utils import timezone

    server.default = Reply(202)
    soon = timezone.now() + datetime.timedelta(minutes=5)
    for n in range(3):
        Subscription.objects.create(
            topic=f"http://example.com/{n}", hub=server.url, verified=True, lease_expiration=soon
        )
    call_command("renew_subscriptions", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert len(server.requests) == 3
    assert len({r.client for r in server.requests}) == 1
