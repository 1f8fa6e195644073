"""Fan-out, signatures, retries with back-off, 410, lease expiry and the sweeper (H-13 .. H-19)."""

from __future__ import annotations

import datetime
import io
import random
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_push import signatures
from django_push.hub import fanout, retry
from django_push.hub.breakers import HostBreaker
from django_push.hub.models import Content, Delivery, HubSubscription, Ping, Span
from django_push.hub.tasks import fanout_task, publish_task, sweep, sweep_task
from django_push.links import parse_links
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import counts, store, subscribe
from tests.servers import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]

HUB_URL = "https://hub.example/hub/"


def publish(server, body=b"hello", content_type="text/plain; charset=utf-8"):
    server.replies["/topic"] = Reply(200, body, {"Content-Type": content_type})
    content_id = publish_task.call(server.url + "/topic", HUB_URL)
    run_queued()  # the fan-out tasks, on a real queue (PUSH_TEST_TASKS=rq|db)
    return content_id


def posts(server, path):
    return [r for r in server.requests if r.path.split("?")[0] == path and r.method == "POST"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"plain text", "text/plain"),
        (b'{"a": 1}', "application/json"),
        (b"<feed/>", 'application/atom+xml; charset="utf-8"'),
    ],
)
def test_delivery_carries_content_type_link_and_no_signature(server, body, content_type):
    # H-14, H-15, H-16, H-19 (websub.rocks hub 100, 105, 106)
    topic = server.url + "/topic"
    subscribe(server.url + "/cb?token=1", topic)
    publish(server, body, content_type)
    [delivery] = posts(server, "/cb")
    assert delivery.path == "/cb?token=1"  # the exact callback, query string included
    assert delivery.body == body
    assert delivery.headers["Content-Type"] == content_type
    assert {(link["rel"], link["url"]) for link in parse_links(delivery.headers["Link"])} == {
        ("hub", HUB_URL),
        ("self", topic),
    }
    assert "X-Hub-Signature" not in delivery.headers
    assert counts(Content.objects.get()) == {"delivered": 1, "pending": 0, "failed": 0}
    assert not Delivery.objects.exists()  # a success writes no row of its own


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_signed_with_configured_algorithm(server, settings, algorithm):
    settings.PUSH_HUB_SIGNATURE_ALGORITHM = algorithm
    subscribe(server.url + "/cb", server.url + "/topic", secret="s3cret")
    publish(server, b"signed body")
    [delivery] = posts(server, "/cb")
    header = delivery.headers["X-Hub-Signature"]
    assert header.startswith(f"{algorithm}=")
    assert signatures.verify("s3cret", b"signed body", header)


def test_content_is_stored_once_for_many_subscribers(server, settings):
    settings.PUSH_HUB_BATCH_SIZE = 7
    topic = server.url + "/topic"
    for i in range(25):
        subscribe(f"{server.url}/cb{i}", topic)
    subscribe(server.url + "/other", server.url + "/other-topic")
    publish(server, b"x" * 1000)
    content = Content.objects.get()
    assert counts(content)["delivered"] == 25
    assert list(content.spans.order_by("first").values_list("delivered", flat=True)) == [
        7,
        7,
        7,
        4,
    ]
    assert content.finished_at is not None
    assert not Delivery.objects.exists()
    assert sorted(r.path for r in server.requests if r.method == "POST") == sorted(
        f"/cb{i}" for i in range(25)
    )


def test_failing_subscriber_gets_content_after_three_failures(server, settings):
    settings.PUSH_HUB_RETRY_BASE = 0.05
    answers = iter([500, 503, 302])  # 3xx counts as a failure too (H-17)

    def flaky(received):
        return Reply(next(answers, 204))

    server.replies["/cb"] = flaky
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    for _ in range(3):
        delivery = Delivery.objects.get()
        assert delivery.status == Delivery.Status.PENDING
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        time.sleep(max(wait, 0) + 0.01)
        sweep()  # re-enqueues the due retry (the immediate backend cannot defer)
        run_queued()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.attempts == 4
    assert len(posts(server, "/cb")) == 4
    sub.refresh_from_db()
    assert sub.failures == 0
    assert sub.last_delivered_at() == delivery.delivered_at  # by a retry


def test_retry_is_not_early(server, settings):
    settings.PUSH_HUB_RETRY_BASE = 60
    server.replies["/cb"] = Reply(500)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    sweep()
    run_queued()
    fanout_task.call()
    assert len(posts(server, "/cb")) == 1
    delivery = Delivery.objects.get()
    assert delivery.last_status == 500
    assert 29 <= (delivery.next_attempt_at - timezone.now()).total_seconds() <= 91


def test_gone_ends_the_subscription(server):
    server.replies["/cb"] = Reply(410)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    assert not HubSubscription.objects.exists()
    assert not Delivery.objects.exists()


def test_unreachable_subscriber_is_retried_then_given_up(server, settings, unused_tcp_port):
    settings.PUSH_HUB_RETRY_BASE = 10
    settings.PUSH_HUB_RETRY_HORIZON = 5
    subscribe(f"http://127.0.0.1:{unused_tcp_port}/cb", server.url + "/topic")
    publish(server)
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED  # the first retry would fall past the horizon
    assert delivery.last_error
    assert (
        HubSubscription.objects.get().failures == 1
    )  # still subscribed until its lease ends (H-18)


def test_subscriber_given_up_on_still_gets_the_next_publish(server, settings):
    # H-18: giving up on one delivery keeps the subscription active until its lease ends,
    # and the next update of the topic is tried (and delivered) again.
    settings.PUSH_HUB_RETRY_BASE = 10
    settings.PUSH_HUB_RETRY_HORIZON = 5
    server.replies["/cb"] = Reply(503)
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    first = publish(server, b"first")
    assert Delivery.objects.get(content_id=first).status == Delivery.Status.FAILED  # gave up
    sub.refresh_from_db()
    assert sub.failures == 1
    assert HubSubscription.objects.active().filter(pk=sub.pk).exists()

    server.replies["/cb"] = Reply(204)  # the subscriber answers again
    second = publish(server, b"second")
    assert [r.body for r in posts(server, "/cb")] == [b"first", b"second"]
    assert counts(Content.objects.get(pk=second))["delivered"] == 1
    assert Delivery.objects.get(content_id=first).status == Delivery.Status.FAILED
    sub.refresh_from_db()
    assert sub.failures == 0
    # The second content reached it in a range: no delivery row, no subscription row write.
    assert sub.last_delivered_at() == Span.objects.get(content_id=second).finished_at
    assert HubSubscription.objects.active().filter(pk=sub.pk).exists()


def test_expired_leases_get_nothing_and_are_cleaned_up(server):
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    HubSubscription.objects.filter(pk=sub.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    publish(server)
    assert posts(server, "/cb") == []
    assert sweep() == (1, 0)
    assert not HubSubscription.objects.exists()


def test_lease_ending_after_publish_stops_pending_deliveries(server):
    # H-11: the lease ends between storing the content and sending it.
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    store(sub.topic, b"x", "text/plain", HUB_URL)
    HubSubscription.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert fanout.fanout() == (0, 0)
    assert posts(server, "/cb") == []
    assert sweep() == (1, 0)
    assert not Delivery.objects.exists()


def test_outcomes_of_deliveries_gone_or_reclaimed_meanwhile_are_dropped(server):
    # The same subscriber owes two contents in one batch of retries: 410 for the first
    # removes the subscription with both deliveries; 500 for the second finds nothing left.
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    other = subscribe(server.url + "/other", server.url + "/topic")
    for body in [b"1", b"2"]:
        content = store(sub.topic, body, "text/plain", HUB_URL)
        # Feed diffs: the second does not supersede the first (each holds other entries).
        Content.objects.filter(pk=content.pk).update(feed_diff=body)
        for owed in (sub, other):
            Delivery.objects.create(content=content, subscription=owed)
    batch = fanout.claim_retries(10)
    mine = [job for job in batch.jobs if job.subscription_id == sub.pk]
    [theirs, _] = [job for job in batch.jobs if job.subscription_id == other.pk]
    Delivery.objects.filter(pk=theirs.pk).update(claim="another-worker")
    outcomes = [
        fanout.Outcome(mine[0], 410),
        fanout.Outcome(mine[1], 500),
        fanout.Outcome(theirs, None, "timeout"),
    ]
    fanout.record(batch, outcomes)
    assert list(HubSubscription.objects.values_list("pk", flat=True)) == [other.pk]
    reclaimed = Delivery.objects.get(pk=theirs.pk)
    assert (reclaimed.attempts, reclaimed.claim) == (0, "another-worker")  # left to its owner


def test_expired_claims_are_swept(server, settings):
    # A worker claimed a range and died: after the claim expires the sweeper re-enqueues it.
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    content = store(sub.topic, b"x", "text/plain", HUB_URL)
    [claimed] = fanout.claim(10, content.pk).jobs
    assert claimed.subscription_id == sub.pk
    assert fanout.claim(10, content.pk).jobs == []  # claimed: nobody else takes it
    Span.objects.update(claimed_until=timezone.now() - datetime.timedelta(seconds=1))
    out = io.StringIO()
    call_command("hub_sweep", stdout=out)
    run_queued()
    assert "1 stale range(s) and 0 stale delivery(ies) found." in out.getvalue()
    assert [r.body for r in posts(server, "/cb")] == [b"x"]
    assert counts(content) == {"delivered": 1, "pending": 0, "failed": 0}


def test_sweep_task_and_stats_command(server, settings):
    subscribe(server.url + "/cb", server.url + "/topic")
    assert sweep_task.call(False) == [0, 0]
    publish(server)
    out = io.StringIO()
    call_command("hub_stats", stdout=out)
    text = out.getvalue()
    assert "active subscriptions   1" in text
    assert "deliveries delivered   1" in text


def test_failed_fetch_stores_nothing(server):
    server.replies["/topic"] = Reply(404)
    assert publish_task.call(server.url + "/topic", HUB_URL) is None
    assert not Content.objects.exists()


def test_fetch_respects_size_cap(server, settings):
    settings.PUSH_HUB_MAX_CONTENT_SIZE = 10
    subscribe(server.url + "/cb", server.url + "/topic")
    assert publish(server, b"x" * 11) is None
    assert not Content.objects.exists()


def test_backoff_schedule():
    rng = random.Random(1).random
    delays = [retry.backoff(n, 30, rng) for n in range(1, 6)]
    for n, delay in enumerate(delays, start=1):
        assert 15 * 2 ** (n - 1) <= delay < 45 * 2 ** (n - 1)
    assert retry.backoff(3, 10, lambda: 0.5) == 40
    start = timezone.now()
    assert not retry.gives_up(start, start + datetime.timedelta(seconds=10), 10)
    assert retry.gives_up(start, start + datetime.timedelta(seconds=11), 10)


def test_admin_pages_and_actions(admin_client, server):
    from django.urls import reverse

    server.replies["/cb"] = Reply(500)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    for name in ["hubsubscription", "intent", "ping", "content", "delivery"]:
        assert admin_client.get(reverse(f"admin:push_hub_{name}_changelist")).status_code == 200
    server.replies["/cb"] = Reply(204)
    delivery = Delivery.objects.get()
    response = admin_client.post(
        reverse("admin:push_hub_delivery_changelist"),
        {"action": "retry_now", "_selected_action": [delivery.pk]},
        follow=True,
    )
    run_queued()
    assert b"queued again" in response.content
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED
    admin_client.post(
        reverse("admin:push_hub_delivery_changelist"),
        {"action": "drop", "_selected_action": [delivery.pk]},
    )
    assert not Delivery.objects.exists()


def test_old_finished_records_are_pruned(server, settings):
    from django_push.hub.models import Intent

    settings.PUSH_HUB_RETENTION = 60
    server.replies["/cb"] = Reply(204)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    old = timezone.now() - datetime.timedelta(seconds=120)
    finished = Content.objects.get()
    pending = store(finished.topic, b"y", "text/plain", HUB_URL)  # not delivered yet
    Content.objects.update(fetched_at=old)
    Intent.objects.create(
        mode="subscribe", topic="http://t/", callback="http://c/", status="failed"
    )
    in_hand = timezone.now() + datetime.timedelta(seconds=60)  # claimed by a live worker
    Intent.objects.create(
        mode="subscribe", topic="http://t/", callback="http://c/", claimed_until=in_hand
    )
    Intent.objects.update(created_at=old)
    Ping.objects.create(topic="http://t/", hub_url=HUB_URL, status="fetched")
    Ping.objects.create(topic="http://t/", hub_url=HUB_URL, claimed_until=in_hand)
    Ping.objects.update(received_at=old)
    # Circuit breakers: a closed one idle since the cutoff goes; an open one, and a closed
    # one that counted since, stay.
    HostBreaker.objects.create(host="idle.example:443", window_started_at=old)
    HostBreaker.objects.create(host="down.example:443", window_started_at=old, open_until=old)
    HostBreaker.objects.create(host="busy.example:443", failed=3)
    out = io.StringIO()
    call_command("hub_sweep", stdout=out)
    pruned = "1 old content(s), 2 old request(s) and 1 idle host breaker(s) pruned"
    assert pruned in out.getvalue()
    assert list(Content.objects.values_list("pk", flat=True)) == [pending.pk]
    assert Intent.objects.get().status == "pending"
    assert Ping.objects.get().status == "pending"
    hosts = HostBreaker.objects.order_by("host").values_list("host", flat=True)
    assert list(hosts) == ["busy.example:443", "down.example:443"]
