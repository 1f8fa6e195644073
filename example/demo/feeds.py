from __future__ import annotations

from demo.models import Post
from django_push.publisher.feeds import Feed


class PostFeed(Feed):
    """The blog's Atom feed; django-push adds the hub link (PUSH_HUB) and Link headers."""

    title = "django-push demo blog"
    link = "/"
    subtitle = "Posts published through our own WebSub hub"

    def items(self):  # type: ignore[no-untyped-def]
        return Post.objects.all()[:10]

    def item_title(self, item: Post) -> str:
        return item.title

    def item_description(self, item: Post) -> str:
        return item.body
