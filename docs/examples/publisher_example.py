from django.http import HttpResponse

from django_push.publisher import ping_hub, publish_on_commit
from django_push.publisher.feeds import Feed
from django_push.publisher.headers import hub_links

ENTRIES = [{"title": "Hello", "link": "/entries/1/"}]


class EntryFeed(Feed):
    """An Atom feed that declares PUSH_HUB, in the XML and in Link headers."""

    title = "Entries"
    link = "/entries/"

    def items(self):
        return ENTRIES

    def item_title(self, item):
        return item["title"]

    def item_link(self, item):
        return item["link"]


class OtherHubFeed(EntryFeed):
    hub = "https://hub.example.com/"  # or override get_hub(self, obj)


@hub_links()  # Link: <PUSH_HUB>; rel="hub", <this URL>; rel="self"
def status_page(request):
    return HttpResponse("All systems go.", content_type="text/plain")


def publish_entry(title, feed_url):
    ENTRIES.insert(0, {"title": title, "link": f"/entries/{len(ENTRIES) + 1}/"})
    # Pings the hub once the transaction commits, from a background task.
    publish_on_commit(feed_url)


def ping_now(feed_url, hub_url):
    # Synchronous, as in 1.1; raises PingError if the hub refuses.
    return ping_hub(feed_url, hub_url=hub_url)
