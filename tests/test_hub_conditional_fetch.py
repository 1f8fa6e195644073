"""Conditional fetches (PUSH_HUB_CONDITIONAL_FETCH) and the audience in the fetch's
User-Agent (PUSH_HUB_FETCH_AUDIENCE), issue 18 parts 3 and 6.

Publishes go over HTTP to the live hub; the topic is a real server on 127.0.0.1 that
records the hub's request headers and answers 304 when told.
"""

from __future__ import annotations

import datetime
import itertools
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.db.models import Max
from django.utils import timezone

from django_push import UA, http
from django_push.hub import fetching
from django_push.hub.models import Content, HubSubscription, Ping
from django_push.hub.publishing import publish_content
from django_push.hub.tasks import publish_task, sweep
from tests.conftest import wait_until
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import subscribe
from tests.servers import Received, Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_queue")]

FEED = b"<feed>first</feed>"
DATE = "Sat, 05 Dec 2026 10:00:00 GMT"


class Topic:
    """A publisher that honours its validators: 304 when the hub's match the current ones."""

    def __init__(self, body: bytes = FEED, etag: str = '"v1"', date: str = DATE) -> None:
        self.body, self.etag, self.date = body, etag, date

    def __call__(self, request: Received) -> Reply:
        headers = {"Content-Type": "application/atom+xml", "ETag": self.etag}
        if self.date:
            headers["Last-Modified"] = self.date
        if request.headers.get("If-None-Match") == self.etag:
            return Reply(304, b"", headers)
        return Reply(200, self.body, headers)


@pytest.fixture
def hub(live_server, settings):
    settings.PUSH_HUB_URL = f"{live_server.url}/hub/"
    return settings.PUSH_HUB_URL


@pytest.fixture
def topic(server):
    subscribe(server.url + "/cb", server.url + "/topic")
    return server.url + "/topic"


def publish(hub_url, topic):
    """POST a publish to the live hub and wait until its ping has been fetched (or retried);
    returns the ping."""
    before = Ping.objects.aggregate(last=Max("pk"))["last"] or 0
    data = urlencode({"hub.mode": "publish", "hub.url": topic}).encode()
    try:
        with urllib.request.urlopen(hub_url, data=data, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == 202
    run_queued()
    ping = wait_until(Ping.objects.filter(pk__gt=before).first, message="the ping")
    wait_until(
        lambda: (
            Ping.objects.filter(pk=ping.pk).exclude(status=Ping.Status.PENDING, attempts=0).exists()
        ),
        message="the fetch",
    )
    ping.refresh_from_db()
    return ping


def fetches(server):
    return [r for r in server.requests if r.method == "GET" and r.path == "/topic"]


def deliveries(server):
    return [r for r in server.requests if r.method == "POST" and r.path == "/cb"]


def test_304_to_the_stored_validators_is_unchanged_and_delivers_nothing(hub, server, topic):
    server.replies["/topic"] = publisher = Topic()
    first = publish(hub, topic)
    assert first.status == Ping.Status.FETCHED
    wait_until(lambda: len(deliveries(server)) == 1, message="the first delivery")
    content = Content.objects.get()
    assert (content.etag, content.last_modified) == ('"v1"', DATE)

    second = publish(hub, topic)
    assert "If-None-Match" not in fetches(server)[0].headers
    asked = fetches(server)[1].headers
    assert (asked["If-None-Match"], asked["If-Modified-Since"]) == ('"v1"', DATE)
    assert second.status == Ping.Status.UNCHANGED
    assert second.reason == "HTTP 304 Not Modified"
    assert second.content_id == content.pk
    assert Content.objects.count() == 1
    assert len(deliveries(server)) == 1

    # A new version under a new ETag is fetched whole, stored with it and delivered.
    publisher.body, publisher.etag, publisher.date = b"<feed>second</feed>", '"v2"', ""
    third = publish(hub, topic)
    assert third.status == Ping.Status.FETCHED
    wait_until(lambda: len(deliveries(server)) == 2, message="the second delivery")
    assert deliveries(server)[1].body == b"<feed>second</feed>"
    latest = Content.objects.latest_of(topic)
    assert (latest.etag, latest.last_modified) == ('"v2"', "")
    assert publish(hub, topic).status == Ping.Status.UNCHANGED
    assert "If-Modified-Since" not in fetches(server)[3].headers
    assert fetches(server)[3].headers["If-None-Match"] == '"v2"'


def test_a_publish_without_a_ping_is_conditional_too(hub, server, topic):
    """``publish_task`` called directly (no publish request recorded)."""
    server.replies["/topic"] = Topic()
    first = publish_task.call(topic, hub)
    assert publish_task.call(topic, hub) is None
    assert fetches(server)[1].headers["If-None-Match"] == '"v1"'
    assert list(Content.objects.values_list("pk", flat=True)) == [first]
    assert len(deliveries(server)) == 1


def test_a_304_with_new_validators_keeps_them(hub, server, topic):
    server.replies["/topic"] = Topic()
    publish(hub, topic)
    server.replies["/topic"] = lambda request: Reply(304, b"", {"ETag": '"v1-gzip"'})
    assert publish(hub, topic).status == Ping.Status.UNCHANGED
    assert Content.objects.get().etag == '"v1-gzip"'
    assert Content.objects.get().last_modified == DATE  # not sent again: kept
    publish(hub, topic)
    assert fetches(server)[2].headers["If-None-Match"] == '"v1-gzip"'


def test_a_new_etag_on_every_fetch_is_a_normal_fetch(hub, server, topic):
    counter = itertools.count(1)
    body = [FEED]

    def rotating(request):
        return Reply(200, body[0], {"ETag": f'"{next(counter)}"'})

    server.replies["/topic"] = rotating
    assert publish(hub, topic).status == Ping.Status.FETCHED
    # The same body under a new ETag: unchanged by its hash, and the new ETag is kept.
    unchanged = publish(hub, topic)
    assert unchanged.status == Ping.Status.UNCHANGED
    assert unchanged.reason == "same SHA-256 as the last content"
    assert Content.objects.get().etag == '"2"'
    body[0] = b"<feed>new</feed>"
    assert publish(hub, topic).status == Ping.Status.FETCHED
    assert [r.headers.get("If-None-Match") for r in fetches(server)] == [None, '"1"', '"2"']
    wait_until(lambda: len(deliveries(server)) == 2, message="the second delivery")
    assert [r.body for r in deliveries(server)] == [FEED, b"<feed>new</feed>"]
    assert Content.objects.latest_of(topic).etag == '"3"'


@pytest.mark.parametrize("stored", ["nothing", "validators off"])
def test_a_304_to_a_fetch_without_validators_is_retried_not_stored(
    hub, server, topic, settings, stored
):
    if stored == "validators off":
        settings.PUSH_HUB_CONDITIONAL_FETCH = False
        server.replies["/topic"] = Topic()
        publish(hub, topic)
    server.replies["/topic"] = lambda request: Reply(304, b"", {"ETag": '"v1"'})
    ping = publish(hub, topic)
    assert "If-None-Match" not in fetches(server)[-1].headers
    assert (ping.status, ping.attempts) == (Ping.Status.PENDING, 1)
    assert ping.reason == "HTTP 304 to a fetch without validators"
    assert ping.content_id is None
    stored_before = Content.objects.count()

    # The publisher recovers; the retry fetches it whole and delivers it.
    server.replies["/topic"] = Topic(b"<feed>recovered</feed>", '"v9"')
    Ping.objects.filter(pk=ping.pk).update(next_attempt_at=timezone.now())
    sweep()
    run_queued()
    wait_until(
        lambda: Ping.objects.get(pk=ping.pk).status == Ping.Status.FETCHED, message="the retry"
    )
    assert Content.objects.count() == stored_before + 1
    wait_until(
        lambda: (
            deliveries(server)[-1:] and deliveries(server)[-1].body == b"<feed>recovered</feed>"
        ),
        message="the delivery",
    )


def test_a_304_after_the_content_was_pruned_is_retried(hub, server, topic):
    server.replies["/topic"] = publisher = Topic()
    publish(hub, topic)

    def pruned_meanwhile(request):
        Content.objects.all().delete()  # as upkeep.prune would, between query and answer
        connections.close_all()  # this server thread's own connection
        return publisher(request)

    server.replies["/topic"] = pruned_meanwhile
    ping = publish(hub, topic)
    assert fetches(server)[-1].headers["If-None-Match"] == '"v1"'
    assert (ping.status, ping.attempts) == (Ping.Status.PENDING, 1)
    assert ping.reason == "HTTP 304, but the last content is gone"
    server.replies["/topic"] = publisher
    Ping.objects.filter(pk=ping.pk).update(next_attempt_at=timezone.now())
    sweep()
    run_queued()
    wait_until(
        lambda: Ping.objects.get(pk=ping.pk).status == Ping.Status.FETCHED, message="the retry"
    )
    assert "If-None-Match" not in fetches(server)[-1].headers
    assert Content.objects.get().etag == '"v1"'


def test_validators_that_cannot_be_sent_back_are_dropped(hub, server, topic):
    headers = {"ETag": '"' + "x" * 2000 + '"', "Last-Modified": "yesterday"}
    server.replies["/topic"] = Reply(200, FEED, headers)
    publish(hub, topic)
    assert (Content.objects.get().etag, Content.objects.get().last_modified) == ("", "")
    server.replies["/topic"] = Reply(200, FEED, {"ETag": '"caf\xe9"'})  # latin-1 on the wire
    publish(hub, topic)
    assert Content.objects.get().etag == ""
    publish(hub, topic)
    assert all("If-None-Match" not in r.headers for r in fetches(server))
    assert all("If-Modified-Since" not in r.headers for r in fetches(server))


def test_a_direct_publish_has_no_validators(hub, server, topic):
    server.replies["/topic"] = Topic()
    publish(hub, topic)
    publish_content(topic, b"<feed>pushed</feed>", "application/atom+xml")
    publish(hub, topic)  # the stored body is not the one "v1" names: fetched whole
    assert "If-None-Match" not in fetches(server)[-1].headers
    assert Content.objects.latest_of(topic).etag == '"v1"'


def test_unconditional_when_switched_off(hub, server, topic, settings):
    settings.PUSH_HUB_CONDITIONAL_FETCH = False
    server.replies["/topic"] = Topic()
    publish(hub, topic)
    publish(hub, topic)
    assert all("If-None-Match" not in r.headers for r in fetches(server))
    assert Ping.objects.latest("pk").reason == "same SHA-256 as the last content"


# The audience ------------------------------------------------------------------------------


def test_the_user_agent_tells_the_audience(hub, server, topic, settings):
    settings.PUSH_HUB_FETCH_AUDIENCE = True
    for n in range(2):
        subscribe(f"{server.url}/other{n}", topic)
    ended = subscribe(f"{server.url}/ended", topic)
    HubSubscription.objects.filter(pk=ended.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    subscribe(f"{server.url}/cb", server.url + "/elsewhere")
    server.replies["/topic"] = Topic()
    publish(hub, topic)
    assert fetches(server)[0].headers["User-Agent"] == f"{UA} (+{hub}; 3 subscribers)"


def test_the_audience_is_not_told_by_default(hub, server, topic):
    server.replies["/topic"] = Topic()
    publish(hub, topic)
    assert fetches(server)[0].headers["User-Agent"] == UA


def test_the_audience_costs_one_count(django_assert_num_queries):
    topic = "https://blog.example/feed"
    subscribe("https://reader.example/cb", topic)
    with django_assert_num_queries(1) as queries:
        agent = async_to_sync(fetching.user_agent)(topic, "https://hub.example/hub/")
    assert agent == f"{UA} (+https://hub.example/hub/; 1 subscribers)"
    assert "COUNT(" in queries.captured_queries[0]["sql"].upper()


# The validators themselves -----------------------------------------------------------------


def response(**headers):
    return http.Response("https://blog.example/", 200, http.CIMultiDict(headers), b"")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ETag": '"a"', "Last-Modified": DATE}, ('"a"', DATE)),
        ({"ETag": 'W/"weak"'}, ('W/"weak"', "")),
        ({"ETag": " \t", "Last-Modified": "not a date"}, ("", "")),
        ({"ETag": '"line\nbreak"'}, ("", "")),
        ({"Last-Modified": "x" * 80}, ("", "")),
    ],
)
def test_validators_of_a_response(headers, expected):
    validators = http.Validators.of(response(**headers))
    assert (validators.etag, validators.last_modified) == expected
    assert bool(validators) == any(expected)
