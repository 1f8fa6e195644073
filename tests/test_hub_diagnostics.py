"""Self-serve diagnostics (issue 18, part 4): a subscription's page for whoever holds its
secret, a topic's page for topics this hub serves, and nothing for a stranger.

Pages are read over real HTTP from the live server; deliveries go to real callback servers
on 127.0.0.1. The queries a request costs are counted in the server's thread.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_push import diagnostics
from django_push.hub.models import Content, HubSubscription, Ping
from django_push.hub.tasks import publish_task
from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription
from tests.conftest import wait_until
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import HUB, subscribe
from tests.servers import Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_queue")]
SECRET = "s3cret-of-the-subscriber"


def fetch(url):
    """(status, headers, body) of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def page_of(live_server, subscription, secret=SECRET):
    url = diagnostics.page_url(
        f"{live_server.url}/hub/", subscription.topic, subscription.callback, secret
    )
    assert url is not None
    return url


def report(url):
    status, headers, body = fetch(url + "?format=json")
    assert status == 200, body
    assert headers["Cache-Control"] == "private, no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    return json.loads(body)


@contextlib.contextmanager
def server_queries():
    """Collects the SQL of each request the live server finishes meanwhile, counted in the
    thread that served it; ``ask(url)`` fetches ``url`` and waits for its count."""
    per_request: list[list[str]] = []
    contexts: dict[int, CaptureQueriesContext] = {}

    def started(**kwargs):
        # Django's own receiver empties the log at each request, maybe after this one.
        connections["default"].queries_log.clear()
        context = CaptureQueriesContext(connections["default"])
        context.__enter__()
        contexts[threading.get_ident()] = context

    def finished(**kwargs):
        context = contexts.pop(threading.get_ident(), None)
        if context is not None:
            context.__exit__(None, None, None)
            per_request.append([query["sql"] for query in context.captured_queries])

    def ask(url):
        # The server finishes a request after the client has its answer: wait, so that
        # two requests never share a count.
        before = len(per_request)
        answer = fetch(url)
        wait_until(lambda: len(per_request) > before, message="the request to finish")
        return answer

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        yield per_request, ask
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)


def uses_index(queryset):
    """Whether the database answers ``queryset`` from an index (PostgreSQL is told to avoid
    sequential scans, which it prefers on a table this small)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET enable_seqscan = off")
        plan = queryset.explain()
        if connection.vendor == "postgresql":
            cursor.execute("RESET enable_seqscan")
    return "diagnostics_key" in plan and ("USING INDEX" in plan or "Index" in plan)


def ping_our_hub(live_server, settings, topic):
    """A publish request to the live hub for ``topic``; returns once its fetch is decided
    or waits for a retry."""
    settings.PUSH_HUB_URL = f"{live_server.url}/hub/"
    data = urlencode({"hub.mode": "publish", "hub.url": topic}).encode()
    with urllib.request.urlopen(f"{live_server.url}/hub/", data=data) as response:
        assert response.status == 202
    run_queued()
    wait_until(
        lambda: Ping.objects.filter(topic=topic).exclude(status="pending", attempts=0).exists(),
        message="the fetch",
    )


def publish(server, body=b"news"):
    server.replies["/topic"] = Reply(200, body, {"Content-Type": "text/plain"})
    content_id = publish_task.call(server.url + "/topic", HUB)
    run_queued()
    return content_id


# The subscription's page ---------------------------------------------------------------


def test_our_subscriber_reads_its_page_at_our_hub(site):
    topic = f"{site}/feed/"
    subscription = Subscription.objects.subscribe(topic, lease_seconds=3600)
    hub_side = wait_until(HubSubscription.objects.first, message="hub-side activation")
    subscription.refresh_from_db()
    assert subscription.secret
    assert ping_hub(topic).status == 202
    wait_until(
        lambda: report(subscription.diagnostics_url())["last_delivered_at"],
        message="the delivery to show on the page",
    )

    url = subscription.diagnostics_url()
    assert url.startswith(f"{site}/hub/diagnostics/")
    page = report(url)
    assert page["topic"] == topic
    assert page["callback"] == subscription.callback_url
    assert page["state"] == "active"
    assert page["lease_seconds"] == hub_side.lease_seconds
    assert datetime.datetime.fromisoformat(page["lease_ends_at"]) == hub_side.expires_at
    content = Content.objects.get()
    [line] = page["deliveries"]
    assert (line["content"], line["status"]) == (content.pk, "delivered")
    delivered = datetime.datetime.fromisoformat(line["delivered_at"])
    assert delivered == datetime.datetime.fromisoformat(page["last_delivered_at"])
    assert line["latency"] == (delivered - content.fetched_at).total_seconds() >= 0
    assert page["failures"] == []
    # The HTML page says the same, and keeps its URL out of Referer headers.
    status, headers, body = fetch(url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Referrer-Policy"] == "no-referrer"
    assert topic.encode() in body
    assert b'<td class="status">delivered</td>' in body


def test_failures_show_their_status_attempts_and_next_retry(live_server, server):
    server.default = Reply(503)
    topic = server.url + "/topic"
    ok = subscribe(server.url + "/ok", topic, secret=SECRET)
    failing = subscribe(server.url + "/down", topic, secret=SECRET)
    server.replies["/ok"] = Reply(204)
    first = publish(server, b"one")
    second = publish(server, b"two")

    page = report(page_of(live_server, failing))
    assert page["last_delivered_at"] is None
    assert page["failed_attempts"] == 2
    newest, older = page["deliveries"]
    assert (newest["content"], newest["status"], newest["attempts"]) == (second, "retrying", 1)
    assert newest["last_status"] == 503
    assert datetime.datetime.fromisoformat(newest["next_attempt_at"]) > timezone.now()
    # The retry of the first content was dropped: the second one supersedes it.
    assert (older["content"], older["status"]) == (first, "delivered or superseded")
    [failure] = page["failures"]
    assert (failure["content"], failure["state"], failure["attempts"]) == (second, "retrying", 1)
    assert failure["last_status"] == 503
    assert "503" in failure["last_error"]

    # The healthy subscription of the same topic sees its own deliveries only.
    page = report(page_of(live_server, ok))
    statuses = [line["status"] for line in page["deliveries"]]
    assert statuses == ["delivered", "delivered or superseded"]
    assert page["failures"] == []


def test_a_subscription_made_after_a_content_does_not_list_it(live_server, server):
    topic = server.url + "/topic"
    subscribe(server.url + "/first", topic, secret=SECRET)
    publish(server, b"one")
    later = subscribe(server.url + "/later", topic, secret=SECRET)
    page = report(page_of(live_server, later))
    assert page["deliveries"] == []
    assert page["last_delivered_at"] is None


def test_an_expired_subscription_says_so(live_server, server):
    subscription = subscribe(server.url + "/cb", server.url + "/topic", secret=SECRET)
    HubSubscription.objects.filter(pk=subscription.pk).update(expires_at=timezone.now())
    assert report(page_of(live_server, subscription))["state"] == "expired"


# A stranger learns nothing ------------------------------------------------------------


def test_forged_and_guessed_urls_get_the_same_404_for_one_indexed_query(live_server, server):
    topic = server.url + "/topic"
    subscription = subscribe(server.url + "/cb", topic, secret=SECRET)
    secretless = subscribe(server.url + "/plain", topic)
    genuine = page_of(live_server, subscription)
    key = diagnostics.lookup_key(topic, subscription.callback)
    base = f"{live_server.url}/hub/diagnostics/"
    forged = {
        "wrong secret": page_of(live_server, subscription, secret="guess"),
        "right key, proof of zeros": f"{base}{key}{'0' * 32}/",
        "unknown key": f"{base}{'ab' * 32}/",
        "other pair's key": f"{base}{diagnostics.lookup_key(topic, 'x')}{genuine[-33:-1]}/",
        "no secret at the hub": f"{base}{diagnostics.token(topic, secretless.callback, '')}/",
    }
    with server_queries() as (queries, ask):
        answers = {name: ask(url) for name, url in forged.items()}
    for name, (status, _headers, body) in answers.items():
        assert (status, body) == (404, b"No diagnostics here"), name
    assert len(queries) == len(forged)
    for sql in queries:
        assert len(sql) == 1, queries
        assert "diagnostics_key" in sql[0]
    # The query is served by the index on the lookup key.
    assert uses_index(HubSubscription.objects.filter(diagnostics_key=key))
    # And the genuine URL still works.
    assert fetch(genuine)[0] == 200


def test_malformed_tokens_get_404_without_a_query(live_server):
    base = f"{live_server.url}/hub/diagnostics/"
    with server_queries() as (queries, ask):
        for token in ["x", "AB" * 32, "ab" * 31, "ab" * 33, "g" * 64]:
            assert ask(f"{base}{token}/")[:1] == (404,)
    assert queries == [[]] * 5


def test_switched_off_the_genuine_url_gets_404(live_server, server, settings):
    subscription = subscribe(server.url + "/cb", server.url + "/topic", secret=SECRET)
    url = page_of(live_server, subscription)
    assert fetch(url)[0] == 200
    settings.PUSH_HUB_DIAGNOSTICS = False
    assert fetch(url)[:1] == (404,)


def test_only_get_and_head(live_server, server):
    subscription = subscribe(server.url + "/cb", server.url + "/topic", secret=SECRET)
    request = urllib.request.Request(page_of(live_server, subscription), data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 405


def test_a_renewal_with_a_new_secret_moves_the_page(live_server, server):
    subscription = subscribe(server.url + "/cb", server.url + "/topic", secret=SECRET)
    old = page_of(live_server, subscription)
    from django_push.hub.models import Grant

    HubSubscription.objects.activate(
        [Grant(subscription.topic, subscription.callback, "a-new-secret", 3600)]
    )
    assert fetch(old)[0] == 404
    assert fetch(page_of(live_server, subscription, secret="a-new-secret"))[0] == 200


# The topic's page -----------------------------------------------------------------------


def topic_url(live_server, topic, **extra):
    return f"{live_server.url}/hub/diagnostics/topic/?" + urlencode({"hub.topic": topic, **extra})


def test_topic_page_is_off_by_default(live_server, server):
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    publish(server)
    assert fetch(topic_url(live_server, topic))[:1] == (404,)


def test_topic_page_shows_last_fetch_outcome_and_subscribers(live_server, server, settings):
    settings.PUSH_HUB_TOPIC_DIAGNOSTICS = True
    topic = server.url + "/topic"
    subscribe(server.url + "/a", topic)
    subscribe(server.url + "/b", topic)
    ended = subscribe(server.url + "/c", topic)
    HubSubscription.objects.filter(pk=ended.pk).update(expires_at=timezone.now())
    server.replies["/topic"] = Reply(200, b"hello", {"Content-Type": "text/plain"})
    ping_our_hub(live_server, settings, topic)
    content = Content.objects.get()

    status, headers, body = fetch(topic_url(live_server, topic, format="json"))
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    page = json.loads(body)
    ping = Ping.objects.get()
    assert ping.status == Ping.Status.FETCHED
    assert page["topic"] == topic
    assert page["subscribers"] == 2
    assert page["last_fetch_outcome"] == "fetched"
    assert datetime.datetime.fromisoformat(page["last_fetch_at"]) == ping.finished_at
    assert page["sha256"] == content.sha256
    assert page["etag"] == (getattr(content, "etag", None) or None)

    # A failed fetch is the outcome shown next.
    server.replies["/topic"] = Reply(500)
    Ping.objects.all().delete()  # the failed fetch is then the only one
    ping_our_hub(live_server, settings, topic)
    page = json.loads(fetch(topic_url(live_server, topic, format="json"))[2])
    assert page["last_fetch_outcome"] in {"fetch failed", "pending"}
    assert "500" in page["last_fetch_reason"]
    status, _headers, body = fetch(topic_url(live_server, topic))
    assert status == 200
    assert b'<dd id="subscribers">2</dd>' in body


def test_unknown_and_foreign_topics_get_404(live_server, server, settings):
    settings.PUSH_HUB_TOPIC_DIAGNOSTICS = True
    topic, foreign = server.url + "/topic", server.url + "/foreign"
    subscribe(server.url + "/cb", topic)
    subscribe(server.url + "/cb", foreign)
    publish(server)
    server.replies["/foreign"] = Reply(200, b"x", {"Content-Type": "text/plain"})
    publish_task.call(foreign, HUB)
    run_queued()
    assert fetch(topic_url(live_server, foreign))[0] == 200

    # Not served here: outside PUSH_HUB_TOPICS, whatever the hub holds of it.
    settings.PUSH_HUB_TOPICS = [topic]
    with server_queries() as (queries, ask):
        assert ask(topic_url(live_server, foreign))[:1] == (404,)
    assert queries == [[]]
    assert fetch(topic_url(live_server, topic))[0] == 200
    # Unknown: served here, but never fetched.
    settings.PUSH_HUB_TOPICS = [server.url]
    assert fetch(topic_url(live_server, server.url + "/never"))[:1] == (404,)


@pytest.mark.parametrize(
    ("query", "reason"),
    [({}, b"hub.topic is required"), ({"hub.topic": "http://[::1"}, b"hub.topic is not a URL")],
)
def test_topic_page_bad_input_gets_400_with_a_reason(live_server, settings, query, reason):
    settings.PUSH_HUB_TOPIC_DIAGNOSTICS = True
    url = f"{live_server.url}/hub/diagnostics/topic/?{urlencode(query)}"
    status, _headers, body = fetch(url)
    assert (status, body) == (400, reason)


def test_topic_too_long_gets_400(live_server, settings):
    settings.PUSH_HUB_TOPIC_DIAGNOSTICS = True
    status, _headers, body = fetch(topic_url(live_server, "http://a.example/" + "x" * 3000))
    assert (status, body) == (400, b"hub.topic is too long")


# The subscriber's side ------------------------------------------------------------------


def test_subscriber_computes_the_url_only_with_a_secret(db):
    subscription = Subscription.objects.create(
        hub="https://hub.example/hub", topic="https://a.example/feed", secret=SECRET
    )
    url = subscription.diagnostics_url()
    expected = diagnostics.token(subscription.topic, subscription.callback_url, SECRET)
    assert url == f"https://hub.example/hub/diagnostics/{expected}/"
    subscription.secret = ""
    assert subscription.diagnostics_url() is None
    assert (
        Subscription(hub="https://h/", topic="https://t/", secret=SECRET).diagnostics_url() is None
    )


def test_the_documented_recipe_finds_the_page(live_server, server):
    from docs.examples.diagnostics_example import diagnostics_page

    subscription = subscribe(server.url + "/cb?x=1", server.url + "/topic", secret=SECRET)
    url = diagnostics_page(
        f"{live_server.url}/hub", subscription.topic, subscription.callback, SECRET
    )
    assert url == page_of(live_server, subscription)
    assert fetch(url)[0] == 200


def test_admin_links_to_the_page(admin_client):
    subscription = Subscription.objects.create(
        hub="https://hub.example/hub/", topic="https://a.example/feed", secret=SECRET
    )
    page = admin_client.get(f"/admin/subscriber/subscription/{subscription.pk}/change/")
    assert page.status_code == 200
    assert f'href="{subscription.diagnostics_url()}"'.encode() in page.content
