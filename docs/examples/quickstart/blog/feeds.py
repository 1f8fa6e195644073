# blog/feeds.py
from django.conf import settings

from django_push.publisher.feeds import Feed

from .models import Post


class LatestPostsFeed(Feed):
    """Atom feed with <link rel="hub"> (PUSH_HUB) and <link rel="self"> (feed_url)."""

    title = "Latest posts"
    link = "/"

    def feed_url(self):
        # rel="self", in the feed and in its Link header: the URL subscribers follow.
        return settings.BLOG_FEED_URL

    def items(self):
        return Post.objects.order_by("-published_at")[:10]

    def item_title(self, item):
        return item.title

    def item_description(self, item):
        return item.body

    def item_link(self, item):
        return f"/posts/{item.pk}/"

    def item_pubdate(self, item):
        # Dates keep the feed's <updated> still between posts: without them Django writes
        # the current time on every request, and the hub sees new content at every fetch.
        return item.published_at
