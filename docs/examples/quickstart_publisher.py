"""Quickstart, publisher side: a feed that declares its hub, and a ping after each save."""

import datetime
from types import SimpleNamespace

from django.apps import AppConfig
from django.db.models.signals import post_save

from django_push.publisher import publish_on_commit
from django_push.publisher.feeds import Feed

# The feed's public URL. It is the topic: subscribers subscribe to it, and you ping it.
FEED_URL = "https://www.example.com/feed/"

# Stands in for your model, so that this example runs anywhere.
POSTS = [
    SimpleNamespace(
        title="Hello, world",
        body="The first post.",
        url="/posts/1/",
        published=datetime.datetime(2026, 1, 5, 9, 30, tzinfo=datetime.UTC),
    )
]


class LatestPostsFeed(Feed):
    """Atom feed with <link rel="hub"> (PUSH_HUB) and <link rel="self"> (feed_url)."""

    title = "Latest posts"
    link = "/posts/"
    feed_url = FEED_URL  # rel="self", in the feed and in its Link header

    def items(self):
        return POSTS[:10]  # in your project: Post.objects.order_by("-published_at")[:10]

    def item_title(self, item):
        return item.title

    def item_description(self, item):
        return item.body

    def item_link(self, item):
        return item.url

    def item_pubdate(self, item):
        # Dates keep the feed's <updated> still between posts: without them Django writes
        # the current time on every request, and the hub sees new content at every fetch.
        return item.published


def ping_hub_after_save(sender, instance, **kwargs):
    """A post_save receiver: tell the hub that the feed changed, once the save commits."""
    publish_on_commit(FEED_URL)


class BlogConfig(AppConfig):
    """blog/apps.py: connect the receiver to the Post model when Django starts."""

    name = "blog"

    def ready(self):
        post_save.connect(ping_hub_after_save, sender=self.get_model("Post"))
