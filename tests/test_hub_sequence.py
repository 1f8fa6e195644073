"""Issue 18, parts 1 and 2 on the hub: ``Push-Sequence`` on deliveries (one counter per topic,
stamped on the content, so retries carry the original number), and the latest content sent to
a new subscription once it is verified. Deliveries go to real callback servers on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from django_push.hub.models import Content, Delivery, HubSubscription, Intent, TopicSequence
from django_push.hub.tasks import publish_task, sweep, verify_intent_task
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import HUB, subscribe
from tests.servers import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]


def posts(server, path):
    return [r for r in server.requests if r.method == "POST" and r.path.split("?")[0] == path]


def publish(server, body, path="/topic"):
    server.replies[path] = Reply(200, body, {"Content-Type": "text/plain"})
    content_id = publish_task.call(server.url + path, HUB)
    run_queued()
    return content_id


def numbers(server, path):
    return [r.headers.get("Push-Sequence") for r in posts(server, path)]


def echo(received):
    """Answer a verification with its challenge, a delivery with 204."""
    if received.method != "GET":
        return Reply(204)
    return Reply(200, received.query["hub.challenge"][0].encode())


def test_off_by_default_no_number_is_kept_or_sent(server):
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, b"one")
    publish(server, b"two")
    assert numbers(server, "/cb") == [None, None]
    assert list(Content.objects.values_list("sequence", flat=True)) == [None, None]
    assert not TopicSequence.objects.exists()


def test_each_content_of_a_topic_takes_the_next_number(server, settings):
    settings.PUSH_HUB_SEQUENCE_HEADER = True
    topic, other = server.url + "/topic", server.url + "/other"
    subscribe(server.url + "/a", topic)
    subscribe(server.url + "/b", topic)
    subscribe(server.url + "/c", other)
    publish(server, b"one")
    publish(server, b"one")  # unchanged: not stored, no number
    publish(server, b"two")
    publish(server, b"elsewhere", "/other")
    publish(server, b"three")
    assert numbers(server, "/a") == numbers(server, "/b") == ["1", "2", "3"]
    assert numbers(server, "/c") == ["1"]  # a counter per topic
    assert TopicSequence.objects.get(topic=topic).last == 3
    # Next to the delivery id, which differs per content.
    ids = {r.headers["Push-Delivery-Id"] for r in posts(server, "/a")}
    assert len(ids) == 3


def test_a_subscription_made_later_starts_at_the_number_it_is_first_sent(server, settings):
    settings.PUSH_HUB_SEQUENCE_HEADER = True
    topic = server.url + "/topic"
    subscribe(server.url + "/early", topic)
    publish(server, b"one")
    publish(server, b"two")
    subscribe(server.url + "/late", topic)
    publish(server, b"three")
    assert numbers(server, "/early") == ["1", "2", "3"]
    assert numbers(server, "/late") == ["3"]


def test_a_retry_carries_the_number_of_its_content(server, settings):
    settings.PUSH_HUB_SEQUENCE_HEADER = True
    settings.PUSH_HUB_RETRY_BASE = 0.05
    answers = iter([503])
    server.replies["/cb"] = lambda received: Reply(next(answers, 204))
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, b"one")
    delivery = Delivery.objects.get()
    time.sleep(max((delivery.next_attempt_at - timezone.now()).total_seconds(), 0) + 0.01)
    sweep()
    run_queued()
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED
    assert numbers(server, "/cb") == ["1", "1"]


def test_turned_on_later_numbers_from_one(server, settings):
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, b"one")
    settings.PUSH_HUB_SEQUENCE_HEADER = True
    publish(server, b"two")
    assert numbers(server, "/cb") == [None, "1"]


# The latest content on subscribe ----------------------------------------------------------


def subscribe_request(server, topic, path="/new"):
    server.replies[path] = echo
    return Intent.objects.create(mode="subscribe", topic=topic, callback=server.url + path)


def test_a_new_subscription_gets_the_latest_content_after_verification(server, settings):
    settings.PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE = True
    settings.PUSH_HUB_SEQUENCE_HEADER = True
    topic = server.url + "/topic"
    subscribe(server.url + "/old", topic)
    publish(server, b"first")
    publish(server, b"latest")
    subscribe_request(server, topic)
    assert verify_intent_task.call() == 1
    run_queued()
    [verification] = [r for r in server.requests if r.method == "GET" and r.path.startswith("/new")]
    [delivery] = posts(server, "/new")
    assert server.requests.index(verification) < server.requests.index(delivery)
    assert delivery.body == b"latest"
    assert delivery.headers["Push-Sequence"] == "2"
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED
    assert len(posts(server, "/old")) == 2  # nothing more for the others


def test_a_renewal_or_a_topic_without_content_gets_nothing(server, settings):
    settings.PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE = True
    topic = server.url + "/topic"
    subscribe(server.url + "/old", topic)
    publish(server, b"latest")
    HubSubscription.objects.filter(callback=server.url + "/old").delete()
    subscribe_request(server, topic, "/old")  # made anew: gets it
    subscribe_request(server, server.url + "/empty", "/empty")  # nothing stored yet
    verify_intent_task.call()
    run_queued()
    subscribe_request(server, topic, "/old")  # a renewal: has it already
    verify_intent_task.call()
    run_queued()
    assert [r.body for r in posts(server, "/old")] == [b"latest", b"latest"]
    assert posts(server, "/empty") == []
    assert Delivery.objects.count() == 1


def test_off_by_default_a_new_subscription_gets_nothing(server):
    topic = server.url + "/topic"
    subscribe(server.url + "/old", topic)
    publish(server, b"latest")
    subscribe_request(server, topic)
    verify_intent_task.call()
    run_queued()
    assert HubSubscription.objects.filter(callback=server.url + "/new").exists()
    assert posts(server, "/new") == []
    assert not Delivery.objects.exists()


# Settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PUSH_HUB_SEQUENCE_HEADER", "PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_e110_switch_not_boolean(settings, name, value):
    from django_push import checks

    setattr(settings, name, value)
    messages = [m for m in checks.check_hub_settings() if m.id == "django_push.E110"]
    assert [name in m.msg and repr(value) in m.msg for m in messages] == [True]
    setattr(settings, name, True)
    assert "django_push.E110" not in {m.id for m in checks.check_hub_settings()}


@pytest.mark.parametrize("value", [-1, "60", True, float("nan")])
def test_e020_bad_gap_poll_interval(settings, value):
    from django_push import checks

    settings.PUSH_SUBSCRIBER_GAP_POLL_INTERVAL = value
    assert [m.id for m in checks.check_subscriber_settings()] == ["django_push.E020"]


@pytest.mark.parametrize("value", [None, 0, 0.5, 3600])
def test_gap_poll_interval_of_zero_or_more_or_none_is_fine(settings, value):
    from django_push import checks

    settings.PUSH_SUBSCRIBER_GAP_POLL_INTERVAL = value
    assert [m.id for m in checks.check_subscriber_settings()] == []
