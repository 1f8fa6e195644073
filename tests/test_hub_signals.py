"""The hub's signals: each sent once committed, where it should and nowhere else."""

from __future__ import annotations

import datetime
import logging
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_push.hub import signals, upkeep
from django_push.hub.models import Content, Delivery, HubSubscription, Intent
from django_push.hub.tasks import publish_task, sweep, verify_intent_task
from django_push.tasks import enqueue
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import counts, store
from tests.servers import Reply
from tests.test_hub_delivery import HUB_URL, posts, publish, subscribe
from tests.test_hub_verification import echo, intent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]

NAMES = ["subscription_activated", "subscription_removed", "content_published", "delivery_failed"]


class Sent(list):
    """What the hub's signals sent, as ``(name, sender, kwargs)``."""

    def named(self, name):
        return [kwargs for sent, _, kwargs in self if sent == name]


@pytest.fixture
def sent():
    """Record every hub signal; a removed subscription is noted as still stored or not."""
    calls = Sent()

    def receiver_for(name):
        def receiver(sender, signal, **kwargs):
            if name == "subscription_removed":
                pk = kwargs["subscription"].pk
                kwargs["still_stored"] = HubSubscription.objects.filter(pk=pk).exists()
            calls.append((name, sender, kwargs))

        return receiver

    for name in NAMES:
        getattr(signals, name).connect(receiver_for(name), weak=False, dispatch_uid=f"t-{name}")
    yield calls
    for name in NAMES:
        getattr(signals, name).disconnect(dispatch_uid=f"t-{name}")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs what the hub left for after the commit (the test's own
    transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def raising():
    """Connect a receiver that raises to every hub signal."""

    def boom(sender, **kwargs):
        raise RuntimeError("receiver broke")

    for name in NAMES:
        getattr(signals, name).connect(boom, weak=False, dispatch_uid=f"boom-{name}")
    yield
    for name in NAMES:
        getattr(signals, name).disconnect(dispatch_uid=f"boom-{name}")


def run_verification(committed, pending):
    with committed():
        enqueue(verify_intent_task, pending.pk)  # runs at once with the immediate backend
        run_queued()  # on a real queue (PUSH_TEST_TASKS=rq|db)
    pending.refresh_from_db()
    return pending.status


def expire(sub):
    HubSubscription.objects.filter(pk=sub.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )


# subscription_activated


def test_activated_on_subscribe_then_on_renewal(server, committed, sent):
    server.replies["/cb"] = echo
    assert run_verification(committed, intent(server, secret="a")) == Intent.Status.VERIFIED
    [(name, sender, first)] = sent
    assert (name, sender) == ("subscription_activated", HubSubscription)
    assert first["created"] is True
    assert first["subscription"].pk == HubSubscription.objects.get().pk
    assert first["subscription"].secret == "a"

    sent.clear()
    assert run_verification(committed, intent(server, secret="b")) == Intent.Status.VERIFIED
    [renewed] = sent.named("subscription_activated")
    assert renewed["created"] is False
    assert renewed["subscription"].pk == first["subscription"].pk
    assert renewed["subscription"].secret == "b"
    assert len(sent) == 1


@pytest.mark.parametrize(
    "reply",
    [Reply(404), Reply(200, b"not the challenge")],
)
def test_nothing_on_a_failed_verification(server, committed, sent, reply):
    server.replies["/cb"] = reply
    existing = subscribe(server.url + "/cb?id=7", "http://testserver/feed")
    assert run_verification(committed, intent(server)) == Intent.Status.FAILED
    assert run_verification(committed, intent(server, "unsubscribe")) == Intent.Status.FAILED
    assert sent == []
    assert HubSubscription.objects.get().pk == existing.pk  # left as it was


def test_nothing_on_a_denied_topic(server, committed, sent, settings):
    settings.PUSH_HUB_TOPICS = ["https://elsewhere.example/"]
    server.replies["/cb"] = Reply(200)
    assert run_verification(committed, intent(server)) == Intent.Status.DENIED
    assert sent == []
    assert not HubSubscription.objects.exists()


# subscription_removed


def test_removed_on_unsubscribe(server, committed, sent):
    server.replies["/cb"] = echo
    sub = subscribe(server.url + "/cb?id=7", "http://testserver/feed")
    other = subscribe(server.url + "/cb?id=8", "http://testserver/feed")
    assert run_verification(committed, intent(server, "unsubscribe")) == Intent.Status.VERIFIED
    [(name, sender, removed)] = sent
    assert (name, sender) == ("subscription_removed", HubSubscription)
    assert removed["reason"] == "unsubscribed"
    assert removed["subscription"].pk == sub.pk  # the pk is kept for the receiver
    assert removed["subscription"].callback == sub.callback
    assert removed["still_stored"] is False  # sent once the deletion is committed
    assert list(HubSubscription.objects.values_list("pk", flat=True)) == [other.pk]


def test_nothing_removed_on_unsubscribe_of_an_unknown_subscription(server, committed, sent):
    server.replies["/cb"] = echo
    assert run_verification(committed, intent(server, "unsubscribe")) == Intent.Status.VERIFIED
    assert sent == []


def test_removed_on_gone_and_no_delivery_failed(server, committed, sent):
    server.replies["/gone"] = Reply(410)
    topic = server.url + "/topic"
    gone = subscribe(server.url + "/gone", topic)
    kept = subscribe(server.url + "/cb", topic)
    with committed():
        content_id = publish(server)
    [removed] = sent.named("subscription_removed")
    assert (removed["subscription"].pk, removed["reason"]) == (gone.pk, "gone")
    assert removed["still_stored"] is False
    assert sent.named("delivery_failed") == []  # the subscription ended; nothing given up
    [published] = sent.named("content_published")
    assert (published["content"].pk, published["deliveries"]) == (content_id, 2)
    assert len(sent) == 2  # no signal for the successful delivery
    assert list(HubSubscription.objects.values_list("pk", flat=True)) == [kept.pk]


def test_removed_once_per_expired_row_by_the_sweeper(server, committed, sent):
    topic = server.url + "/topic"
    old = [subscribe(f"{server.url}/old{i}", topic) for i in range(3)]
    active = subscribe(server.url + "/active", topic)
    for sub in old:
        expire(sub)
    with committed():
        assert sweep() == (3, 0)
        assert sent == []  # not before the commit
    removed = sent.named("subscription_removed")
    assert len(sent) == len(removed) == 3
    assert sorted(kwargs["subscription"].pk for kwargs in removed) == [sub.pk for sub in old]
    assert {kwargs["reason"] for kwargs in removed} == {"expired"}
    assert not any(kwargs["still_stored"] for kwargs in removed)
    assert list(HubSubscription.objects.values_list("pk", flat=True)) == [active.pk]
    sent.clear()
    with committed():
        assert sweep() == (0, 0)
    assert sent == []


def expire_and_count_queries(server, committed):
    for i in range(3):
        expire(subscribe(f"{server.url}/old{i}", server.url + "/topic"))
    with CaptureQueriesContext(connection) as queries, committed():
        assert upkeep.expire_leases() == 3
    assert not HubSubscription.objects.exists()
    return len(queries.captured_queries)


def test_expired_rows_are_loaded_only_for_receivers(server, committed):
    assert not signals.subscription_removed.has_listeners(HubSubscription)
    bare = expire_and_count_queries(server, committed)

    def receiver(sender, **kwargs):
        pass

    signals.subscription_removed.connect(receiver)
    try:
        assert expire_and_count_queries(server, committed) == bare + 1  # one SELECT more
    finally:
        signals.subscription_removed.disconnect(receiver)


# content_published


def test_published_once_per_fetch_with_the_deliveries_created(server, committed, sent, settings):
    settings.PUSH_HUB_BATCH_SIZE = 2
    topic = server.url + "/topic"
    for i in range(5):
        subscribe(f"{server.url}/cb{i}", topic)
    expire(subscribe(server.url + "/expired", topic))
    subscribe(server.url + "/other", server.url + "/other-topic")
    with committed():
        content_id = publish(server, b"news")
    [(name, sender, published)] = sent
    assert (name, sender) == ("content_published", Content)
    assert published["content"].pk == content_id
    assert bytes(published["content"].body) == b"news"
    assert published["deliveries"] == 5  # active subscriptions of this topic only
    assert counts(published["content"])["delivered"] == 5
    assert len(posts(server, "/cb0")) == 1


def test_nothing_published_with_no_subscribers(server, committed, sent):
    with committed():
        assert publish(server) is None  # issue 9: not even fetched
    assert sent.named("content_published") == []
    assert server.requests == []


@pytest.mark.parametrize("reply", [Reply(404), Reply(500), Reply(200, b"x" * 11)])
def test_not_published_when_the_fetch_fails(server, committed, sent, settings, reply):
    settings.PUSH_HUB_MAX_CONTENT_SIZE = 10
    subscribe(server.url + "/cb", server.url + "/topic")
    server.replies["/topic"] = reply
    with committed():
        assert publish_task.call(server.url + "/topic", HUB_URL) is None
        run_queued()
    assert sent == []
    assert not Content.objects.exists()


def test_not_published_when_the_store_is_rolled_back(server, committed, sent):
    subscribe(server.url + "/cb", server.url + "/topic")
    with committed(), pytest.raises(RuntimeError), transaction.atomic():
        store(server.url + "/topic", b"x", "text/plain", HUB_URL)
        raise RuntimeError
    assert sent == []
    assert not Content.objects.exists()


# delivery_failed


def test_delivery_failed_only_when_the_hub_gives_up(server, committed, sent, settings):
    settings.PUSH_HUB_RETRY_BASE = 0.05
    settings.PUSH_HUB_RETRY_HORIZON = 3600
    server.replies["/cb"] = Reply(503)
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    with committed():
        content_id = publish(server)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 1)
    assert sent.named("delivery_failed") == []  # a retry is scheduled

    settings.PUSH_HUB_RETRY_HORIZON = 0  # the next failure is the last
    time.sleep(max((delivery.next_attempt_at - timezone.now()).total_seconds(), 0) + 0.01)
    with committed():
        sweep()  # re-enqueues the due retry
        run_queued()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    [failed] = sent.named("delivery_failed")
    assert failed == {
        "subscription_id": sub.pk,
        "content_id": content_id,
        "attempts": 2,
        "reason": "HTTP 503",
    }
    assert [s[1] for s in sent if s[0] == "delivery_failed"] == [Delivery]
    assert len(posts(server, "/cb")) == 2


def test_delivery_failed_for_an_unreachable_callback(
    server, committed, sent, settings, unused_tcp_port
):
    settings.PUSH_HUB_RETRY_BASE = 10
    settings.PUSH_HUB_RETRY_HORIZON = 5  # the first retry would fall past the horizon
    sub = subscribe(f"http://127.0.0.1:{unused_tcp_port}/cb", server.url + "/topic")
    with committed():
        content_id = publish(server)
    [failed] = sent.named("delivery_failed")
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert failed["reason"] == delivery.last_error != ""
    assert (failed["subscription_id"], failed["content_id"], failed["attempts"]) == (
        sub.pk,
        content_id,
        1,
    )
    assert sent.named("subscription_removed") == []  # still subscribed (H-18)


def test_nothing_failed_when_delivered(server, committed, sent):
    subscribe(server.url + "/cb", server.url + "/topic")
    with committed():
        publish(server)
    assert [name for name, _, _ in sent] == ["content_published"]


# A receiver that raises


@pytest.mark.usefixtures("raising")
def test_a_raising_receiver_breaks_nothing(server, committed, sent, settings, caplog):
    settings.PUSH_HUB_RETRY_BASE = 10
    settings.PUSH_HUB_RETRY_HORIZON = 5
    server.replies["/cb"] = echo
    caplog.set_level(logging.ERROR, logger="django_push")

    assert run_verification(committed, intent(server)) == Intent.Status.VERIFIED
    assert HubSubscription.objects.filter(callback=server.url + "/cb?id=7").exists()

    topic = server.url + "/topic"
    server.replies["/failing"] = Reply(503)
    server.replies["/gone"] = Reply(410)
    failing = subscribe(server.url + "/failing", topic)
    subscribe(server.url + "/gone", topic)
    subscribe(server.url + "/ok", topic)
    with committed():
        content_id = publish(server)
    assert content_id is not None
    statuses = dict(Delivery.objects.values_list("subscription_id", "status"))
    assert statuses == {failing.pk: Delivery.Status.FAILED}  # a success writes no row
    assert counts(Content.objects.get())["delivered"] == 1
    assert not HubSubscription.objects.filter(callback=server.url + "/gone").exists()
    assert HubSubscription.objects.get(pk=failing.pk).failures == 1

    # Every other receiver still ran, once per signal.
    assert sorted(name for name, _, _ in sent) == sorted(NAMES)
    logged = [
        r for r in caplog.records if r.name == "django_push.signals" and "raised" in r.message
    ]
    assert {name for name in NAMES if any(name in r.message for r in logged)} == set(NAMES)
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in logged)
