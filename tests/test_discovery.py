"""Discovery (WebSub 4, S-1 .. S-4) against real topic servers."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from django_push import http
from django_push.discovery import Discovered, adiscover, discover, from_response
from django_push.exceptions import DiscoveryError
from django_push.subscriber.models import Subscription
from tests.servers import Reply

ATOM = (
    '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
    '<link rel="hub" href="{hub}"/><link rel="self" href="{self}"/></feed>'
)
RSS = (
    '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
    '<title>t</title><atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{self}"/>'
    "</channel></rss>"
)
HTML = (
    '<!doctype html><html><head><title>t</title><link rel="hub" href="{hub}">'
    '<link rel="self" href="{self}"></head><body><link rel="hub" href="http://body.example/"></body></html>'
)


def test_link_headers(server):
    # websub.rocks 100
    server.default = Reply(
        200,
        b"plain",
        {"Link": '<https://hub.example/>; rel="hub", <https://t.example/x>; rel="self"'},
    )
    found = discover(server.url + "/topic")
    assert found.hubs == ["https://hub.example/"]
    assert found.topic == "https://t.example/x"


def test_link_headers_as_separate_lines(server):
    server.default = Reply(200, b"", {"Link": '<https://hub.example/>; rel="hub"'})
    found = discover(server.url + "/topic")
    assert found.hubs == ["https://hub.example/"]
    assert found.topic == server.url + "/topic"  # no rel=self: the URL fetched


@pytest.mark.parametrize(
    ("template", "content_type"),
    [
        (ATOM, "application/atom+xml"),
        (RSS, "application/rss+xml"),
        (HTML, "text/html; charset=utf-8"),
    ],
)
def test_document_links(server, template, content_type):
    # websub.rocks 101 (HTML), 102 (Atom), 103 (RSS)
    body = template.format(hub="https://hub.example/", self="https://t.example/feed").encode()
    server.default = Reply(200, body, {"Content-Type": content_type})
    found = discover(server.url + "/feed")
    assert found.hubs == ["https://hub.example/"]
    assert found.self_url == "https://t.example/feed"


def test_headers_win_over_document(server):
    # websub.rocks 104
    body = ATOM.format(hub="https://body-hub.example/", self="https://body.example/").encode()
    server.default = Reply(
        200,
        body,
        {
            "Content-Type": "application/atom+xml",
            "Link": '<https://header-hub.example/>; rel="hub"',
        },
    )
    assert discover(server.url).hubs == ["https://header-hub.example/"]


@pytest.mark.parametrize("status", [301, 302])
def test_redirects_are_followed(server, status):
    # websub.rocks 201, 202
    server.replies["/old"] = Reply(status, headers={"Location": "/new"})
    server.replies["/new"] = Reply(200, b"", {"Link": '<https://hub.example/>; rel="hub"'})
    found = discover(server.url + "/old")
    assert found.topic == server.url + "/new"


def test_relative_links_resolve_against_final_url(server):
    server.default = Reply(200, b"", {"Link": '</hub>; rel="hub", </feed>; rel="self"'})
    found = discover(server.url + "/a/b")
    assert found.hubs == [server.url + "/hub"]
    assert found.topic == server.url + "/feed"


def test_https_hub_preferred():
    found = Discovered(["http://a.example/", "https://b.example/"], None, "http://t/")
    assert found.hub == "https://b.example/"


def test_no_hub_is_discovery_error(server):
    server.default = Reply(
        200, b"<html><head></head><body></body></html>", {"Content-Type": "text/html"}
    )
    with pytest.raises(DiscoveryError, match="declares no WebSub hub"):
        discover(server.url)


def test_fetch_failure_is_discovery_error(server, unused_tcp_port):
    server.default = Reply(500)
    with pytest.raises(DiscoveryError, match="HTTP 500"):
        discover(server.url)
    with pytest.raises(DiscoveryError, match="Could not fetch"):
        discover(f"http://127.0.0.1:{unused_tcp_port}/")


def test_adiscover(server):
    server.default = Reply(200, b"", {"Link": '<https://hub.example/>; rel="hub"'})
    assert asyncio.run(adiscover(server.url)).hub == "https://hub.example/"


@pytest.mark.django_db
def test_subscribe_with_only_a_topic_url(server, django_capture_on_commit_callbacks):
    # S-3 / websub.rocks 200: subscribe to rel=self, at the discovered hub.
    server.replies["/page"] = Reply(
        200, b"", {"Link": f'<{server.url}/hub>; rel="hub", <{server.url}/canonical>; rel="self"'}
    )
    server.replies["/hub"] = Reply(202)
    with django_capture_on_commit_callbacks(execute=True):
        sub = Subscription.objects.subscribe(server.url + "/page")
    assert (sub.hub, sub.topic) == (server.url + "/hub", server.url + "/canonical")
    hub_request = next(r for r in server.requests if r.path == "/hub")
    assert hub_request.form["hub.topic"] == [server.url + "/canonical"]


@pytest.mark.django_db(transaction=True)
def test_asubscribe_with_only_a_topic_url(server, close_async_connections):
    server.replies["/page"] = Reply(200, b"", {"Link": f'<{server.url}/hub>; rel="hub"'})
    server.replies["/hub"] = Reply(202)
    sub = asyncio.run(Subscription.objects.asubscribe(server.url + "/page"))
    assert sub.hub == server.url + "/hub"
    assert any(r.path == "/hub" for r in server.requests)


def response(body: bytes, content_type: str, link: str | None = None) -> http.Response:
    headers = CIMultiDict({"Content-Type": content_type})
    if link is not None:
        headers["Link"] = link
    return http.Response("http://t.example/", 200, CIMultiDictProxy(headers), body)


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from(
        ["text/html", "application/atom+xml", "application/xml", "text/plain", ""]
    ),
    link=st.none() | st.text(max_size=100),
)
def test_malformed_input_never_raises(body, content_type, link):
    hubs, self_url = from_response(response(body, content_type, link))
    assert isinstance(hubs, list)
    assert self_url is None or isinstance(self_url, str)


def test_xml_entity_bombs_are_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><feed>&a;</feed>'
    assert from_response(response(bomb, "application/atom+xml")) == ([], None)


def test_html_links_outside_head_are_ignored():
    body = b'<html><head></head><body><link rel="hub" href="https://evil.example/"></body></html>'
    assert from_response(response(body, "text/html")) == ([], None)
