"""Issue 18, parts 1 and 2 end to end, over real HTTP with this project's hub and subscriber on
the live server: a subscriber that misses a delivery (down, then up) polls the topic as soon as
the next delivery's ``Push-Sequence`` shows the gap, long before its poll interval; a new
subscriber gets the topic's latest content right after its verification."""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request

import pytest
from django.http import HttpResponse
from django.utils import timezone

from django_push import signatures
from django_push.hub.models import Delivery, HubSubscription
from django_push.hub.publishing import publish_content
from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription
from django_push.subscriber.views import CallbackView
from tests.conftest import wait_until
from tests.hub_queue import run_queued
from tests.hub_rows import subscribe as hub_subscribe
from tests.receiving import receiving
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)

ATOM = "application/atom+xml; charset=utf-8"
HOUR = 3600


@pytest.fixture
def notifications():
    with receiving(
        lambda sender, notification, polled=False, **_: (notification, polled)
    ) as received:
        yield received


def feed(*versions):
    entries = "".join(f"<entry>version {version}</entry>" for version in versions)
    return f"<feed>{entries}</feed>".encode()


def entry(version):
    return f"<feed><entry>version {version}</entry></feed>".encode()


@pytest.fixture
def gap_settings(settings):
    settings.PUSH_HUB_SEQUENCE_HEADER = True
    settings.PUSH_SUBSCRIBER_RECONCILE = HOUR  # the regular poll: far away
    settings.PUSH_SUBSCRIBER_GAP_POLL_INTERVAL = 0
    # The subscription has a secret (PUSH_INSECURE_SECRETS) and the topic is plain HTTP.
    settings.PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP = True
    settings.PUSH_HUB_CONCURRENCY = 1  # the live server's threads share one SQLite connection
    settings.PUSH_HUB_RETRY_BASE = HOUR  # the missed delivery is not retried during the test
    return settings


def topic_polls(server):
    return [r for r in server.requests if r.method == "GET" and r.path == "/feed"]


def test_a_missed_delivery_is_polled_for_at_the_next_one(
    site, server, gap_settings, monkeypatch, notifications
):
    hub_url, topic = f"{site}/hub/", server.url + "/feed"
    # The publisher pushes each new entry (a direct publish); the topic holds them all.
    state = {"feed": feed(0)}
    server.replies["/feed"] = lambda received: Reply(200, state["feed"], {"Content-Type": ATOM})

    down = {"on": False}
    real_post = CallbackView.post

    def post(view, request, pk):
        return HttpResponse(status=503) if down["on"] else real_post(view, request, pk)

    monkeypatch.setattr(CallbackView, "post", post)

    def publish(version):
        state["feed"] = feed(*range(version + 1))
        assert publish_content(topic, entry(version), ATOM, hub_url) is not None
        run_queued()

    subscription = Subscription.objects.subscribe(topic, hub=hub_url, lease_seconds=HOUR)
    wait_until(lambda: HubSubscription.objects.exists(), message="the hub-side subscription")
    wait_until(lambda: notifications, message="the catch-up")
    assert notifications == [(feed(0), True)]

    # Numbers that follow each other: no poll.
    publish(1)
    wait_until(lambda: len(notifications) == 2, message="the push of version 1")
    assert notifications[1] == (entry(1), False)
    assert len(topic_polls(server)) == 1
    subscription.refresh_from_db()
    assert subscription.last_sequence == 1

    # Down while version 2 is pushed: the hub will retry, an hour from now.
    down["on"] = True
    publish(2)
    wait_until(Delivery.objects.exists, message="the failed delivery")
    assert len(notifications) == 2

    # Back: version 3 arrives numbered 3, and the subscriber polls the topic at once.
    down["on"] = False
    publish(3)
    wait_until(lambda: len(notifications) == 4, message="the push of version 3 and the poll")
    assert sorted(notifications[2:]) == sorted([(entry(3), False), (feed(0, 1, 2, 3), True)])
    assert len(topic_polls(server)) == 2
    subscription.refresh_from_db()
    assert subscription.last_sequence == 3
    # The regular poll moved on from the gap's: it is still an interval away.
    assert subscription.next_poll_at > timezone.now() + datetime.timedelta(seconds=HOUR - 60)


def signed_post(subscription, body, headers):
    signature = signatures.sign(subscription.secret, body, "sha256")
    request = urllib.request.Request(
        subscription.callback_url, data=body, headers={"X-Hub-Signature": signature, **headers}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def verified(live_domain, server):
    return Subscription.objects.create(
        hub="http://hub.example/",
        topic=server.url + "/feed",
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(days=1),
        secret="s3cret",
    )


@pytest.mark.parametrize("value", ["x", "0", "-1", "1.5", "1_0", "2 3", "²", "9" * 19, ""])
def test_a_malformed_number_is_refused_with_a_reason(verified, value, notifications):
    status, body = signed_post(verified, b"<feed/>", {"Push-Sequence": value})
    assert status == 400
    assert b"Push-Sequence must be a positive integer" in body
    assert notifications == []
    verified.refresh_from_db()
    assert verified.last_sequence is None


def test_gap_polls_are_at_least_the_interval_apart(verified, server, gap_settings, notifications):
    gap_settings.PUSH_SUBSCRIBER_GAP_POLL_INTERVAL = HOUR
    server.replies["/feed"] = Reply(200, feed(0, 1, 2, 3, 4, 5), {"Content-Type": ATOM})
    for number in (1, 3, 2, 5):  # gaps before 3 and 5; 2 comes late and lowers nothing
        status, _ = signed_post(verified, entry(number), {"Push-Sequence": str(number)})
        assert status == 200
    assert len(topic_polls(server)) == 1  # the first gap's; the second is within the hour
    assert (feed(0, 1, 2, 3, 4, 5), True) in notifications
    verified.refresh_from_db()
    assert verified.last_sequence == 5


def test_without_the_header_nothing_is_recorded(verified, server, gap_settings, notifications):
    for _ in range(2):
        status, _ = signed_post(verified, entry(1), {})
        assert status == 200
    assert topic_polls(server) == []
    verified.refresh_from_db()
    assert verified.last_sequence is None


def test_a_new_subscriber_gets_the_latest_content_after_verification(
    site, server, settings, notifications
):
    settings.PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE = True
    settings.PUSH_HUB_CONCURRENCY = 1
    hub_url, topic = f"{site}/hub/", server.url + "/feed"
    server.replies["/feed"] = Reply(200, feed(7), {"Content-Type": ATOM})
    server.replies["/other"] = Reply(204)
    hub_subscribe(server.url + "/other", topic)  # someone else follows the topic already
    assert ping_hub(topic, hub_url).status == 202
    run_queued()
    wait_until(lambda: any(r.path == "/other" for r in server.requests), message="the publish")

    # Reconciliation is off: only the hub can bring the content.
    subscription = Subscription.objects.subscribe(topic, hub=hub_url, lease_seconds=HOUR)
    wait_until(lambda: notifications, message="the latest content")
    assert notifications == [(feed(7), False)]
    subscription.refresh_from_db()
    assert subscription.verified
    assert len(topic_polls(server)) == 1  # the hub's fetch: the subscriber polled nothing


def test_each_gap_is_counted_in_the_metrics(
    verified, live_domain, server, gap_settings, monkeypatch
):
    from django_push.metrics import collector
    from tests.test_metrics import delta, scrape

    gap_settings.PUSH_METRICS = True
    monkeypatch.setattr(collector, "GAUGE_TTL", 0.0)
    server.replies["/feed"] = Reply(200, feed(0), {"Content-Type": ATOM})
    before = scrape(live_domain)
    for number in (1, 2, 4, 4, 3, 9):  # gaps before 4 and 9
        assert signed_post(verified, entry(number), {"Push-Sequence": str(number)})[0] == 200
    after = scrape(live_domain)
    assert delta(before, after, "django_push_subscriber_sequence_gaps_total") == 2
