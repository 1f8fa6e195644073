import logging

from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import (
    subscription_denied,
    subscription_failed,
    subscription_verified,
    updated,
)
from django_push.subscriber.views import CallbackView

logger = logging.getLogger(__name__)
received = []


def follow(topic_url):
    # Discovers the hub and the canonical topic URL, then subscribes after commit.
    return Subscription.objects.subscribe(topic_url, lease_seconds=86400)


def follow_at(topic_url, hub_url):
    # The 1.1 way: you already know the hub.
    return Subscription.objects.subscribe(topic_url, hub=hub_url)


def on_update(sender, notification, request, links, **kwargs):
    # Only verified, unexpired subscriptions with a valid signature get here.
    received.append((sender.topic, notification))


updated.connect(on_update)


class LoggingCallback(CallbackView):
    """Route this with name="subscriber_callback" and an int "pk" to replace the default."""

    def handle_subscription(self):
        logger.info("%s sent %d bytes", self.subscription.topic, len(self.request.body))


def stop_following(topic_url):
    for subscription in Subscription.objects.filter(topic=topic_url):
        subscription.unsubscribe()  # the row goes once the hub verifies it


# What the background request led to -------------------------------------------------------

outcomes = []


def on_verified(sender, subscription, lease_seconds, **kwargs):
    outcomes.append(("verified", subscription.topic, lease_seconds))


def on_failed(sender, subscription, mode, status, text, **kwargs):
    # status is None when the hub could not be reached at all.
    outcomes.append(("failed", subscription.topic, status))


def on_denied(sender, subscription, reason, **kwargs):
    outcomes.append(("denied", subscription.topic, reason))


subscription_verified.connect(on_verified)
subscription_failed.connect(on_failed)
subscription_denied.connect(on_denied)
