"""Reconciliation against hostile or broken topics, over real HTTP on 127.0.0.1: each costs one
bounded request and a log line, never an ``updated`` with garbage, never the other polls."""

from __future__ import annotations

import datetime
import logging

import pytest
from django.utils import timezone

from django_push.http import MAX_REDIRECTS
from django_push.subscriber import reconcile
from django_push.subscriber.models import Subscription
from tests.feeds import ATOM_TYPE, atom, billion_laughs
from tests.receiving import receiving
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)

FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture
def notifications():
    with receiving(lambda sender, notification, **_: (sender.topic, notification)) as received:
        yield received


def subscription(topic):
    return Subscription.objects.create(
        topic=topic,
        hub="http://hub.example/",
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(hours=1),
    )


def test_bad_topics_cost_one_bounded_request_each(server, settings, notifications, caplog):
    settings.PUSH_SUBSCRIBER_RECONCILE = 60
    settings.PUSH_TIMEOUT = 1
    # The test server listens with a backlog of 5: more connections at once wait for a SYN
    # retry (1 s), and the good topic would time out for the server's sake.
    settings.PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY = 3
    good = atom([1, 2])
    server.replies.update(
        {
            "/error": Reply(503, b"busy"),
            "/slow": Reply(200, good, {"Content-Type": ATOM_TYPE}, delay=1.5),
            "/loop": Reply(302, headers={"Location": "/loop"}),
            "/huge": Reply(200, b"<" * FIFTY_MB, {"Content-Type": "text/plain"}),
            "/broken": Reply(200, b"<feed><entry>garbage", {"Content-Type": ATOM_TYPE}),
            "/laughs": Reply(200, billion_laughs(), {"Content-Type": "application/rss+xml"}),
            "/good": Reply(200, good, {"Content-Type": ATOM_TYPE}),
        }
    )
    paths = list(server.replies)
    for path in paths:
        subscription(server.url + path)

    with caplog.at_level(logging.WARNING, logger="django_push"):
        report = reconcile.reconcile_due()

    assert report.counts == {"failed": 6, "missed": 1}
    assert notifications == [(server.url + "/good", good)]
    errors = dict(Subscription.objects.values_list("topic", "last_poll_error"))
    assert errors[server.url + "/good"] == ""
    assert "HTTP 503" in errors[server.url + "/error"]
    assert "1.0 seconds" in errors[server.url + "/slow"]
    assert f"more than {MAX_REDIRECTS} redirects" in errors[server.url + "/loop"]
    assert "cap" in errors[server.url + "/huge"]
    assert "invalid XML" in errors[server.url + "/broken"]
    assert "invalid XML" in errors[server.url + "/laughs"]
    for path in paths:
        requests = [r for r in server.requests if r.path == path]
        assert len(requests) == (MAX_REDIRECTS + 1 if path == "/loop" else 1), path
        if path != "/good":
            assert server.url + path in caplog.text
    # Nothing garbled was recorded as received: the next good answer is sent.
    assert Subscription.objects.get(topic=server.url + "/broken").content_hash == ""


def test_an_error_is_cleared_by_the_next_good_poll(server, settings):
    settings.PUSH_SUBSCRIBER_RECONCILE = 60
    server.replies["/topic"] = Reply(500)
    row = subscription(server.url + "/topic")
    reconcile.reconcile_due()
    row.refresh_from_db()
    assert row.last_poll_error == "HTTP 500"
    server.replies["/topic"] = Reply(200, b"fine")
    Subscription.objects.update(next_poll_at=None)
    reconcile.reconcile_due()
    row.refresh_from_db()
    assert row.last_poll_error == ""


def test_the_network_guard_applies(server, settings, notifications):
    settings.PUSH_SUBSCRIBER_RECONCILE = 60
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = False
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False
    row = subscription(server.url + "/topic")
    assert reconcile.reconcile_due().counts == {"failed": 1}
    assert server.requests == [] and notifications == []
    row.refresh_from_db()
    assert "not a public address" in row.last_poll_error


def test_overlong_validators_are_not_kept(server, settings):
    settings.PUSH_SUBSCRIBER_RECONCILE = 60
    server.replies["/topic"] = Reply(200, b"x", {"ETag": '"' + "e" * 300 + '"'})
    row = subscription(server.url + "/topic")
    reconcile.reconcile_due()
    row.refresh_from_db()
    assert row.etag == ""
