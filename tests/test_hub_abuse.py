"""The hub cannot be turned against others or made to work for free (issue 9).

Each test sends the attacker's request to the real hub endpoint and counts what the hub
stored and sent to the servers on 127.0.0.1 it was aimed at.
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from django_push.conf import conf
from django_push.hub.models import Content, Delivery, HubSubscription, Intent, Ping
from django_push.hub.params import topic_allowed
from django_push.hub.tasks import publish_task, sweep
from tests.hub_queue import MODE, hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import counts
from tests.servers import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]

HUB = "/hub/"


@pytest.fixture(autouse=True)
def own_hosts(settings):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]


def subscribe(topic, callback="http://127.0.0.1:9/cb", lease=3600):
    return HubSubscription.objects.create(
        topic=topic,
        callback=callback,
        lease_seconds=lease,
        expires_at=timezone.now() + datetime.timedelta(seconds=lease),
    )


def gets(server):
    return [r for r in server.requests if r.method == "GET"]


# Publish is free for anyone ----------------------------------------------------------------


def test_publish_with_more_urls_than_the_cap_is_refused_naming_it(client, server, settings):
    settings.PUSH_HUB_MAX_PUBLISH_URLS = 3
    urls = [f"{server.url}/t{i}" for i in range(4)]
    response = client.post(HUB, {"hub.mode": "publish", "hub.url": urls})
    assert response.status_code == 400
    assert "at most 3 hub.url values" in response.content.decode()
    assert not Ping.objects.exists()
    response = client.post(HUB, {"hub.mode": "publish", "hub.url": urls[:3]})
    assert response.status_code == 202


def test_publish_cap_defaults_to_100(client, server):
    urls = [f"{server.url}/t{i}" for i in range(101)]
    response = client.post(HUB, {"hub.mode": "publish", "hub.url": urls})
    assert response.status_code == 400
    assert "at most 100 hub.url values" in response.content.decode()
    assert not Ping.objects.exists()


def test_topic_without_subscriber_is_not_fetched(
    client, server, django_capture_on_commit_callbacks
):
    server.replies["/lonely"] = Reply(200, b"nobody reads this")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(HUB, {"hub.mode": "publish", "hub.url": server.url + "/lonely"})
    assert response.status_code == 202
    run_queued()
    assert server.requests == []
    assert not Content.objects.exists()
    assert not Ping.objects.exists()  # counted as skipped, not stored


@pytest.mark.django_db(transaction=True)
def test_publishes_of_unfollowed_topics_store_no_rows_over_http(live_server, server, settings):
    """Issue 16, low 9: 100 topics nobody follows, in one request and then again and again,
    are counted as skipped and leave the Ping table as it was."""
    import urllib.parse
    import urllib.request

    from tests.test_metrics import scrape, value

    settings.PUSH_METRICS = True
    settings.ALLOWED_HOSTS = ["*"]
    followed = server.url + "/followed"
    subscribe(followed)
    topics = [f"{server.url}/nobody/{n}" for n in range(99)] + [followed]
    body = urllib.parse.urlencode(
        [("hub.mode", "publish")] + [("hub.url", topic) for topic in topics]
    ).encode()
    skipped = "django_push_hub_publishes_total"
    before = value(scrape(live_server), skipped, outcome="skipped")
    for _ in range(5):
        with urllib.request.urlopen(live_server.url + HUB, body, timeout=10) as response:
            assert response.status == 202
    # Only the followed topic has rows: one per request at most (fewer when coalesced).
    assert set(Ping.objects.values_list("topic", flat=True)) == {followed}
    assert Ping.objects.count() <= 5
    after = value(scrape(live_server), skipped, outcome="skipped")
    assert after - before == 5 * 99


def test_subscriber_gone_before_the_fetch_means_no_fetch(client, server):
    topic = server.url + "/topic"
    subscription = subscribe(topic)
    assert client.post(HUB, {"hub.mode": "publish", "hub.url": topic}).status_code == 202
    subscription.delete()
    ping = Ping.objects.get()
    assert publish_task.call(ping.topic, ping.hub_url, ping.pk) is None
    assert server.requests == []
    ping.refresh_from_db()
    assert ping.status == Ping.Status.SKIPPED


def test_pings_of_a_topic_waiting_for_its_fetch_are_coalesced(client, server):
    topic = server.url + "/topic"
    server.replies["/topic"] = Reply(200, b"news", {"Content-Type": "text/plain"})
    subscribe(topic, server.url + "/cb")
    # on_commit never fires in this test: the first ping's fetch is still pending.
    for _ in range(5):
        assert client.post(HUB, {"hub.mode": "publish", "hub.url": topic}).status_code == 202
    ping = Ping.objects.get()
    publish_task.call(ping.topic, ping.hub_url, ping.pk)
    run_queued()
    assert [r.path for r in gets(server)] == ["/topic"]
    # Once that fetch has started, a new ping is needed: the topic may have changed since.
    assert client.post(HUB, {"hub.mode": "publish", "hub.url": topic}).status_code == 202
    assert Ping.objects.count() == 2


def test_ping_during_a_running_fetch_is_kept(client, server):
    topic = server.url + "/topic"
    subscribe(topic)
    client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
    Ping.objects.update(claimed_until=timezone.now() + datetime.timedelta(seconds=60))
    client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
    assert Ping.objects.count() == 2


def test_unchanged_content_is_not_delivered_again(client, server):
    topic = server.url + "/topic"
    server.replies["/topic"] = Reply(200, b"same", {"Content-Type": "text/plain"})
    subscribe(topic, server.url + "/cb")
    for _ in range(2):
        client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
        ping = Ping.objects.order_by("-pk").first()
        publish_task.call(ping.topic, ping.hub_url, ping.pk)
        run_queued()
    first, second = Ping.objects.order_by("pk")
    assert first.status == Ping.Status.FETCHED
    assert (second.status, second.content_id) == (Ping.Status.UNCHANGED, first.content_id)
    assert Content.objects.count() == 1
    assert [r.path for r in server.requests if r.method == "POST"] == ["/cb"]
    # A change is delivered again.
    server.replies["/topic"] = Reply(200, b"changed", {"Content-Type": "text/plain"})
    client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
    ping = Ping.objects.order_by("-pk").first()
    publish_task.call(ping.topic, ping.hub_url, ping.pk)
    run_queued()
    assert Ping.objects.get(pk=ping.pk).status == Ping.Status.FETCHED
    assert len([r for r in server.requests if r.method == "POST"]) == 2


# A temporary fetch failure is final --------------------------------------------------------


@pytest.mark.parametrize("failure", ["HTTP 503", "timeout", "connection refused"])
def test_transient_fetch_failure_is_retried_with_backoff(
    client, server, settings, unused_tcp_port, failure
):
    settings.PUSH_TIMEOUT = 0.5
    topic = server.url + "/topic"
    if failure == "connection refused":
        topic = f"http://127.0.0.1:{unused_tcp_port}/topic"
    elif failure == "timeout":
        server.replies["/topic"] = Reply(200, b"late", delay=1.5)
    else:
        server.replies["/topic"] = Reply(503)
    subscribe(topic, server.url + "/cb")
    client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
    ping = Ping.objects.get()
    publish_task.call(ping.topic, ping.hub_url, ping.pk)
    ping.refresh_from_db()
    assert ping.status == Ping.Status.PENDING
    assert ping.attempts == 1
    assert ping.reason
    assert ping.next_attempt_at > timezone.now()
    assert sweep()[1] == 0  # not due yet
    # Due: the sweeper hands it out again; this time the topic answers.
    Ping.objects.update(next_attempt_at=timezone.now())
    server.replies["/topic"] = Reply(200, b"back", {"Content-Type": "text/plain"})
    if failure == "connection refused":
        Ping.objects.update(topic=server.url + "/topic")
        HubSubscription.objects.update(topic=server.url + "/topic")
    assert sweep()[1] >= 1
    run_queued()
    ping.refresh_from_db()
    assert ping.status == Ping.Status.FETCHED
    assert counts(ping.content)["delivered"] == 1


def test_fetch_retries_stop_at_the_horizon(client, server, settings):
    settings.PUSH_HUB_RETRY_HORIZON = 1
    server.replies["/topic"] = Reply(503)
    topic = server.url + "/topic"
    subscribe(topic)
    client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
    ping = Ping.objects.get()
    publish_task.call(ping.topic, ping.hub_url, ping.pk)
    ping.refresh_from_db()
    assert (ping.status, ping.reason) == (Ping.Status.FAILED, "HTTP 503")


def test_refused_address_is_final(server, settings):
    # The guard refuses what "localhost" resolves to: asking again will not change that.
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = False
    topic = f"http://localhost:{server.port}/topic"
    subscribe(topic)
    ping = Ping.objects.create(topic=topic, hub_url="https://hub.example/hub/")
    publish_task.call(ping.topic, ping.hub_url, ping.pk)
    ping.refresh_from_db()
    assert (ping.status, ping.attempts) == (Ping.Status.FAILED, 1)
    assert server.requests == []


def test_client_error_is_final(client, server):
    server.replies["/topic"] = Reply(404)
    topic = server.url + "/topic"
    subscribe(topic)
    client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
    ping = Ping.objects.get()
    publish_task.call(ping.topic, ping.hub_url, ping.pk)
    ping.refresh_from_db()
    assert (ping.status, ping.attempts) == (Ping.Status.FAILED, 1)


# Amplification: verification cannot be aimed ----------------------------------------------


def test_subscribe_outside_the_policy_is_refused_at_once(
    client, server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            HUB,
            {
                "hub.mode": "subscribe",
                "hub.callback": server.url + "/victim",
                "hub.topic": "http://elsewhere.example/feed",
            },
        )
    run_queued()
    assert response.status_code == 400
    assert "not published through this hub" in response.content.decode()
    assert not Intent.objects.exists()
    assert server.requests == []


def test_unsubscribe_of_a_pair_not_held_sends_nothing(
    client, server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            HUB,
            {
                "hub.mode": "unsubscribe",
                "hub.callback": server.url + "/victim",
                "hub.topic": "http://testserver/feed",
            },
        )
    run_queued()
    assert response.status_code == 202
    assert not Intent.objects.exists()
    assert server.requests == []


def test_unsubscribe_of_a_held_pair_is_verified(client, server, django_capture_on_commit_callbacks):
    server.replies["/cb"] = lambda r: Reply(200, r.query["hub.challenge"][0].encode())
    subscribe("http://testserver/feed", server.url + "/cb")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            HUB,
            {
                "hub.mode": "unsubscribe",
                "hub.callback": server.url + "/cb",
                "hub.topic": "http://testserver/feed",
            },
        )
    run_queued()
    assert response.status_code == 202
    assert len(gets(server)) == 1
    assert not HubSubscription.objects.exists()


def subscribe_request(client, callback, n):
    return client.post(
        HUB,
        {"hub.mode": "subscribe", "hub.callback": callback, "hub.topic": f"http://testserver/{n}"},
    )


def test_pending_verifications_per_callback_host_are_capped(client, server, settings):
    settings.PUSH_HUB_MAX_PENDING_PER_HOST = 3
    for n in range(3):
        assert subscribe_request(client, f"{server.url}/cb{n}", n).status_code == 202
    response = subscribe_request(client, f"{server.url}/cb9", 9)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "pending verifications" in response.content.decode()
    assert Intent.objects.count() == 3
    # Another host is not held back by this one; a decided verification frees its place.
    assert subscribe_request(client, "http://localhost:9/cb", 1).status_code == 202
    Intent.objects.filter(callback=f"{server.url}/cb0").update(status=Intent.Status.FAILED)
    assert subscribe_request(client, f"{server.url}/cb9", 9).status_code == 202
    assert server.requests == []


def test_pending_verifications_are_capped_in_total(client, server, settings):
    settings.PUSH_HUB_MAX_PENDING = 2
    assert subscribe_request(client, f"{server.url}/a", 1).status_code == 202
    assert subscribe_request(client, "http://localhost:9/b", 2).status_code == 202
    response = subscribe_request(client, "http://127.0.0.2:9/c", 3)
    assert response.status_code == 429
    assert "Retry-After" in response
    assert Intent.objects.count() == 2


# Smaller record-keeping faults -------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 204])
def test_every_2xx_is_a_delivery(client, server, status):
    topic = server.url + "/topic"
    server.replies["/topic"] = Reply(200, b"news", {"Content-Type": "text/plain"})
    server.replies["/cb"] = Reply(status)
    subscribe(topic, server.url + "/cb")
    client.post(HUB, {"hub.mode": "publish", "hub.url": topic})
    ping = Ping.objects.get()
    publish_task.call(ping.topic, ping.hub_url, ping.pk)
    run_queued()
    assert counts(Content.objects.get()) == {"delivered": 1, "pending": 0, "failed": 0}
    assert not Delivery.objects.exists()  # no retry owed


def queued_fanouts():
    """Fan-out tasks waiting in the real queue the test runs on."""
    if MODE == "rq":
        import django_rq

        jobs = django_rq.get_queue("default").jobs
        return sum(1 for job in jobs if job.func_name.endswith("fanout_task"))
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path__endswith="fanout_task").count()


def test_sweeper_enqueues_one_task_per_batch_of_stale_work(settings):
    if MODE == "immediate":
        settings.PUSH_TASK_BACKEND = "queue"  # a real queue: the tasks wait there, unrun
    settings.PUSH_HUB_BATCH_SIZE = 2
    old = timezone.now() - datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS + 1)
    content = Content.objects.create(topic="http://testserver/f", body=b"x", hub_url="http://h/")
    for n in range(5):
        subscription = subscribe("http://testserver/f", f"http://127.0.0.1:9/{n}")
        Delivery.objects.create(content=content, subscription=subscription, next_attempt_at=old)
    assert sweep() == (0, 3)
    # The backlog outlives a claim: the next sweeps find the same work, already handed out.
    assert sweep() == (0, 0)
    assert sweep() == (0, 0)
    assert queued_fanouts() == 3


# Prefix rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "allowed"),
    [
        ("https://example.com/", True),
        ("https://example.com", True),
        ("https://example.com/feed?page=2", True),
        ("https://EXAMPLE.com/feed", True),
        ("https://example.com.evil.net/", False),
        ("https://example.com@evil.net/", False),
        ("https://example.com:8443/", False),
        ("http://example.com/", False),
    ],
)
def test_origin_prefix_matches_only_that_origin(settings, topic, allowed):
    settings.PUSH_HUB_TOPICS = ["https://example.com"]
    assert topic_allowed(topic) is allowed


@pytest.mark.parametrize(
    ("topic", "allowed"),
    [
        ("https://a.example/feeds", True),
        ("https://a.example/feeds/1", True),
        ("https://a.example/feeds?x=1", True),
        ("https://a.example/feedsevil", False),
        ("https://a.example/feeds.evil.net/", False),
    ],
)
def test_path_prefix_matches_on_segment_boundaries(settings, topic, allowed):
    settings.PUSH_HUB_TOPICS = ["https://a.example/feeds"]
    assert topic_allowed(topic) is allowed


def test_prefix_rule_over_the_endpoint(client, settings):
    settings.PUSH_HUB_TOPICS = ["http://testserver"]
    response = client.post(HUB, {"hub.mode": "publish", "hub.url": "http://testserver.evil.net/"})
    assert response.status_code == 400
    response = client.post(HUB, {"hub.mode": "publish", "hub.url": "http://testserver@evil.net/"})
    assert response.status_code == 400
    assert not Ping.objects.exists()


# The hub URL and the Host header -----------------------------------------------------------


def publish_with_host(client, server, host):
    topic = server.url + "/topic"
    subscribe(topic)
    return client.post(HUB, {"hub.mode": "publish", "hub.url": topic}, HTTP_HOST=host)


def test_hub_url_comes_from_a_host_listed_in_allowed_hosts(client, server, settings):
    settings.ALLOWED_HOSTS = ["hub.example.net", "127.0.0.1"]
    assert publish_with_host(client, server, "hub.example.net").status_code == 202
    assert Ping.objects.get().hub_url == "http://hub.example.net/hub/"


def test_hub_url_keeps_only_the_port_the_request_reached(client, server, settings):
    from django.contrib.sites.models import Site

    settings.ALLOWED_HOSTS = ["hub.example.net", "127.0.0.1"]
    Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"domain": "hub.example.net"})
    # The test client's request reaches port 80: a Host naming another port is the sender's.
    assert publish_with_host(client, server, "hub.example.net:8443").status_code == 202
    assert Ping.objects.get().hub_url == "http://hub.example.net/hub/"
    Ping.objects.all().delete()
    topic = server.url + "/topic"
    response = client.post(
        HUB, {"hub.mode": "publish", "hub.url": topic}, HTTP_HOST="hub.example.net:80"
    )
    assert response.status_code == 202
    assert Ping.objects.get().hub_url == "http://hub.example.net:80/hub/"


@pytest.mark.parametrize("host", ["evil.example", "a" * 2100, "x.hub.example.net"])
def test_hub_url_never_comes_from_a_wildcard_matched_host(client, server, settings, host):
    from django.contrib.sites.models import Site

    settings.ALLOWED_HOSTS = ["*", ".hub.example.net"]
    Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"domain": "hub.example.net"})
    response = publish_with_host(client, server, host)
    assert response.status_code == 202
    assert Ping.objects.get().hub_url == "http://hub.example.net/hub/"


def test_without_a_trustworthy_hub_url_publish_is_refused(client, server, settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "django.contrib.sites"]
    response = publish_with_host(client, server, "evil.example")
    assert response.status_code == 503
    assert "PUSH_HUB_URL" in response.content.decode()
    assert not Ping.objects.exists()


# Migration 0003 ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_fills_the_callback_host_of_pending_verifications():
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    call_command("migrate", "push_hub", "0002", verbosity=0)
    try:
        old_state = MigrationExecutor(connection).loader.project_state(
            ("push_hub", "0002_pings_and_claimed_intents")
        )
        OldIntent = old_state.apps.get_model("push_hub", "Intent")
        for status, callback in [
            ("pending", "https://CB.example:8443/x"),
            ("pending", "http://[::1/"),
            ("verified", "https://done.example/"),
        ]:
            OldIntent.objects.create(mode="subscribe", topic="t", callback=callback, status=status)
        call_command("migrate", "push_hub", verbosity=0)
        hosts = dict(Intent.objects.values_list("callback", "callback_host"))
        assert hosts == {
            "https://CB.example:8443/x": "cb.example",
            "http://[::1/": "",
            "https://done.example/": "",
        }
    finally:
        call_command("migrate", verbosity=0)
