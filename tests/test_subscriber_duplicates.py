"""Repeated deliveries (PUSH_SUBSCRIBER_DUPLICATE_WINDOW): the hub delivers at least once,
with the same ``Push-Delivery-Id`` on every retry; the subscriber drops repeats.

Everything goes over real HTTP: our hub (in the test process) delivers to our callback view
on the live server, or to a recording server on 127.0.0.1.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.utils import timezone

from django_push import protocol, signatures
from django_push.hub.models import Content, Delivery, HubSubscription, Span
from django_push.hub.tasks import publish_task, sweep
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import counts
from tests.receiving import receiving
from tests.servers import Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_queue")]

HUB_URL = "https://hub.example/hub/"


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """A cache of this test's own, so nothing is remembered from another test."""
    location = uuid.uuid4().hex
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "deliveries": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": location,
        },
    }
    settings.PUSH_SUBSCRIBER_DUPLICATE_CACHE = "deliveries"


@pytest.fixture(autouse=True)
def one_delivery_at_a_time(settings):
    """The live server's threads share one in-memory SQLite connection, which two requests at
    once can break (an IndexError inside Django's row reading, answered 500); the hub sends
    to this site's callbacks one at a time here."""
    settings.PUSH_HUB_CONCURRENCY = 1


@pytest.fixture
def notifications():
    with receiving(lambda sender, notification, **_: (sender.pk, notification)) as received:
        yield received


def subscription_pair(topic, hub="http://hub.example/", secret="s3cret"):
    """A verified subscription of our subscriber and its row at our hub."""
    subscription = Subscription.objects.create(
        topic=topic,
        hub=hub,
        verified=True,
        secret=secret,
        lease_seconds=3600,
        lease_expiration=timezone.now() + datetime.timedelta(hours=1),
    )
    HubSubscription.objects.create(
        topic=topic,
        callback=subscription.callback_url,
        secret=secret,
        lease_seconds=3600,
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    return subscription


def publish(server, body):
    server.replies["/topic"] = Reply(200, body, {"Content-Type": "text/plain"})
    publish_task.call(server.url + "/topic", HUB_URL)
    run_queued()


def redeliver_after_a_crash():
    """The worker sent the content and died before recording it: once its claim has
    expired, the sweeper hands the range to another worker, which sends it again."""
    Span.objects.update(
        status=Span.Status.PENDING,
        claim="dead-worker",
        claimed_until=timezone.now() - datetime.timedelta(seconds=1),
        delivered=0,
        finished_at=None,
    )
    Content.objects.update(finished_at=None)
    sweep()
    run_queued()


def post(url, body, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# Retries and recoveries of the hub ------------------------------------------------------


@pytest.mark.parametrize("window", [60, None])
def test_a_retry_after_a_timeout_is_dropped_only_when_on(live_domain, server, settings, window):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = window
    settings.PUSH_HUB_RETRY_BASE = 0.05
    settings.PUSH_TIMEOUT = 1
    first_done = threading.Event()
    received = []

    def slow_recorder(sender, **kwargs):
        received.append(sender.pk)
        if len(received) == 1:  # the first one takes longer than the hub waits
            time.sleep(2)
            first_done.set()

    subscription = subscription_pair(server.url + "/topic")
    updated.connect(slow_recorder)
    try:
        publish(server, b"first version")
        delivery = Delivery.objects.get()
        assert delivery.status == Delivery.Status.PENDING  # the hub saw a timeout
        assert first_done.wait(10)
        for _ in range(5):  # retries, until one is answered in time (the machine may be slow)
            time.sleep(max((delivery.next_attempt_at - timezone.now()).total_seconds(), 0) + 0.1)
            sweep()
            run_queued()
            delivery.refresh_from_db()
            if delivery.status == Delivery.Status.DELIVERED:
                break
    finally:
        updated.disconnect(slow_recorder)
    assert delivery.status == Delivery.Status.DELIVERED  # a repeat gets a 2xx too
    assert delivery.attempts >= 2
    if window:
        assert received == [subscription.pk]
    else:
        assert len(received) >= 2
        assert set(received) == {subscription.pk}


@pytest.mark.parametrize(("window", "expected"), [(60, 1), (None, 2)])
def test_a_redelivery_after_a_crash_is_dropped_only_when_on(
    live_domain, server, settings, notifications, window, expected
):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = window
    subscription = subscription_pair(server.url + "/topic")
    publish(server, b"first version")
    redeliver_after_a_crash()
    assert counts(Content.objects.get()) == {"delivered": 1, "pending": 0, "failed": 0}
    assert notifications == [(subscription.pk, b"first version")] * expected


def test_new_content_passes(live_domain, server, settings, notifications):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 60
    subscription_pair(server.url + "/topic")
    publish(server, b"first version")
    publish(server, b"second version")
    redeliver_after_a_crash()  # both again: both dropped
    assert [body for _, body in notifications] == [b"first version", b"second version"]


def test_the_same_content_returning_later_passes(live_domain, server, settings, notifications):
    # A -> B -> A: the third is new content (a new identity), not a repeat of the first.
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 60
    subscription_pair(server.url + "/topic")
    for body in (b"A", b"B", b"A"):
        publish(server, body)
    assert [body for _, body in notifications] == [b"A", b"B", b"A"]


def test_subscriptions_are_independent(live_domain, server, settings, notifications):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 60
    topic = server.url + "/topic"
    one = subscription_pair(topic, hub="http://hub-one.example/")
    two = subscription_pair(topic, hub="http://hub-two.example/")
    publish(server, b"same content, same identity")  # one content: one Push-Delivery-Id
    redeliver_after_a_crash()
    assert sorted(pk for pk, _ in notifications) == sorted([one.pk, two.pk])


def test_the_window_expires(live_domain, server, settings, notifications):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 3
    subscription_pair(server.url + "/topic")
    publish(server, b"first version")
    remembered_before = time.monotonic()
    redeliver_after_a_crash()
    assert len(notifications) == 1
    time.sleep(max(remembered_before + 3.2 - time.monotonic(), 0))  # the cache entry expires
    redeliver_after_a_crash()
    assert len(notifications) == 2


def test_a_repeat_is_logged_at_debug(live_domain, server, settings, caplog):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 60
    subscription_pair(server.url + "/topic")
    publish(server, b"first version")
    with caplog.at_level(logging.DEBUG, logger="django_push"):
        redeliver_after_a_crash()
    [record] = [r for r in caplog.records if "repeated delivery" in r.getMessage()]
    assert record.levelno == logging.DEBUG


# Requests without the hub's header -----------------------------------------------------------


@pytest.mark.parametrize(("window", "expected"), [(60, [b"x", b"y"]), (None, [b"x", b"x", b"y"])])
def test_without_the_header_the_body_is_the_identity(
    live_domain, settings, notifications, window, expected
):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = window
    subscription = subscription_pair("http://example.com/feed", secret="")
    for body in (b"x", b"x", b"y"):
        assert post(subscription.callback_url, body) == 200
    assert [body for _, body in notifications] == expected


def test_a_forged_request_is_not_remembered(live_domain, settings, notifications):
    # Only requests that pass the signature check are remembered: a stranger who knows the
    # URL but not the secret cannot make the hub's delivery look like a repeat.
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 60
    subscription = subscription_pair("http://example.com/feed")
    header = {protocol.DELIVERY_ID_HEADER: "next-delivery"}
    forged = {**header, protocol.SIGNATURE_HEADER: "sha256=" + "0" * 64}
    assert post(subscription.callback_url, b"news", forged) == 200  # dropped (S-20)
    assert post(subscription.callback_url, b"news", header) == 400  # unsigned
    signed = {**header, protocol.SIGNATURE_HEADER: signatures.sign("s3cret", b"news", "sha256")}
    assert post(subscription.callback_url, b"news", signed) == 200
    assert notifications == [(subscription.pk, b"news")]


def test_a_captured_body_replayed_under_a_future_id_does_not_drop_that_delivery(
    live_domain, settings, notifications
):
    """Issue 16, low 7: Push-Delivery-Id is not signed. Whoever captured one signed delivery
    replays it under the id the hub will use next; the real delivery with that id, another
    body, must still be accepted."""
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 60
    subscription = subscription_pair("http://example.com/feed")
    url = subscription.callback_url

    def signed(body, delivery_id):
        return {
            protocol.DELIVERY_ID_HEADER: delivery_id,
            protocol.SIGNATURE_HEADER: signatures.sign("s3cret", body, "sha256"),
        }

    assert post(url, b"old news", signed(b"old news", "delivery-1")) == 200  # captured
    assert post(url, b"old news", signed(b"old news", "delivery-2")) == 200  # the replay
    assert post(url, b"fresh news", signed(b"fresh news", "delivery-2")) == 200  # the hub's
    assert post(url, b"fresh news", signed(b"fresh news", "delivery-2")) == 200  # its retry
    bodies = [body for _, body in notifications]
    assert bodies == [b"old news", b"old news", b"fresh news"]


@pytest.mark.parametrize(("window", "expected"), [(60, 2), (None, 3)])
def test_content_that_failed_is_not_remembered(
    live_domain, settings, notifications, window, expected
):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = window
    subscription = subscription_pair("http://example.com/feed", secret="")
    failures = []

    def failing(sender, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("the database is down")

    updated.connect(failing)
    try:
        headers = {protocol.DELIVERY_ID_HEADER: "one"}
        assert post(subscription.callback_url, b"news", headers) == 500
        assert post(subscription.callback_url, b"news", headers) == 200  # the hub's retry
        assert post(subscription.callback_url, b"news", headers) == 200  # a repeat
    finally:
        updated.disconnect(failing)
    # The first attempt reached the recording receiver, then failed; the retry went through,
    # and the repeat after it only without the window.
    assert notifications == [(subscription.pk, b"news")] * expected


def test_an_unreachable_cache_lets_content_through(live_domain, settings, notifications, caplog):
    # A database cache whose table was never created fails on every call, as an unreachable
    # Redis or Memcached would: a repeat is better than a loss.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "deliveries": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "no_such_cache_table",
        },
    }
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 60
    subscription = subscription_pair("http://example.com/feed", secret="")
    with caplog.at_level(logging.WARNING, logger="django_push"):
        assert post(subscription.callback_url, b"news") == 200
        assert post(subscription.callback_url, b"news") == 200
    assert notifications == [(subscription.pk, b"news")] * 2
    assert "Could not check for a repeated delivery" in caplog.text


# What the hub sends ------------------------------------------------------------------------


def test_the_hub_sends_one_identity_per_content_on_every_retry(server, settings):
    settings.PUSH_HUB_RETRY_BASE = 0.05
    answers = iter([500])
    server.replies["/cb"] = lambda received: Reply(next(answers, 200))
    topic = server.url + "/topic"
    for path in ("/cb", "/other"):
        HubSubscription.objects.create(
            topic=topic,
            callback=server.url + path,
            lease_seconds=3600,
            expires_at=timezone.now() + datetime.timedelta(hours=1),
        )
    publish(server, b"one")
    time.sleep(0.5)
    sweep()  # the retry of /cb
    run_queued()
    publish(server, b"two")
    ids = [
        (r.path, r.headers[protocol.DELIVERY_ID_HEADER])
        for r in server.requests
        if r.method == "POST"
    ]
    first, second = Content.objects.order_by("pk")
    assert sorted(ids) == sorted(
        [
            ("/cb", first.delivery_id),  # the failed attempt
            ("/other", first.delivery_id),
            ("/cb", first.delivery_id),  # its retry
            ("/cb", second.delivery_id),
            ("/other", second.delivery_id),
        ]
    )
    assert first.delivery_id != second.delivery_id
    assert len(first.delivery_id) == 32
