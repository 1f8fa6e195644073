"""Every code example of the django-push 1.1 documentation, run as written.

Only imports are modernised (``django.urls`` instead of ``django.core.urlresolvers``,
``path()``/``re_path()`` instead of ``url()``/``patterns()``, ``print()``), plus two
fixes noted where the original example could not have run. HTTP goes to real servers on
127.0.0.1; the examples' example.com URLs are replaced by those servers' URLs.
"""

from __future__ import annotations

import datetime
import logging
import logging.config
import re

import feedparser
import pytest
from django.contrib.sites.models import Site
from django.test import Client
from django.urls import include, path, re_path, reverse
from django.utils import timezone

from django_push import signatures
from tests.servers import Reply

pytestmark = pytest.mark.django_db

ATOM = "application/atom+xml; charset=utf-8"


# Being a publisher ------------------------------------------------------------------


def test_declare_your_hub_with_push_hub_setting(settings, client):
    settings.PUSH_HUB = "https://pubsubhubbub.appspot.com"

    from django_push.publisher.feeds import Feed
    from tests.testapp.models import MyModel

    class MyFeed(Feed):
        title = "My Feed"
        link = "..."

        def items(self):
            return MyModel.objects.filter(published=True)

    MyModel.objects.create(title="hello", published=True)
    feed = MyFeed()
    from django.test import RequestFactory

    response = feed(RequestFactory().get("/feed/"))
    body = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"] == ATOM
    # 1.1 placed the hub link after </updated> and before the first <entry>.
    assert re.search(
        r'</updated><link rel="hub" href="https://pubsubhubbub.appspot.com"></link>.*<entry>',
        body,
        re.S,
    ) or re.search(r'</updated><link href="https://pubsubhubbub.appspot.com" rel="hub"', body)
    parsed = feedparser.parse(body)
    assert {"rel": "hub", "href": "https://pubsubhubbub.appspot.com"}.items() <= dict(
        next(link for link in parsed.feed.links if link.rel == "hub")
    ).items()


def test_use_different_hubs_for_each_feed(settings, rf):
    settings.PUSH_HUB = "https://default-hub.example.com"
    from django_push.publisher.feeds import Feed

    class MyFeed(Feed):
        title = "My Feed"
        link = "..."
        hub = "http://hub.example.com"

        def items(self):
            return []

    class MyOtherFeed(Feed):
        hub = "http://some-other-hub.com"
        title = "Other"
        link = "/"

        def items(self):
            return []

    for feed, hub in [
        (MyFeed(), "http://hub.example.com"),
        (MyOtherFeed(), "http://some-other-hub.com"),
    ]:
        parsed = feedparser.parse(feed(rf.get("/feed/")).content)
        hubs = [link.href for link in parsed.feed.links if link.rel == "hub"]
        assert hubs == [hub]


def test_get_hub_computed_at_runtime(settings, rf):
    settings.PUSH_HUB = "https://default-hub.example.com"
    some_dynamic_url = "https://dynamic.example.com/hub"
    from django_push.publisher.feeds import Feed

    class MyFeed(Feed):
        title = "t"
        link = "/"

        def items(self):
            return []

        def get_hub(self, obj):
            return some_dynamic_url

    parsed = feedparser.parse(MyFeed()(rf.get("/feed/")).content)
    assert [link.href for link in parsed.feed.links if link.rel == "hub"] == [some_dynamic_url]


def test_ping_the_hub_from_a_model_publish_method(server, settings):
    server.default = Reply(204)
    settings.PUSH_HUB = server.url + "/hub"
    from tests.testapp.models import MyModel

    obj = MyModel.objects.create()
    obj.publish()

    assert MyModel.objects.get(pk=obj.pk).published
    [ping] = server.requests
    feed_url = "http://%s%s" % (Site.objects.get_current().domain, reverse("feed_for_mymodel"))
    assert ping.path == "/hub"
    assert ping.form["hub.mode"] == ["publish"]
    assert ping.form["hub.url"] == [feed_url]


def test_ping_hub_with_a_hub_url_keyword(server):
    server.default = Reply(204)
    from django_push.publisher import ping_hub

    ping_hub("http://example.com/feed.atom", hub_url=server.url + "/other-hub")

    [ping] = server.requests
    assert ping.path == "/other-hub"
    assert ping.form["hub.url"] == ["http://example.com/feed.atom"]
    assert ping.headers["User-Agent"].startswith("django-push/")


# Being a subscriber -----------------------------------------------------------------


def test_include_subscriber_urls_under_any_prefix():
    # The docs' urlconf, with path() instead of url(r'^subscriber/', ...).
    urlpatterns = [
        path("subscriber/", include("django_push.subscriber.urls")),
    ]
    resolver_match = urlpatterns[0].resolve("subscriber/12/")
    assert resolver_match.url_name == "subscriber_callback"
    assert resolver_match.kwargs == {"pk": 12}


def test_push_domain_and_ssl_callback(settings):
    from django_push.subscriber.models import Subscription

    settings.PUSH_DOMAIN = "push.example.org"
    settings.PUSH_SSL_CALLBACK = True
    sub = Subscription.objects.create(
        topic="http://example.com/feed/", hub="http://hub.example.com"
    )
    # 2.1 appends the subscription's capability token (WebSub S-7) to 1.1's URL.
    assert sub.callback_url == (
        f"https://push.example.org/subscriber/{sub.pk}/?token={sub.callback_token}"
    )


def test_sites_framework_gives_the_callback_domain(settings):
    from django_push.subscriber.models import Subscription

    del settings.PUSH_DOMAIN
    Site.objects.filter(pk=settings.SITE_ID).update(domain="sites.example.net")
    sub = Subscription.objects.create(
        topic="http://example.com/feed/", hub="http://hub.example.com"
    )
    assert sub.callback_url == (
        f"http://sites.example.net/subscriber/{sub.pk}/?token={sub.callback_token}"
    )


def test_initial_subscription_with_feedparser_discovery(server, django_capture_on_commit_callbacks):
    hub_url = server.url + "/hub"
    feed_body = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>t</title><link rel="hub" href="{hub_url}"/><id>x</id>'
        "<updated>2026-01-01T00:00:00Z</updated>"
        "<entry><title>e</title><id>e1</id><updated>2026-01-01T00:00:00Z</updated></entry></feed>"
    ).encode()
    server.replies["/feed/"] = Reply(200, feed_body, {"Content-Type": "application/atom+xml"})
    server.replies["/hub"] = Reply(202)
    feed_url = server.url + "/feed/"
    seen = []

    def do_something():
        seen.append(True)

    # --- the docs' code ---
    parsed = feedparser.parse(feed_url)
    for entry in parsed.entries:  # noqa: B007  # as in the docs
        # Do something with the entries: store them, email them...
        do_something()

    parsed = feedparser.parse(feed_url)

    if "links" in parsed.feed:
        for link in parsed.feed.links:
            if link.rel == "hub":
                # Hub detected!
                hub = link.href

    from django_push.subscriber.models import Subscription

    with django_capture_on_commit_callbacks(execute=True):
        subscription = Subscription.objects.subscribe(feed_url, hub=hub, lease_seconds=12345)
    # --- end ---

    assert seen == [True]
    assert hub == hub_url
    request = next(r for r in server.requests if r.path == "/hub")
    assert request.form["hub.lease_seconds"] == ["12345"]
    assert request.form["hub.topic"] == [feed_url]
    assert request.form["hub.callback"] == [subscription.callback_url]

    # "If a subscription for this feed already exists, ... the existing one is renewed."
    with django_capture_on_commit_callbacks(execute=True):
        again = Subscription.objects.subscribe(feed_url, hub=hub, lease_seconds=12345)
    assert again.pk == subscription.pk
    assert Subscription.objects.count() == 1
    assert len([r for r in server.requests if r.path == "/hub"]) == 2


def test_push_lease_seconds_and_push_timeout_settings(
    server, settings, django_capture_on_commit_callbacks
):
    settings.PUSH_LEASE_SECONDS = 2592000
    settings.PUSH_TIMEOUT = 60
    server.default = Reply(202)
    from django_push.subscriber.models import Subscription

    with django_capture_on_commit_callbacks(execute=True):
        Subscription.objects.subscribe("http://example.com/feed/", hub=server.url)
    assert server.requests[0].form["hub.lease_seconds"] == ["2592000"]


def test_renewing_the_leases(server):
    server.default = Reply(202)
    from django_push.subscriber.models import Subscription

    soon = Subscription.objects.create(
        topic="http://example.com/a",
        hub=server.url,
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(hours=2),
    )
    Subscription.objects.create(
        topic="http://example.com/b",
        hub=server.url,
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(days=5),
    )

    # --- the docs' code ---
    tomorrow = timezone.now() + datetime.timedelta(days=1)

    for subscription in Subscription.objects.filter(verified=True, lease_expiration__lte=tomorrow):
        subscription.subscribe()
    # --- end ---

    [request] = server.requests
    assert request.form["hub.topic"] == [soon.topic]
    assert request.form["hub.mode"] == ["subscribe"]


def test_unsubscribing(server, live_domain):
    from django_push.subscriber.models import Subscription

    feed_url = "http://example.com/feed"
    hub_url = server.url + "/hub"
    Subscription.objects.create(topic=feed_url, hub=hub_url, verified=True)
    Subscription.objects.create(topic=feed_url, hub=server.url + "/second-hub", verified=True)

    def hub(received):
        # A WebSub hub verifies the unsubscription with a GET to the callback.
        import urllib.request
        from urllib.parse import urlencode

        callback = received.form["hub.callback"][0]
        query = urlencode(
            {"hub.mode": "unsubscribe", "hub.topic": feed_url, "hub.challenge": "abc"}
        )
        # The callback has a query string (its token): the hub appends with "&" (H-8).
        with urllib.request.urlopen(f"{callback}&{query}") as answer:
            assert answer.read() == b"abc"
        return Reply(202)

    server.replies["/hub"] = hub
    # --- the docs' code (topic + hub, since this topic uses two hubs) ---
    subscription = Subscription.objects.get(topic=feed_url, hub=hub_url)
    subscription.unsubscribe()
    # --- end ---

    assert server.requests[0].form["hub.mode"] == ["unsubscribe"]
    assert not Subscription.objects.filter(hub=hub_url).exists()
    assert Subscription.objects.filter(topic=feed_url).count() == 1


def custom_hub_credentials(hub_url):
    if hub_url.endswith("/hubbub"):
        return ("my_superfeedr_username", "password")


def test_authentication_with_push_credentials(server, settings):
    settings.PUSH_CREDENTIALS = "tests.test_seed_docs.custom_hub_credentials"
    server.default = Reply(202)
    from django_push.subscriber.models import Subscription

    Subscription.objects.create(
        topic="http://example.com/1", hub=server.url + "/hubbub"
    ).subscribe()
    Subscription.objects.create(topic="http://example.com/2", hub=server.url + "/other").subscribe()

    import base64

    expected = "Basic " + base64.b64encode(b"my_superfeedr_username:password").decode()
    assert server.requests[0].headers.get("Authorization") == expected
    assert "Authorization" not in server.requests[1].headers


def _deliver(client, subscription, body, **headers):
    return client.post(
        reverse("subscriber_callback", args=[subscription.pk])
        + f"?token={subscription.callback_token}",
        data=body,
        content_type="application/atom+xml",
        headers=headers,
    )


def _active_subscription(secret=""):
    from django_push.subscriber.models import Subscription

    return Subscription.objects.create(
        topic="http://example.com/feed",
        hub="http://hub.example.com",
        verified=True,
        secret=secret,
        lease_expiration=timezone.now() + datetime.timedelta(days=1),
    )


FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    b"<title>t</title><id>x</id><updated>2026-01-01T00:00:00Z</updated>"
    b'<entry><title>Hello</title><link href="http://example.com/1"/><id>e1</id>'
    b"<updated>2026-01-01T00:00:00Z</updated></entry></feed>"
)


def test_listening_to_hubs_notifications(client, capsys):
    from django_push.subscriber.signals import updated

    def listener(notification, **kwargs):
        parsed = feedparser.parse(notification)
        for entry in parsed.entries:
            print(entry.title, entry.link)

    updated.connect(listener)
    try:
        response = _deliver(client, _active_subscription(), FEED)
    finally:
        updated.disconnect(listener)
    assert response.status_code == 200
    assert capsys.readouterr().out == "Hello http://example.com/1\n"


def test_listener_validating_with_links(client):
    from django_push.subscriber.signals import updated

    urls = []

    def listener(notification, request, links, **kwargs):
        if links is not None:
            for link in links:
                if link["rel"] == "self":
                    break
            url = link["url"]  # This is the topic URL
            urls.append(url)

    updated.connect(listener)
    try:
        _deliver(
            client,
            _active_subscription(),
            FEED,
            Link='<http://hub.example.com>; rel="hub", <http://example.com/feed>; rel="self"',
        )
    finally:
        updated.disconnect(listener)
    assert urls == ["http://example.com/feed"]


def test_listening_with_a_view(settings):
    # The docs iterate ``payload.entries`` (a typo: bytes have no entries); ``parsed`` is meant.
    from django_push.subscriber.views import CallbackView

    done = []

    def do_stuff_with(entry):
        done.append((entry.title, self_links[0]))

    self_links = []

    class MyCallback(CallbackView):
        def handle_subscription(self):
            payload = self.request.body
            parsed = feedparser.parse(payload)
            self_links.append((self.subscription.topic, self.links))
            for entry in parsed.entries:
                do_stuff_with(entry)

    callback = MyCallback.as_view()

    # The docs' urlconf with re_path() instead of patterns()/url().
    urlpatterns = [
        re_path(r"^subscriber/(?P<pk>\d+)/$", callback, name="subscriber_callback"),
    ]
    settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": urlpatterns})
    subscription = _active_subscription(secret="lol")
    token = subscription.callback_token
    assert subscription.callback_url == (
        f"http://testserver.com/subscriber/{subscription.pk}/?token={token}"
    )
    response = Client().post(
        f"/subscriber/{subscription.pk}/?token={token}",
        data=FEED,
        content_type="application/atom+xml",
        headers={"X-Hub-Signature": signatures.sign("lol", FEED, "sha1")},
    )
    assert response.status_code == 200
    assert done == [("Hello", ("http://example.com/feed", None))]


def test_logging_configuration(client, caplog):
    LOGGING = {
        "version": 1,  # dictConfig needs it; the 1.1 docs left it out
        "handlers": {
            "console": {
                "level": "DEBUG",
                "class": "logging.StreamHandler",
            },
        },
        "loggers": {
            "django_push": {
                "handlers": ["console"],
                "level": "DEBUG",
            },
        },
    }
    logging.config.dictConfig({**LOGGING, "disable_existing_loggers": False})
    try:
        with caplog.at_level(logging.DEBUG, logger="django_push"):
            _deliver(
                client, _active_subscription(secret="s3cret"), FEED, X_Hub_Signature="sha1=bad"
            )
    finally:
        logging.getLogger("django_push").handlers.clear()
    assert any(
        "bad signature" in r.getMessage()
        for r in caplog.records
        if r.name == "django_push.subscriber"
    )
