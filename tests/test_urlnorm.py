"""H-4: hubs decode percent-escapes of unreserved characters, so equal URLs are one topic;
our subscriber accepts the decoded topic in a verification of a topic it spelled escaped."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_push.hub.models import Intent, Ping
from django_push.subscriber.models import Subscription
from django_push.urlnorm import decode_unreserved, same_url
from tests.hub_queue import hub_queue  # noqa: F401  (a fixture)

UNRESERVED = set(string.ascii_letters + string.digits + "-._~")


@pytest.mark.parametrize(
    ("given_url", "decoded"),
    [
        ("http://h/%7Euser/%41%62%2d%2E%5f", "http://h/~user/Ab-._"),
        ("http://h/a%2Fb?q=%26&r=%3D#%23", "http://h/a%2Fb?q=%26&r=%3D#%23"),  # reserved: kept
        ("http://h/%20%25%zz%4", "http://h/%20%25%zz%4"),  # not unreserved, or not an escape
        ("http://h/%2541", "http://h/%2541"),  # %25 is "%", reserved: kept, so no %41 appears
        ("http://h/%%34%31", "http://h/A"),  # malformed: decoded until nothing changes
    ],
)
def test_decode_unreserved(given_url, decoded):
    assert decode_unreserved(given_url) == decoded


@given(st.text(string.printable, max_size=60) | st.from_regex(r"[a/%0-9A-Fa-f~]{0,30}"))
def test_decoding_is_idempotent_and_changes_only_escapes(url):
    once = decode_unreserved(url)
    assert decode_unreserved(once) == once
    assert same_url(url, once)
    # No escape of an unreserved character is left ...
    for escape in re.findall(r"%([0-9A-Fa-f]{2})", once):
        assert chr(int(escape, 16)) not in UNRESERVED, (url, once)
    # ... and every character that is neither unreserved nor "%" is kept, in order.
    kept = [c for c in url if c not in UNRESERVED and c != "%"]
    assert kept == [c for c in once if c not in UNRESERVED and c != "%"]


@pytest.mark.django_db
def test_hub_stores_and_matches_the_decoded_topic(client, settings, hub_queue):  # noqa: F811
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    response = client.post(
        "/hub/",
        {
            "hub.mode": "subscribe",
            "hub.callback": "http://127.0.0.1/cb/%7Eme",
            "hub.topic": "http://testserver/%7Euser/feed",
        },
    )
    assert response.status_code == 202
    intent = Intent.objects.get()
    assert (intent.topic, intent.callback) == (
        "http://testserver/~user/feed",
        "http://127.0.0.1/cb/~me",
    )
    # A publish of either spelling names the same topic (followed: an unfollowed topic
    # would be counted as skipped, not stored).
    from tests.hub_rows import subscribe

    subscribe("http://127.0.0.1/cb/~me", intent.topic)
    client.post("/hub/", {"hub.mode": "publish", "hub.url": "http://testserver/%7euser/feed"})
    client.post("/hub/", {"hub.mode": "publish", "hub.url": "http://testserver/~user/feed"})
    assert set(Ping.objects.values_list("topic", flat=True)) == {"http://testserver/~user/feed"}


@pytest.mark.django_db
def test_subscriber_accepts_the_decoded_topic_in_a_verification(client):
    subscription = Subscription.objects.create(
        hub="https://hub.example/", topic="http://example.com/%7Euser/feed", pending="subscribe"
    )
    params = {
        "token": subscription.callback_token,
        "hub.mode": "subscribe",
        "hub.challenge": "x",
        "hub.lease_seconds": "60",
    }
    url = f"/subscriber/{subscription.pk}/"
    assert (
        client.get(url, {**params, "hub.topic": "http://example.com/~other/feed"}).status_code
        == 404
    )
    response = client.get(url, {**params, "hub.topic": "http://example.com/~user/feed"})
    assert (response.status_code, response.content) == (200, b"x")
