import pytest

from django_push.publisher import publish_on_commit
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated

# The site's code under test ----------------------------------------------------------------

news = []


def follow(topic_url):
    return Subscription.objects.subscribe(topic_url)  # discovers the topic's hub


def store(sender, notification, **kwargs):
    news.append((sender.topic, notification))


updated.connect(store)


def publish(feed_url):
    publish_on_commit(feed_url)  # pings PUSH_HUB after the commit


# Its tests: conftest.py has pytest_plugins = ["django_push.testing.pytest"] -------------------

pytestmark = pytest.mark.django_db


def test_follow_then_receive(push_hub, django_capture_on_commit_callbacks):
    topic = push_hub.serve_topic("/blog/feed/")  # its Link header names push_hub
    with django_capture_on_commit_callbacks(execute=True):
        subscription = follow(topic)
    request = push_hub.assert_subscribed(topic)
    assert request.callback == subscription.callback_url

    assert push_hub.verify().status_code == 200  # the hub checks our intent
    subscription.refresh_from_db()
    assert subscription.verified

    assert push_hub.deliver(b"<feed>news</feed>").status_code == 200  # signed
    assert news[-1] == (topic, b"<feed>news</feed>")


def test_a_forged_delivery_is_dropped(push_hub, django_capture_on_commit_callbacks):
    topic = push_hub.serve_topic("/blog/feed/")
    with django_capture_on_commit_callbacks(execute=True):
        follow(topic)
    push_hub.verify()
    before = len(news)
    response = push_hub.deliver(b"<feed>forged</feed>", signature="sha256=" + "0" * 64)
    assert response.status_code == 200  # WebSub: answer 2xx, so probing teaches nothing
    assert len(news) == before


def test_publish_pings_the_hub(push_hub, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        publish("https://www.example.com/blog/feed/")
    push_hub.assert_pinged("https://www.example.com/blog/feed/")


def test_a_refused_subscription_is_recorded(push_hub, django_capture_on_commit_callbacks):
    push_hub.status, push_hub.text = 403, "not on this hub"
    with django_capture_on_commit_callbacks(execute=True):
        subscription = follow(push_hub.serve_topic("/blog/feed/"))
    subscription.refresh_from_db()
    assert subscription.last_error == "HTTP 403: not on this hub"
    assert not subscription.verified
