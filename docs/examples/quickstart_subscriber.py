"""Quickstart, subscriber side: subscribe to a topic and receive its notifications."""

import logging

from django.dispatch import receiver

from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated

logger = logging.getLogger(__name__)


def subscribe_to(topic_url):
    """Fetch the topic, discover its hub and canonical URL, and subscribe on commit."""
    return Subscription.objects.subscribe(topic_url)


@receiver(updated)
def on_notification(sender, notification, request, links, **kwargs):
    """sender is the Subscription; notification is the body the hub sent, as bytes."""
    content_type = request.headers.get("Content-Type", "")
    logger.info("%s: %d bytes of %s", sender.topic, len(notification), content_type)
