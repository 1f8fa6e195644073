"""Feed diffs (PUSH_HUB_FEED_DIFFS, WebSub 7 / H-14): only the new entries of Atom and RSS
topics are delivered, with the feed's head; anything else, or anything unsafe, goes whole."""

from __future__ import annotations

import logging
import time

import feedparser
import pytest

from django_push import signatures
from django_push.hub import feeddiff
from django_push.hub.models import Content, Delivery, HubSubscription, Ping
from django_push.hub.tasks import publish_task
from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated
from tests import feeds
from tests.conftest import wait_until
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import subscribe
from tests.servers import Reply

HUB_URL = "https://hub.example/hub/"


def titles(body):
    return [entry.title for entry in feedparser.parse(body).entries]


# The diff itself ---------------------------------------------------------------------------


def test_atom_keeps_the_head_and_only_new_entries():
    old, new = feeds.atom([2, 1]), feeds.atom([4, 3, 2, 1], updated="2026-11-28T08:00:00Z")
    diff = feeddiff.diff(old, new, feeds.ATOM_TYPE)
    assert diff is not None
    assert diff.new == 2
    head, _, _ = new.partition(b"  <entry>")
    assert diff.body.startswith(head)  # declaration, stylesheet, namespaces, <updated>
    assert diff.body.endswith(b"</feed>\n")
    parsed = feedparser.parse(diff.body)
    assert not parsed.bozo
    assert parsed.feed.title == "Le blog"
    assert [entry.id for entry in parsed.entries] == [
        "tag:blog.example,2026:post-4",
        "tag:blog.example,2026:post-3",
    ]
    assert parsed.entries[0].title == "Post n\u00b04 & caf\u00e9"
    assert {link.rel for link in parsed.feed.links} == {"hub", "self"}


def test_rss_with_namespaces_keeps_them():
    old = feeds.rss([3, 2, 1])
    new = feeds.rss([5, 4, 3, 2], build="Sat, 28 Nov 2026 08:00:00 GMT")
    diff = feeddiff.diff(old, new, feeds.RSS_TYPE)
    assert diff is not None
    assert diff.new == 2
    parsed = feedparser.parse(diff.body)
    assert not parsed.bozo
    assert parsed.feed.title == "The blog"
    [post5, post4] = parsed.entries
    assert (post5.id, post4.id) == ("post-5", "post-4")
    assert post5.author == "Ada Lovelace"  # dc:creator
    assert post5.content[0].value == "<p>Full text of post 5 &amp; more</p>"  # content:encoded
    assert post5.media_content[0]["url"] == "https://blog.example/img/5.jpg"
    assert b"<![CDATA[" in diff.body  # bytes as published, not re-serialized
    assert b'xmlns:media="http://search.yahoo.com/mrss/"' in diff.body
    assert b"<lastBuildDate>Sat, 28 Nov 2026" in diff.body


@pytest.mark.parametrize(
    ("make", "content_type", "kwargs"),
    [
        (feeds.atom, feeds.ATOM_TYPE, {"ids": False}),  # keyed by the alternate link
        (feeds.rss, feeds.RSS_TYPE, {"guids": False}),  # keyed by <link>
        (feeds.atom, feeds.ATOM_TYPE, {"ids": False, "links": False}),  # by a hash
        (feeds.rss, feeds.RSS_TYPE, {"guids": False, "links": False}),
    ],
)
def test_entries_without_ids(make, content_type, kwargs):
    diff = feeddiff.diff(make([2, 1], **kwargs), make([3, 2, 1], **kwargs), content_type)
    assert diff is not None
    assert diff.new == 1
    assert titles(diff.body) == [titles(make([3], **kwargs))[0]]


def test_the_fallback_keys_are_documented_in_order():
    keys = feeddiff.parse(
        b"<rss><channel>"
        b"<item><guid> g </guid><link>l</link></item>"
        b"<item><link> l </link></item>"
        b"<item><guid> </guid><title>t</title></item>"
        b"</channel></rss>"
    ).keys
    assert keys[:2] == ["id:g", "link:l"]
    assert keys[2].startswith("sha256:")


def test_no_new_entry_is_an_empty_diff():
    # The head changed (the feed's <updated>), no entry did.
    diff = feeddiff.diff(
        feeds.atom([2, 1]),
        feeds.atom([2, 1], updated="2027-01-01T00:00:00Z"),
        "application/atom+xml",
    )
    assert diff is not None
    assert diff.new == 0
    parsed = feedparser.parse(diff.body)
    assert parsed.entries == []
    assert parsed.feed.updated == "2027-01-01T00:00:00Z"


def test_an_edited_entry_is_not_new():
    old = feeds.atom([1])
    new = old.replace(b"Body of post 1", b"Corrected body of post 1")
    assert feeddiff.diff(old, new, feeds.ATOM_TYPE).new == 0


def test_an_entry_that_left_and_came_back_is_new_again():
    diff = feeddiff.diff(feeds.rss([3, 2]), feeds.rss([3, 2, 1]), feeds.RSS_TYPE)
    assert titles(diff.body) == ["Post 1"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"items": [1, 2]}', "application/json"),
        (b"plain text", "text/plain"),
        (b"<html><head><title>x</title></head><body><p>y</p></body></html>", "text/html"),
        (feeds.atom([2, 1]), "text/html"),  # a feed served as HTML is not treated as one
        (feeds.atom([2, 1]), "application/octet-stream"),
        (b'{"feed": []}', "application/atom+xml"),  # says feed, is not XML
        (b"<feed xmlns='http://www.w3.org/2005/Atom'><entry>", "application/atom+xml"),
        (b"<html xmlns='http://www.w3.org/1999/xhtml'><body/></html>", "application/xhtml+xml"),
        (  # RSS 1.0 (RDF): not handled, delivered whole
            b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' "
            b"xmlns='http://purl.org/rss/1.0/'><item rdf:about='x'/></rdf:RDF>",
            "application/rdf+xml",
        ),
    ],
)
def test_anything_else_is_delivered_whole(body, content_type):
    assert feeddiff.diff(body, body, content_type) is None
    assert feeddiff.diff(feeds.atom([1]), body, content_type) is None


def test_a_previous_version_that_was_not_a_feed_gives_the_whole_feed():
    assert feeddiff.diff(b"<html/>", feeds.rss([1]), feeds.RSS_TYPE) is None


@pytest.mark.parametrize("position", ["current", "previous"])
def test_billion_laughs_is_refused_without_expanding(position, caplog):
    bomb, feed = feeds.billion_laughs(), feeds.rss([1])
    pair = (feed, bomb) if position == "current" else (bomb, feed)
    started = time.perf_counter()
    with caplog.at_level(logging.DEBUG, logger="django_push"):
        assert feeddiff.diff(*pair, "application/rss+xml") is None
    assert time.perf_counter() - started < 1  # 10**9 "lol"s would take minutes and GBs
    assert "EntitiesForbidden" in caplog.text


def test_external_entities_are_never_read(tmp_path, caplog):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    evil = feeds.external_entity(secret)
    with caplog.at_level(logging.DEBUG, logger="django_push"):
        assert feeddiff.diff(feeds.atom([1]), evil, feeds.ATOM_TYPE) is None
    assert "EntitiesForbidden" in caplog.text


def test_a_doctype_without_entities_is_fine():
    # RSS 0.91 feeds still carry Netscape's DOCTYPE; it is never fetched.
    doctype = (
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
    )
    old = feeds.rss([1]).replace(b"<rss ", doctype + b"<rss ", 1)
    new = feeds.rss([2, 1]).replace(b"<rss ", doctype + b"<rss ", 1)
    assert titles(feeddiff.diff(old, new, feeds.RSS_TYPE).body) == ["Post 2"]


def test_whatever_lies_between_entries_stays_whole():
    # A comment, a processing instruction and a CDATA section after an entry: the cut ends
    # where they begin.
    old = (
        b"<rss><channel><item><guid>1</guid></item>"
        b"<![CDATA[x]]><item><guid>0</guid></item></channel></rss>"
    )
    new = (
        b"<rss><channel><item><guid>2</guid></item><?pi here?><item><guid>1</guid></item>"
        b"<![CDATA[x]]><!-- note --><item><guid>0</guid></item></channel></rss>"
    )
    diff = feeddiff.diff(old, new, "text/xml")
    assert diff.body == (
        b"<rss><channel><item><guid>2</guid></item><?pi here?><![CDATA[x]]><!-- note -->"
        b"</channel></rss>"
    )


def test_utf16_feeds_are_cut_on_their_own_bytes():
    def utf16(feed):
        return feed.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")

    diff = feeddiff.diff(utf16(feeds.rss([1])), utf16(feeds.rss([2, 1])), feeds.RSS_TYPE)
    assert titles(diff.body) == ["Post 2"]


def test_other_encodings_are_cut_on_their_own_bytes():
    old = feeds.rss([1]).decode().replace("UTF-8", "ISO-8859-1").encode("latin-1")
    new = feeds.rss([2, 1]).decode().replace("UTF-8", "ISO-8859-1")
    new = new.replace("The blog", "Le caf\u00e9").encode("latin-1")
    diff = feeddiff.diff(old, new, "application/rss+xml; charset=iso-8859-1")
    assert diff.body.startswith(new[:100])
    parsed = feedparser.parse(diff.body)
    assert parsed.feed.title == "Le caf\u00e9"
    assert [entry.title for entry in parsed.entries] == ["Post 2"]


# Through the hub, over HTTP -----------------------------------------------------------------


def publish(server, body, content_type):
    server.replies["/topic"] = Reply(200, body, {"Content-Type": content_type})
    content_id = publish_task.call(server.url + "/topic", HUB_URL)
    run_queued()
    return content_id


def delivered(server):
    return [r for r in server.requests if r.method == "POST" and r.path.startswith("/cb")]


@pytest.mark.django_db
@pytest.mark.usefixtures("hub_queue")
def test_the_second_publish_delivers_only_new_entries(server, settings):
    settings.PUSH_HUB_FEED_DIFFS = True
    subscribe(server.url + "/cb", server.url + "/topic", secret="s3cret")
    publish(server, feeds.rss([2, 1]), feeds.RSS_TYPE)
    publish(server, feeds.rss([4, 3, 2, 1]), feeds.RSS_TYPE)
    first, second = delivered(server)
    assert titles(first.body) == ["Post 2", "Post 1"]  # no previous version: all of it
    assert titles(second.body) == ["Post 4", "Post 3"]
    assert second.headers["Content-Type"] == feeds.RSS_TYPE
    assert signatures.verify("s3cret", second.body, second.headers["X-Hub-Signature"])
    content = Content.objects.latest_of(server.url + "/topic")
    assert bytes(content.body) == feeds.rss([4, 3, 2, 1])  # stored whole, for the next diff
    assert bytes(content.feed_diff) == second.body


@pytest.mark.django_db
@pytest.mark.usefixtures("hub_queue")
def test_off_by_default(server):
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, feeds.atom([1]), feeds.ATOM_TYPE)
    publish(server, feeds.atom([2, 1]), feeds.ATOM_TYPE)
    assert [r.body for r in delivered(server)] == [feeds.atom([1]), feeds.atom([2, 1])]
    assert Content.objects.filter(feed_diff__isnull=False).count() == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("hub_queue")
def test_no_new_entry_delivers_nothing_and_unchanged_still_uses_the_whole_body(server, settings):
    settings.PUSH_HUB_FEED_DIFFS = True
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    publish(server, feeds.atom([1]), feeds.ATOM_TYPE)
    same_entries = feeds.atom([1], updated="2026-12-01T00:00:00Z")
    assert publish(server, same_entries, feeds.ATOM_TYPE) is not None  # a new version...
    assert len(delivered(server)) == 1  # ...with nothing new to send
    assert Delivery.objects.filter(content=Content.objects.latest_of(topic)).count() == 0
    # The same whole body again is unchanged (the diff, empty both times, is not compared).
    publish(server, same_entries, feeds.ATOM_TYPE)
    assert Content.objects.count() == 2
    # A new entry after that goes out alone.
    publish(server, feeds.atom([2, 1], updated="2026-12-02T00:00:00Z"), feeds.ATOM_TYPE)
    assert titles(delivered(server)[-1].body) == [titles(feeds.atom([2]))[0]]


@pytest.mark.django_db
@pytest.mark.usefixtures("hub_queue")
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (feeds.billion_laughs(), feeds.RSS_TYPE),
        (b'{"posts": [3, 2, 1]}', "application/json"),
        (b"<rss><channel><item>", feeds.RSS_TYPE),
    ],
)
def test_unsafe_or_other_topics_are_delivered_whole(server, settings, body, content_type):
    settings.PUSH_HUB_FEED_DIFFS = True
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, feeds.rss([1]), feeds.RSS_TYPE)
    publish(server, body, content_type)
    assert delivered(server)[-1].body == body
    assert Content.objects.latest_of(server.url + "/topic").feed_diff is None


@pytest.fixture
def feed_diffs(settings, monkeypatch):
    """PUSH_HUB_FEED_DIFFS on, here and in the worker processes of the worker legs."""
    settings.PUSH_HUB_FEED_DIFFS = True
    monkeypatch.setenv("PUSH_TEST_FEED_DIFFS", "1")


@pytest.mark.django_db(transaction=True)
def test_end_to_end_our_subscriber_gets_only_new_entries(feed_diffs, site, server):
    """Subscriber and hub on the live server, the topic on another 127.0.0.1 server."""
    topic, hub = server.url + "/topic", f"{site}/hub/"
    server.replies["/topic"] = Reply(200, feeds.atom([2, 1]), {"Content-Type": feeds.ATOM_TYPE})
    received = []

    def receiver(sender, notification, **kwargs):
        received.append(notification)

    updated.connect(receiver)
    try:
        subscription = Subscription.objects.subscribe(topic, hub=hub, lease_seconds=3600)
        wait_until(lambda: HubSubscription.objects.filter(topic=topic).exists(), message="hub")
        assert ping_hub(topic, hub_url=hub).status == 202
        wait_until(lambda: len(received) == 1, message="the first notification")
        server.replies["/topic"] = Reply(
            200,
            feeds.atom([3, 2, 1], updated="2026-11-28T00:00:00Z"),
            {"Content-Type": feeds.ATOM_TYPE},
        )
        assert ping_hub(topic, hub_url=hub).status == 202
        wait_until(lambda: len(received) == 2, message="the second notification")
    finally:
        updated.disconnect(receiver)
    assert Subscription.objects.get(pk=subscription.pk).verified
    assert len(titles(received[0])) == 2
    assert titles(received[1]) == [titles(feeds.atom([3]))[0]]
    assert Ping.objects.filter(status=Ping.Status.FETCHED).count() == 2


def deep_entry_feed(depth=5000):
    """An Atom feed whose one entry, with no id nor link, nests ``depth`` elements."""
    nested = b"<x>" * depth + b"deep" + b"</x>" * depth
    return (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Deep</title>\n'
        b"<entry><title>deep</title><content>" + nested + b"</content></entry>\n</feed>\n"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hub_queue")
def test_a_diff_that_fails_delivers_the_whole_feed(live_server, server, settings):
    """A ping over HTTP to the live hub; the entry's hash used to raise RecursionError
    outside the diff's try, and the ping stayed pending, re-run forever."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    settings.PUSH_HUB_FEED_DIFFS = True
    settings.PUSH_HUB_URL = HUB_URL
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    publish(server, feeds.atom([1]), feeds.ATOM_TYPE)
    deep = deep_entry_feed()
    server.replies["/topic"] = Reply(200, deep, {"Content-Type": feeds.ATOM_TYPE})
    ping = urlencode({"hub.mode": "publish", "hub.url": topic}).encode()
    try:
        with urllib.request.urlopen(f"{live_server.url}/hub/", data=ping, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    run_queued()
    assert status == 202
    wait_until(lambda: len(delivered(server)) == 2, message="the whole feed delivered")
    assert delivered(server)[-1].body == deep
    assert Ping.objects.latest("pk").status == Ping.Status.FETCHED
    assert Content.objects.latest_of(topic).feed_diff is None
