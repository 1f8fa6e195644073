"""Feeds that declare their hub, in the document and in ``Link`` headers."""

from __future__ import annotations

from typing import Any

from django.contrib.syndication.views import Feed as BaseFeed
from django.http import HttpRequest, HttpResponse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed, SyndicationFeed
from django.utils.xmlutils import SimplerXMLGenerator

from django_push.publisher.headers import add_link_headers, hub_urls, or_push_hub

ATOM_NS = "http://www.w3.org/2005/Atom"


class HubAtom1Feed(Atom1Feed):
    """Atom feed with ``<link rel="hub">`` after the root elements (P-3)."""

    def add_root_elements(self, handler: SimplerXMLGenerator) -> None:
        super().add_root_elements(handler)
        for hub in hub_urls(self.feed.get("hub")):
            handler.addQuickElement("link", "", {"rel": "hub", "href": hub})


class HubRss201rev2Feed(Rss201rev2Feed):
    """RSS 2.0 feed with ``<atom:link rel="hub">`` in the channel (P-3)."""

    def add_root_elements(self, handler: SimplerXMLGenerator) -> None:
        super().add_root_elements(handler)
        for hub in hub_urls(self.feed.get("hub")):
            handler.addQuickElement("atom:link", None, {"rel": "hub", "href": hub})


class Feed(BaseFeed):  # type: ignore[type-arg]  # generic only in django-stubs
    """``django.contrib.syndication`` feed that declares its WebSub hub.

    The hub is ``hub``, else what ``get_hub(obj)`` returns, else ``PUSH_HUB``. Atom is the
    default type, as in 1.1; set ``feed_type = HubRss201rev2Feed`` for RSS. Responses also
    carry ``Link`` headers with rel="hub" and rel="self".
    """

    feed_type: type[SyndicationFeed] = HubAtom1Feed
    hub: str | None = None

    def get_hub(self, obj: Any) -> str | None:
        """The hub URL the feed declares: the ``hub`` attribute, else ``PUSH_HUB``; override it to
        choose per object."""
        return or_push_hub(self.hub)

    def feed_extra_kwargs(self, obj: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = super().feed_extra_kwargs(obj)
        kwargs["hub"] = self.get_hub(obj)
        return kwargs

    def get_feed(self, obj: Any, request: HttpRequest) -> SyndicationFeed:
        feed: SyndicationFeed = super().get_feed(obj, request)
        request._push_feed = feed  # type: ignore[attr-defined]  # read back in __call__
        return feed

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().__call__(request, *args, **kwargs)
        feed: SyndicationFeed | None = getattr(request, "_push_feed", None)
        if feed is not None and response.status_code == 200:
            self_url = feed.feed.get("feed_url") or request.build_absolute_uri()
            add_link_headers(response, hubs=feed.feed.get("hub"), self_url=self_url)
        return response
