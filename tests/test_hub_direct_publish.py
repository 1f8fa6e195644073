"""Direct publishing, "fat ping" (issue 11, item 5): the publisher POSTs the content itself.

The stranger's attacks go first, over real HTTP to the live server; each checks that nothing
was stored or sent.
"""

from __future__ import annotations

import asyncio
import datetime
import time
import urllib.error
import urllib.request

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db.models import F
from django.utils import timezone

from django_push import signatures
from django_push.checks import check_hub_settings
from django_push.hub.models import Content, Delivery, UsedPublishSignature
from django_push.hub.publishing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PublishRefused,
    apublish_content,
    prune_used_signatures,
    publish_content,
    publish_headers,
)
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import counts, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_queue")]

SECRET = "a-shared-secret-of-more-than-32-characters"
HUB_URL = "https://hub.example/hub/"


@pytest.fixture
def enabled(settings):
    settings.PUSH_HUB_DIRECT_PUBLISH = True
    settings.PUSH_HUB_DIRECT_PUBLISH_SECRET = SECRET
    settings.PUSH_HUB_URL = HUB_URL


@pytest.fixture
def topic(server):
    """A topic with two subscribers (one with a secret) on the recording server."""
    url = server.url + "/topic"
    subscribe(server.url + "/signed", url, secret="sub-secret")
    subscribe(server.url + "/plain", url)
    return url


def send(live_server, topic, body, headers, method="POST"):
    """POST to the hub's direct publish URL over HTTP; returns (status, text)."""
    query = urllib.parse.urlencode({"hub.topic": topic})
    request = urllib.request.Request(
        f"{live_server.url}/hub/publish/?{query}", data=body, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def signed(topic, body=b"<feed/>", content_type="application/atom+xml", **kwargs):
    return publish_headers(SECRET, topic, body, content_type, **kwargs)


def nothing_happened(server):
    assert not Content.objects.exists()
    assert not Delivery.objects.exists()
    assert not [r for r in server.requests if r.method == "POST"]


# The stranger's requests ---------------------------------------------------------------------


def test_off_by_default(live_server, server, topic):
    status, text = send(live_server, topic, b"<feed/>", signed(topic))
    assert status == 404
    assert "Direct publishing is off" in text
    nothing_happened(server)


def test_enabled_but_unauthenticated(live_server, server, topic, enabled):
    status, text = send(live_server, topic, b"<feed/>", {"Content-Type": "application/atom+xml"})
    assert status == 403
    assert f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required" in text
    nothing_happened(server)


@pytest.mark.parametrize(
    "forge",
    [
        "wrong secret",
        "other body",
        "other topic",
        "other content type",
        "other timestamp",
        "sha1 prefix",
        "empty digest",
    ],
)
def test_wrong_signature(live_server, server, topic, enabled, forge):
    body, headers = b"<feed/>", signed(topic)
    if forge == "wrong secret":
        headers = publish_headers("x" * 40, topic, body, "application/atom+xml")
    elif forge == "other body":
        body = b"<feed>evil</feed>"
    elif forge == "other topic":
        headers = signed(topic + "2")
    elif forge == "other content type":
        headers["Content-Type"] = "text/html"
    elif forge == "other timestamp":
        headers[TIMESTAMP_HEADER] = str(int(headers[TIMESTAMP_HEADER]) - 1)
    elif forge == "sha1 prefix":
        headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER].replace("sha256=", "sha1=")
    else:
        headers[SIGNATURE_HEADER] = "sha256="
    status, text = send(live_server, topic, body, headers)
    assert (status, text) == (403, "wrong signature")
    nothing_happened(server)


def test_replayed_request(live_server, server, topic, enabled):
    headers = signed(topic)
    assert send(live_server, topic, b"<feed/>", headers)[0] == 202
    assert Content.objects.count() == 1
    posted = len(server.requests)
    Content.objects.all().delete()  # even once the content is gone, the request is spent

    status, text = send(live_server, topic, b"<feed/>", headers)

    assert (status, text) == (403, "this request was received already")
    assert not Content.objects.exists()
    assert len(server.requests) == posted


def plain_bodies(server):
    return [r.body for r in server.requests if r.method == "POST" and r.path == "/plain"]


@pytest.mark.parametrize("other_process", ["has its own cache", "has no cache"])
def test_replay_to_another_process_is_refused(
    live_server, server, topic, enabled, settings, other_process
):
    now = int(time.time())
    first, second = (
        signed(topic, b"<feed>A</feed>", timestamp=now - 2),
        signed(topic, b"<feed>B</feed>", timestamp=now - 1),
    )
    assert send(live_server, topic, b"<feed>A</feed>", first)[0] == 202
    assert send(live_server, topic, b"<feed>B</feed>", second)[0] == 202
    run_queued()
    # What another process of the hub sees: a cache of its own (LocMemCache), or none.
    if other_process == "has its own cache":
        cache.clear()
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

    replayed = send(live_server, topic, b"<feed>B</feed>", second)
    older = send(live_server, topic, b"<feed>A</feed>", first)
    run_queued()

    assert replayed == (403, "this request was received already")
    assert older == (409, "a direct publish of this topic signed later was received")
    assert plain_bodies(server) == [b"<feed>A</feed>", b"<feed>B</feed>"]
    assert Content.objects.count() == 2


def test_request_signed_before_the_newest_of_its_topic_is_refused(
    live_server, server, topic, enabled
):
    now = int(time.time())
    late = signed(topic, b"<feed>B</feed>", timestamp=now)
    # Signed first, never sent: held back by whoever captured it, then sent after B.
    early = signed(topic, b"<feed>A</feed>", timestamp=now - 5)
    assert send(live_server, topic, b"<feed>B</feed>", late)[0] == 202

    status, text = send(live_server, topic, b"<feed>A</feed>", early)
    run_queued()

    assert (status, text) == (409, "a direct publish of this topic signed later was received")
    assert plain_bodies(server) == [b"<feed>B</feed>"]
    # Same second, other body: a publisher may publish twice in a second.
    same = signed(topic, b"<feed>C</feed>", timestamp=now)
    assert send(live_server, topic, b"<feed>C</feed>", same)[0] == 202
    # Other topics are not held back by this one.
    other = topic.replace("/topic", "/other")
    subscribe(topic.replace("/topic", "/plain2"), other)
    assert send(live_server, other, b"<x/>", signed(other, b"<x/>", timestamp=now - 5))[0] == 202


def test_prune_keeps_what_could_still_be_replayed(live_server, server, topic, enabled):
    now = int(time.time())
    old = signed(topic, b"<feed>A</feed>", timestamp=now - 250)
    assert send(live_server, topic, b"<feed>A</feed>", old)[0] == 202
    assert send(live_server, topic, b"<feed>B</feed>", signed(topic, b"<feed>B</feed>"))[0] == 202
    later = timezone.now() + datetime.timedelta(days=1)

    assert prune_used_signatures(later) == 0  # both are still inside the 300 s window
    UsedPublishSignature.objects.update(signed_at=F("signed_at") - datetime.timedelta(seconds=100))
    assert prune_used_signatures(later) == 1
    assert prune_used_signatures(timezone.now() - datetime.timedelta(days=1)) == 0
    assert UsedPublishSignature.objects.count() == 1


@pytest.mark.parametrize("offset", [-330, 330])  # past the 300 s, whatever the delay
def test_stale_or_future_timestamp(live_server, server, topic, enabled, offset):
    headers = signed(topic, timestamp=int(time.time()) + offset)
    status, text = send(live_server, topic, b"<feed/>", headers)
    assert status == 403
    assert "more than 300 seconds away" in text
    nothing_happened(server)


@pytest.mark.parametrize(
    "junk",
    [
        "soon",
        "9" * 5000,
        "-1e9",
        "{now}          x",  # the age check read 20 characters, the signature all of them
        "+{now}",
        "1_{rest}",
        "\u0661{rest}",  # an Arabic-Indic digit, which int() accepts
    ],
)
def test_malformed_timestamp_is_a_400(live_server, server, topic, enabled, junk):
    now = str(int(time.time()))
    stamp = junk.format(now=now, rest=now[1:])
    headers = {**signed(topic), TIMESTAMP_HEADER: stamp}
    if stamp.isascii():  # http.client sends latin-1 only
        status, text = send(live_server, topic, b"<feed/>", headers)
    else:
        status, text = send_raw(live_server, topic, headers)
    assert (status, text) == (400, f"{TIMESTAMP_HEADER} must be Unix seconds")
    nothing_happened(server)


def send_raw(live_server, topic, headers):
    """The request written byte by byte, for header values that http.client refuses."""
    import socket
    import urllib.parse

    host, port = live_server.url.removeprefix("http://").split(":")
    query = urllib.parse.urlencode({"hub.topic": topic})
    lines = [f"POST /hub/publish/?{query} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Content-Length: 7", "Connection: close", "", ""]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + b"<feed/>")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, text = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), text.decode()


def test_oversized_body(live_server, server, topic, enabled, settings):
    settings.PUSH_HUB_MAX_CONTENT_SIZE = 1000
    body = b"x" * 1001
    status, text = send(live_server, topic, body, signed(topic, body))
    assert status == 413
    assert "larger than 1000 bytes" in text
    nothing_happened(server)


def test_topic_outside_policy(live_server, server, topic, enabled, settings):
    settings.PUSH_HUB_TOPICS = [server.url + "/feeds/"]
    status, text = send(live_server, topic, b"<feed/>", signed(topic))
    assert status == 400
    assert f"topic {topic} is not published through this hub" in text
    nothing_happened(server)


@pytest.mark.parametrize("bad", ["", "ftp://example.com/feed", "http://[::1"])
def test_topic_not_an_http_url(live_server, server, enabled, bad):
    status, text = send(live_server, bad, b"<feed/>", signed(bad))
    assert status == 400
    assert "hub.topic" in text
    nothing_happened(server)


@pytest.mark.parametrize("secret", ["", "short"])
def test_enabled_with_a_short_secret_refuses_everything(
    live_server, server, topic, settings, secret
):
    settings.PUSH_HUB_DIRECT_PUBLISH = True
    settings.PUSH_HUB_DIRECT_PUBLISH_SECRET = secret
    headers = publish_headers(secret, topic, b"<feed/>", "application/atom+xml")
    status, text = send(live_server, topic, b"<feed/>", headers)
    assert status == 503
    assert "not configured" in text
    nothing_happened(server)


def test_only_post(live_server, server, topic, enabled):
    assert send(live_server, topic, None, signed(topic), method="GET")[0] == 405
    nothing_happened(server)


# What an authenticated publisher gets -----------------------------------------------------


def test_signed_content_is_delivered_without_a_fetch(live_server, server, topic, enabled):
    body = b"<feed>fresh</feed>"
    status, text = send(live_server, topic, body, signed(topic, body))
    run_queued()

    assert status == 202
    content = Content.objects.get()
    assert text == f"Publishing content #{content.pk}"
    assert (content.topic, bytes(content.body), content.content_type, content.hub_url) == (
        topic,
        body,
        "application/atom+xml",
        HUB_URL,
    )
    assert not [r for r in server.requests if r.method == "GET"]  # the topic was not fetched
    delivered = {r.path: r for r in server.requests if r.method == "POST"}
    assert set(delivered) == {"/signed", "/plain"}
    for received in delivered.values():
        assert received.body == body
        assert received.headers["Content-Type"] == "application/atom+xml"
        assert f"<{HUB_URL}>" in received.headers["Link"]
    assert signatures.verify("sub-secret", body, delivered["/signed"].headers["X-Hub-Signature"])
    assert "X-Hub-Signature" not in delivered["/plain"].headers
    assert counts(content) == {"delivered": 2, "pending": 0, "failed": 0}


def test_hub_url_from_the_request_names_the_hub_endpoint(
    live_server, server, topic, enabled, settings
):
    settings.PUSH_HUB_URL = None
    settings.ALLOWED_HOSTS = ["localhost"]
    settings.PUSH_HUB_TOPICS = [server.url + "/"]
    live = live_server.url.replace("127.0.0.1", "localhost")
    status, _ = send(type("Live", (), {"url": live}), topic, b"<feed/>", signed(topic))
    assert status == 202
    assert Content.objects.get().hub_url == f"{live}/hub/"


def test_unchanged_content_and_no_subscriber_store_nothing(live_server, server, topic, enabled):
    now = int(time.time())
    assert send(live_server, topic, b"<feed/>", signed(topic, timestamp=now))[0] == 202
    run_queued()
    posted = len(server.requests)
    again = signed(topic, timestamp=now + 1)  # another request, the same content
    status, text = send(live_server, topic, b"<feed/>", again)
    assert (status, text) == (200, "Nothing to deliver: no active subscriber, or unchanged")
    assert Content.objects.count() == 1

    nobody = server.url + "/nobody"
    status, _ = send(live_server, nobody, b"<feed/>", signed(nobody))
    assert status == 200
    assert Content.objects.count() == 1
    assert len(server.requests) == posted


# The Python API ----------------------------------------------------------------------------


def test_publish_content_applies_the_fetch_rules(server, topic, settings):
    settings.PUSH_HUB_URL = HUB_URL
    content = publish_content(topic, b"one", "text/plain")
    run_queued()
    assert content is not None
    assert [r.body for r in server.requests if r.method == "POST"] == [b"one", b"one"]
    assert publish_content(topic, b"one", "text/plain") is None  # unchanged
    assert publish_content(server.url + "/nobody", b"two", "text/plain") is None
    settings.PUSH_HUB_MAX_CONTENT_SIZE = 3
    with pytest.raises(PublishRefused, match="PUSH_HUB_MAX_CONTENT_SIZE") as raised:
        publish_content(topic, b"four", "text/plain")
    assert raised.value.status == 413
    settings.PUSH_HUB_TOPICS = ["https://elsewhere.example/"]
    with pytest.raises(PublishRefused, match="not published through this hub"):
        publish_content(topic, b"two", "text/plain")
    settings.PUSH_HUB_TOPICS = None
    settings.PUSH_HUB_URL = None
    with pytest.raises(PublishRefused, match="PUSH_HUB_URL"):
        publish_content(topic, b"two", "text/plain")
    assert Content.objects.count() == 1
    assert not server.requests[2:]


def test_apublish_content(server, topic, close_async_connections):
    content = asyncio.run(apublish_content(topic, b"async", "text/plain", HUB_URL))
    run_queued()
    assert content is not None
    assert content.hub_url == HUB_URL
    assert sorted(r.path for r in server.requests) == ["/plain", "/signed"]


# System check -------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "x" * 31, None, b"x" * 40])
def test_check_refuses_a_missing_or_short_secret(settings, secret):
    settings.PUSH_HUB_DIRECT_PUBLISH = True
    settings.PUSH_HUB_DIRECT_PUBLISH_SECRET = secret
    [error] = [e for e in check_hub_settings() if e.id == "django_push.E106"]
    assert "at least 32 characters" in error.msg
    with pytest.raises(SystemCheckError, match="E106"):
        call_command("check")


def test_check_passes_when_off_or_with_a_long_secret(settings):
    assert "django_push.E106" not in [e.id for e in check_hub_settings()]
    settings.PUSH_HUB_DIRECT_PUBLISH = True
    settings.PUSH_HUB_DIRECT_PUBLISH_SECRET = "x" * 32
    assert "django_push.E106" not in [e.id for e in check_hub_settings()]


# The documented example -----------------------------------------------------------------------


def test_docs_example(live_server, server, topic, enabled):
    import runpy
    from pathlib import Path

    example = runpy.run_path(
        str(Path(__file__).parent.parent / "docs" / "examples" / "direct_publish_example.py")
    )
    example["publish_from_the_hub_site"](topic, b"<feed>1</feed>")
    status = example["publish_from_elsewhere"](
        live_server.url + "/hub/", SECRET, topic, b"<feed>2</feed>"
    )
    run_queued()
    assert status == 202
    assert [r.body for r in server.requests if r.path == "/plain"] == [
        b"<feed>1</feed>",
        b"<feed>2</feed>",
    ]


def test_escaped_unreserved_characters_name_the_same_topic(live_server, server, enabled):
    # H-4: subscriptions store topics with %7E and the like decoded.
    subscribe(server.url + "/cb", server.url + "/~user/feed")
    escaped = server.url + "/%7Euser/feed"
    status, _ = send(live_server, escaped, b"<feed/>", signed(escaped))
    run_queued()
    assert status == 202
    assert Content.objects.get().topic == server.url + "/~user/feed"
    assert [r.body for r in server.requests if r.path == "/cb"] == [b"<feed/>"]


def test_content_length_not_a_number(live_server, server, topic, enabled):
    import http.client
    import urllib.parse

    netloc = urllib.parse.urlsplit(live_server.url).netloc
    connection = http.client.HTTPConnection(netloc, timeout=10)
    connection.putrequest("POST", "/hub/publish/?hub.topic=" + urllib.parse.quote(topic))
    for name, value in {**signed(topic), "Content-Length": "many"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    assert (response.status, response.read()) == (400, b"Content-Length must be a number")
    connection.close()
    nothing_happened(server)


def test_no_known_hub_url(live_server, server, topic, enabled, settings):
    settings.PUSH_HUB_URL = None
    settings.ALLOWED_HOSTS = ["*"]  # lists no host by name (the live server adds its own)
    settings.SITE_ID = 404  # and no such Site
    status, text = send(live_server, topic, b"<feed/>", signed(topic))
    assert (status, text) == (503, "This hub does not know its public URL (PUSH_HUB_URL)")
    nothing_happened(server)
