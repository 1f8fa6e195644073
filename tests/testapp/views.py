from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_push.publisher.feeds import Feed, HubRss201rev2Feed
from django_push.publisher.headers import hub_links
from django_push.subscriber.views import CallbackView
from tests.testapp.models import MyModel


class BlogFeed(Feed):
    title = "Blog"
    link = "/blog/"

    def items(self):
        return [{"title": "First post", "link": "/blog/1/"}]

    def item_title(self, item):
        return item["title"]

    def item_link(self, item):
        return item["link"]

    def item_description(self, item):
        return item["title"]


class MyFeed(Feed):
    title = "My Feed"
    link = "/mymodel/"

    def items(self):
        return MyModel.objects.filter(published=True)

    def item_title(self, item):
        return item.title

    def item_link(self, item):
        return f"/mymodel/{item.pk}/"

    def item_description(self, item):
        return item.title


class CustomHubFeed(BlogFeed):
    hub = "http://hub.example.com"


class DynamicHubFeed(BlogFeed):
    def get_hub(self, obj):
        return "http://dynamic-hub.example.com"


class BlogRssFeed(BlogFeed):
    feed_type = HubRss201rev2Feed


@hub_links()
def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<html><head><title>page</title></head><body>hi</body></html>")


def text_topic(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain text topic", content_type="text/plain; charset=utf-8")


# Hubs and self of the explicit variant of the HTML topic; the self URL needs escaping.
HTML_TOPIC_HUBS = ["https://hub-a.example/", "https://hub-b.example/?x=1&y=2"]
HTML_TOPIC_SELF = 'https://example.com/topic/?a=1&b="quoted"'


def html_topic(request: HttpRequest, explicit: bool = False) -> HttpResponse:
    """An HTML topic advertised by {% websub_links %} only: no Link header (P-4)."""
    context = {"explicit": explicit, "hubs": HTML_TOPIC_HUBS, "topic": HTML_TOPIC_SELF}
    return render(request, "testapp/websub_page.html", context)


class SiteCallback(CallbackView):
    """A site's own callback route, with one more URL argument than ``pk`` (as 1.1 allowed)."""

    received: list[tuple[str, bytes]] = []

    def handle_subscription(self) -> None:
        self.received.append((self.kwargs["site"], self.request.body))
