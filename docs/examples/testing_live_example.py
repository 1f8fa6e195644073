import pytest

from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated

# urls.py routes the hub at /hub/ (include("django_push.hub.urls")) and an Atom feed at
# /feed/ (a django_push.publisher.feeds.Feed): the site subscribes to itself, end to end.


@pytest.mark.django_db(transaction=True)  # the live server's threads see committed rows
def test_subscribe_publish_receive(live_push_hub, live_server):
    received = []

    def receive(sender, notification, **kwargs):
        received.append(notification)

    updated.connect(receive)  # a weak reference: gone with the test
    feed = f"{live_server.url}/feed/"

    subscription = Subscription.objects.subscribe(feed)  # discovers live_push_hub
    subscription.refresh_from_db()
    assert subscription.hub == live_push_hub
    assert subscription.verified  # the real hub verified the callback

    assert ping_hub(feed).status_code == 202  # the hub fetched the feed and delivered it
    assert b"<feed" in received[-1]
