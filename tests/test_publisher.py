"""Publisher: hub and self links in feeds and headers (P-2, P-3), pings (P-7)."""

from __future__ import annotations

import asyncio
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from django.views.generic import View

from django_push.exceptions import PingError
from django_push.links import parse_links
from django_push.publisher import aping_hub, ping_hub, publish_on_commit
from django_push.publisher.headers import HubLinksMixin, add_link_headers, hub_links
from tests.servers import Reply

pytestmark = pytest.mark.django_db


def link_rels(response):
    return {(link["rel"], link["url"]) for link in parse_links(response.headers.get("Link"))}


def rel_counts(link_headers):
    """How many times each rel appears over all raw ``Link`` header lines (no set)."""
    counts: dict[str, int] = {}
    for value in link_headers:
        for link in parse_links(value):
            for rel in link.get("rel", "").lower().split():
                counts[rel] = counts.get(rel, 0) + 1
    return counts


def test_atom_feed_declares_hub_and_self(client, settings):
    settings.PUSH_HUB = "https://hub.example.com/"
    response = client.get("/feed/")
    body = response.content.decode()
    assert response.status_code == 200
    assert (
        '<link href="https://hub.example.com/" rel="hub"' in body
        or 'rel="hub" href="https://hub.example.com/"' in body
    )
    # P-3: the hub link sits in <feed>, after the root elements and before the first entry.
    assert body.index('rel="hub"') < body.index("<entry>")
    assert 'rel="self"' in body
    assert link_rels(response) == {
        ("hub", "https://hub.example.com/"),
        ("self", "http://example.com/feed/"),
    }


def test_link_headers_on_head(client, settings):
    settings.PUSH_HUB = "https://hub.example.com/"
    response = client.head("/feed/")
    assert ("hub", "https://hub.example.com/") in link_rels(response)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/feed/", "/rss/", "/page/"])
def test_exactly_one_self_and_a_hub_on_get_and_head(live_server, settings, method, path):
    # P-2: at least one rel="hub" and EXACTLY ONE rel="self" on GET and on HEAD, counted
    # over every Link header line the server sends.
    settings.PUSH_HUB = "https://hub.example.com/"
    request = urllib.request.Request(live_server.url + path, method=method)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        link_headers = response.headers.get_all("Link") or []
    counts = rel_counts(link_headers)
    assert counts.get("self") == 1, link_headers
    assert counts.get("hub", 0) >= 1, link_headers


def test_view_with_its_own_self_link_keeps_exactly_one(rf, settings):
    # P-2, P-5: a view that names its own rel="self" (e.g. per Accept) keeps it, alone.
    settings.PUSH_HUB = "https://hub.example.com/"
    from django.http import HttpResponse

    own = '<https://t.example/x.json>; rel="self", <https://t.example/s.css>; rel="stylesheet"'

    @hub_links()
    def view(request):
        response = HttpResponse("x")
        response["Link"] = own
        return response

    class Topic(HubLinksMixin, View):
        def get(self, request):
            return view.__wrapped__(request)

    for response in [view(rf.get("/x")), Topic.as_view()(rf.get("/x"))]:
        links = parse_links(response["Link"])
        assert rel_counts([response["Link"]]) == {"self": 1, "stylesheet": 1, "hub": 1}
        assert {"url": "https://t.example/x.json", "rel": "self"} in links
        assert {"url": "https://hub.example.com/", "rel": "hub"} in links


def test_feed_without_hub_renders_without_hub_link(client, settings):
    settings.PUSH_HUB = None
    response = client.get("/feed/")
    assert response.status_code == 200
    assert 'rel="hub"' not in response.content.decode()
    assert link_rels(response) == {("self", "http://example.com/feed/")}


def test_hub_attribute_and_get_hub_win_over_setting(client, settings):
    settings.PUSH_HUB = "https://default.example.com/"
    assert ("hub", "http://hub.example.com") in link_rels(client.get("/custom-hub-feed/"))
    assert ("hub", "http://dynamic-hub.example.com") in link_rels(client.get("/dynamic-hub-feed/"))


def test_rss_feed_declares_hub_with_atom_link(client, settings):
    settings.PUSH_HUB = "https://hub.example.com/"
    body = client.get("/rss/").content.decode()
    assert '<atom:link rel="hub" href="https://hub.example.com/"' in body or (
        'atom:link href="https://hub.example.com/" rel="hub"' in body
    )
    assert 'xmlns:atom="http://www.w3.org/2005/Atom"' in body


def test_rss_feed_declares_hub_and_self_in_channel(client, settings):
    # P-3: RSS carries <atom:link rel="hub"/> and <atom:link rel="self"/> in <channel>.
    settings.PUSH_HUB = "https://hub.example.com/"
    response = client.get("/rss/")
    assert response.status_code == 200
    channel = ET.fromstring(response.content).find("channel")
    assert channel is not None
    links = [
        (link.get("rel"), link.get("href"))
        for link in channel.findall("{http://www.w3.org/2005/Atom}link")
    ]
    assert sorted(links) == [
        ("hub", "https://hub.example.com/"),
        ("self", "http://example.com/rss/"),
    ]


def test_hub_links_decorator_on_any_view(client, settings):
    settings.PUSH_HUB = "https://hub.example.com/"
    response = client.get("/page/")
    assert link_rels(response) == {
        ("hub", "https://hub.example.com/"),
        ("self", "http://testserver/page/"),
    }


def test_hub_links_decorator_with_explicit_values(rf):
    @hub_links(
        ["https://a.example/", "https://b.example/"], self_url=lambda request: "https://t.example/x"
    )
    def view(request):
        from django.http import HttpResponse

        response = HttpResponse("x")
        response["Link"] = '<https://t.example/style.css>; rel="stylesheet"'
        return response

    rels = link_rels(view(rf.get("/")))
    assert rels == {
        ("stylesheet", "https://t.example/style.css"),
        ("hub", "https://a.example/"),
        ("hub", "https://b.example/"),
        ("self", "https://t.example/x"),
    }


def test_hub_links_mixin(rf, settings):
    settings.PUSH_HUB = "https://hub.example.com/"
    from django.http import HttpResponse

    class Topic(HubLinksMixin, View):
        def get(self, request):
            return HttpResponse("t")

    class OtherHub(Topic):
        hub = "https://other.example/"

    assert ("hub", "https://hub.example.com/") in link_rels(Topic.as_view()(rf.get("/t")))
    assert ("hub", "https://other.example/") in link_rels(OtherHub.as_view()(rf.get("/t")))


def test_add_link_headers_without_hub():
    from django.http import HttpResponse

    response = add_link_headers(HttpResponse(), hubs=None, self_url="https://t.example/")
    assert response["Link"] == '<https://t.example/>; rel="self"'
    # P-2: an own rel="self" and no hub: the header is left as the view set it.
    response = HttpResponse(headers={"Link": '<https://t.example/own>; rel="self"'})
    add_link_headers(response, hubs=None, self_url="https://t.example/")
    assert response["Link"] == '<https://t.example/own>; rel="self"'


# Pings -------------------------------------------------------------------------------


def test_ping_sends_url_and_topic(server):
    server.default = Reply(204)
    response = ping_hub("http://example.com/feed", hub_url=server.url)
    assert response.status_code == 204
    [ping] = server.requests
    assert ping.form == {
        "hub.mode": ["publish"],
        "hub.url": ["http://example.com/feed"],
        "hub.topic": ["http://example.com/feed"],
    }
    assert ping.headers["User-Agent"].startswith("django-push/")


def test_ping_uses_push_hub_and_explicit_hub_wins(server, settings):
    server.default = Reply(202)
    settings.PUSH_HUB = server.url + "/setting"
    ping_hub("http://example.com/feed")
    ping_hub("http://example.com/feed", hub_url=server.url + "/explicit")
    assert [r.path for r in server.requests] == ["/setting", "/explicit"]


def test_ping_without_hub_is_value_error(settings):
    settings.PUSH_HUB = None
    with pytest.raises(ValueError, match="Specify hub_url or set the PUSH_HUB setting."):
        ping_hub("http://example.com/feed")
    with pytest.raises(ValueError):
        publish_on_commit("http://example.com/feed")


def test_refused_ping_raises_with_hub_status_and_reason(server, caplog):
    server.default = Reply(400, b"unknown topic")
    with pytest.raises(PingError) as info:
        ping_hub("http://example.com/feed", hub_url=server.url)
    assert (info.value.hub, info.value.status, info.value.reason) == (
        server.url,
        400,
        "unknown topic",
    )
    assert server.url in str(info.value) and "400" in str(info.value)
    assert "unknown topic" in caplog.text


def test_ping_timeout_raises(server, settings):
    settings.PUSH_TIMEOUT = 0.2
    server.default = Reply(204, delay=1)
    with pytest.raises(PingError, match="no answer within"):
        ping_hub("http://example.com/feed", hub_url=server.url)


def test_aping_hub(server):
    server.default = Reply(202)
    response = asyncio.run(aping_hub("http://example.com/feed", server.url))
    assert response.status == 202


def test_publish_on_commit_pings_after_commit_only(
    server, settings, django_capture_on_commit_callbacks
):
    server.default = Reply(204)
    settings.PUSH_HUB = server.url
    from tests.testapp.models import MyModel

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        MyModel.objects.create().publish_later()
    assert server.requests == []  # not before the commit
    for callback in callbacks:
        callback()
    assert server.requests[0].form["hub.mode"] == ["publish"]
    assert server.requests[0].form["hub.url"][0].endswith("/mymodel/feed/")


def test_publish_on_commit_pings_every_hub_even_when_one_refuses(
    server, settings, django_capture_on_commit_callbacks
):
    # P-6: every advertised hub is notified, each in its own task.
    server.replies["/down"] = Reply(503, b"maintenance")
    server.replies["/up"] = Reply(204)
    settings.PUSH_HUB = server.url + "/not-this-one"
    with django_capture_on_commit_callbacks(execute=True):
        publish_on_commit("http://example.com/feed", [server.url + "/down", server.url + "/up"])
    assert [(r.path, r.form["hub.url"]) for r in server.requests] == [
        ("/down", ["http://example.com/feed"]),
        ("/up", ["http://example.com/feed"]),
    ]


@pytest.mark.parametrize("hub_url", [None, "", []])
def test_publish_on_commit_without_a_hub_uses_push_hub(
    server, settings, django_capture_on_commit_callbacks, hub_url
):
    server.default = Reply(204)
    settings.PUSH_HUB = server.url + "/hub"
    with django_capture_on_commit_callbacks(execute=True):
        publish_on_commit("http://example.com/feed", hub_url)
    assert [r.path for r in server.requests] == ["/hub"]
    settings.PUSH_HUB = None
    with pytest.raises(ValueError, match="PUSH_HUB"):
        publish_on_commit("http://example.com/feed", hub_url)


@pytest.mark.django_db(transaction=True)
def test_publish_on_commit_rolled_back_pings_nobody(server, settings):
    from django.db import transaction

    server.default = Reply(204)
    settings.PUSH_HUB = server.url

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        publish_on_commit("http://example.com/feed")
        raise Rollback
    assert server.requests == []
    with transaction.atomic():
        publish_on_commit("http://example.com/feed")
    assert len(server.requests) == 1


# "No hub given: use PUSH_HUB": one rule, one meaning, in every entry point ----------------


@pytest.mark.parametrize("nothing", [None, "", [], [""]])
def test_no_hub_given_means_push_hub_everywhere(rf, settings, nothing):
    from django.http import HttpResponse
    from django.template import Context, Template

    from django_push.publisher import hubs_to_ping
    from django_push.publisher.feeds import Feed

    settings.PUSH_HUB = "https://hub.example/"
    assert hubs_to_ping(nothing) == ["https://hub.example/"]  # ping_hub, publish_on_commit

    feed = type("NoHub", (Feed,), {"hub": nothing})()
    assert feed.get_hub(None) == "https://hub.example/"

    view = hub_links(nothing, self_url="https://example.com/t")(lambda request: HttpResponse())
    assert '<https://hub.example/>; rel="hub"' in view(rf.get("/"))["Link"]

    class Page(HubLinksMixin, View):
        hub = nothing

        def get(self, request):
            return HttpResponse()

    assert '<https://hub.example/>; rel="hub"' in Page.as_view()(rf.get("/"))["Link"]

    tag = Template("{% load websub %}{% websub_links hub=hub self='https://example.com/t' %}")
    html = tag.render(Context({"hub": nothing}))
    assert '<link rel="hub" href="https://hub.example/">' in html

    settings.PUSH_HUB = None
    with pytest.raises(ValueError, match="set the PUSH_HUB setting"):
        hubs_to_ping(nothing)
    assert feed.get_hub(None) is None
