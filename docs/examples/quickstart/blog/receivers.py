# blog/receivers.py
from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from django_push.publisher import publish_on_commit
from django_push.subscriber.signals import updated

from .models import Post


@receiver(post_save, sender=Post)
def ping_hub_after_save(sender, instance, **kwargs):
    """Tell the hub that the feed changed, once the save commits."""
    publish_on_commit(settings.BLOG_FEED_URL)


@receiver(updated)
def on_notification(sender, notification, request, links, **kwargs):
    """sender is the Subscription; notification is the body the hub sent, as bytes."""
    content_type = request.headers.get("Content-Type", "")
    # print, or log at WARNING: Django's default logging hides INFO.
    print(f"{sender.topic}: {len(notification)} bytes of {content_type}")
