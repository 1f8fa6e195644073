"""The callback view: verification of intent (5.3), denial (5.2), content distribution (7)."""

from __future__ import annotations

import datetime
import logging
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from django_push import signatures
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated
from django_push.subscriber.views import CallbackView

pytestmark = pytest.mark.django_db
TOPIC = "http://example.com/feed"
SUBSCRIBE = {
    "hub.mode": "subscribe",
    "hub.topic": TOPIC,
    "hub.challenge": "c",
    "hub.lease_seconds": "5",
}


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append((sender, kwargs))

    updated.connect(receiver)
    yield calls
    updated.disconnect(receiver)


def make(**fields):
    defaults = {"topic": TOPIC, "hub": "http://hub.example.com"}
    return Subscription.objects.create(**{**defaults, **fields})


def active(**fields):
    return make(
        verified=True, lease_expiration=timezone.now() + datetime.timedelta(days=1), **fields
    )


def capability(sub):
    """The callback URL of ``sub``, token included, without scheme and host."""
    url = reverse("subscriber_callback", args=[sub.pk])
    return f"{url}?token={sub.callback_token}" if sub.callback_token else url


def verify(client, sub, **params):
    token = {"token": sub.callback_token} if sub.callback_token else {}
    return client.get(reverse("subscriber_callback", args=[sub.pk]), {**token, **params})


def deliver(client, sub, body=b"foo", **headers):
    return client.post(capability(sub), data=body, content_type="text/plain", headers=headers)


# Verification of intent --------------------------------------------------------------


def test_subscribe_verification_over_http(live_server):
    sub = make(pending="subscribe")
    query = urlencode(
        {
            "hub.mode": "subscribe",
            "hub.topic": TOPIC,
            "hub.challenge": "c-1_2.3",
            "hub.lease_seconds": "864000",
        }
    )
    url = f"{live_server.url}{capability(sub)}&{query}"
    with urllib.request.urlopen(url) as response:
        assert response.status == 200
        assert response.read() == b"c-1_2.3"
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.headers["X-Content-Type-Options"] == "nosniff"  # S-13
    sub.refresh_from_db()
    assert sub.verified and sub.pending == ""
    assert sub.lease_seconds == 864000
    delta = sub.lease_expiration - timezone.now()
    assert abs(delta.total_seconds() - 864000) < 5  # S-14: the hub's lease is stored


def test_verification_of_unknown_subscription_is_404(client):
    response = client.get("/subscriber/999/", {"hub.mode": "subscribe", "hub.topic": TOPIC})
    assert response.status_code == 404


def test_wrong_topic_is_404_and_leaves_pending_request(client):
    sub = make(pending="subscribe")
    params = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC + "x",
        "hub.challenge": "c",
        "hub.lease_seconds": "5",
    }
    response = verify(client, sub, **params)
    assert response.status_code == 404  # S-12, websub.rocks 205
    sub.refresh_from_db()
    assert sub.pending == "subscribe" and not sub.verified


def test_unknown_mode_is_404(client):
    sub = make(pending="subscribe")
    response = verify(
        client, sub, **{"hub.mode": "bogus", "hub.topic": TOPIC, "hub.challenge": "c"}
    )
    assert response.status_code == 404


def test_missing_parameters_are_400_with_reason(client):
    response = verify(client, make())
    assert response.status_code == 400
    assert response.content == b"Missing parameters: hub.mode, hub.topic"
    sub = make(topic="http://example.com/other", pending="subscribe")
    response = verify(client, sub, **{"hub.mode": "subscribe", "hub.topic": sub.topic})
    assert response.content == b"Missing parameters: hub.challenge"


@pytest.mark.parametrize(
    ("lease", "status", "reason"),
    [
        (None, 400, b"Missing hub.lease_seconds parameter"),
        ("12a", 400, b"hub.lease_seconds must be an integer"),
    ],
)
def test_bad_lease_on_verification(client, lease, status, reason):
    sub = make(pending="subscribe")
    params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c"}
    if lease is not None:
        params["hub.lease_seconds"] = lease
    response = verify(client, sub, **params)
    assert (response.status_code, response.content) == (status, reason)
    sub.refresh_from_db()
    assert not sub.verified


def test_too_long_challenge_is_refused(client):
    sub = make(pending="subscribe")
    params = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "c" * 2000,
        "hub.lease_seconds": "1",
    }
    assert verify(client, sub, **params).status_code == 400


@pytest.mark.parametrize("challenge", ["a\x00b", "line\nbreak", "\x07", "\x1b[31m"])
def test_binary_challenge_is_refused_and_keeps_the_request(client, challenge):
    # S-13: the echo is text; control characters are refused, nothing changes.
    sub = make(pending="subscribe")
    response = verify(client, sub, **{**SUBSCRIBE, "hub.challenge": challenge})
    assert response.status_code == 400
    assert b"printable" in response.content
    sub.refresh_from_db()
    assert (sub.verified, sub.pending) == (False, "subscribe")
    assert verify(client, sub, **{**SUBSCRIBE, "hub.challenge": "épreuve 1"}).status_code == 200


def test_unrequested_subscribe_verification_is_404(client):
    sub = make()  # nothing pending, not verified
    params = SUBSCRIBE
    assert verify(client, sub, **params).status_code == 404
    sub.refresh_from_db()
    assert not sub.verified


def test_hub_reverification_of_active_subscription_is_404(client, caplog):
    # C-4 (revised): a re-verification nobody asked for is how a stranger would swap in their
    # own secret at the hub; renewals are ours, so they are pending when the hub verifies.
    sub = active(lease_seconds=86400)
    params = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "c",
        "hub.lease_seconds": "7200",
    }
    with caplog.at_level(logging.INFO, logger="django_push"):
        response = verify(client, sub, **params)
    assert response.status_code == 404
    assert "unrequested subscribe verification" in caplog.text
    sub.refresh_from_db()
    assert sub.lease_seconds == 86400
    assert sub.verified


@pytest.mark.parametrize(("granted", "stored"), [("1", 3600), ("7200", 7200), ("9" * 30, 2592000)])
def test_granted_lease_is_clamped(client, settings, granted, stored):
    settings.PUSH_SUBSCRIBER_LEASE_RANGE = (3600, 2592000)
    sub = make(pending="subscribe")
    assert verify(client, sub, **{**SUBSCRIBE, "hub.lease_seconds": granted}).status_code == 200
    sub.refresh_from_db()
    assert sub.lease_seconds == stored
    delta = sub.lease_expiration - timezone.now()
    assert abs(delta.total_seconds() - stored) < 5


def test_unrequested_unsubscribe_is_404_and_keeps_the_row(client):
    sub = active()
    response = verify(
        client, sub, **{"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "c"}
    )
    assert response.status_code == 404
    assert Subscription.objects.filter(pk=sub.pk).exists()


def test_requested_unsubscribe_deletes_the_row(client):
    sub = active(pending="unsubscribe")
    response = verify(
        client, sub, **{"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "bye"}
    )
    assert (response.status_code, response.content) == (200, b"bye")
    assert not Subscription.objects.filter(pk=sub.pk).exists()


@pytest.mark.parametrize("lease", ["abc", "-1", "", "99999999999999999999999"])
def test_unsubscribe_verification_ignores_the_lease(client, lease):
    # S-11: hub.lease_seconds MUST be ignored for unsubscribe, even when it is no number.
    sub = active(pending="unsubscribe")
    params = {
        "hub.mode": "unsubscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "bye",
        "hub.lease_seconds": lease,
    }
    response = verify(client, sub, **params)
    assert (response.status_code, response.content) == (200, b"bye")
    assert not Subscription.objects.filter(pk=sub.pk).exists()


def test_subscribe_verification_while_unsubscribe_pending_is_404(client):
    sub = active(pending="unsubscribe")
    params = SUBSCRIBE
    assert verify(client, sub, **params).status_code == 404


def test_legacy_verify_token_must_match(client):
    sub = make(pending="subscribe", verify_token="tok")
    params = SUBSCRIBE
    assert verify(client, sub, **params, **{"hub.verify_token": "nope"}).status_code == 404
    assert verify(client, sub, **params, **{"hub.verify_token": "tok"}).status_code == 200


def test_denial_is_recorded(client, caplog):
    sub = make(pending="subscribe")
    response = verify(
        client, sub, **{"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "not on my watch"}
    )
    assert response.status_code == 200  # S-15, no challenge needed
    sub.refresh_from_db()
    assert not sub.verified and sub.pending == ""
    assert sub.denied_reason == "not on my watch"
    assert sub.denied_at is not None
    assert "not on my watch" in caplog.text


def test_denial_of_an_active_subscription_stops_content(client, received):
    # S-15: a denial may arrive at any time, even after the hub accepted the subscription.
    sub = active()
    assert deliver(client, sub, b"before").status_code == 200
    assert [kwargs["notification"] for _, kwargs in received] == [b"before"]
    response = verify(
        client, sub, **{"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "revoked"}
    )
    assert response.status_code == 200
    sub.refresh_from_db()
    assert not sub.verified and not sub.is_active
    assert sub.pending == ""
    assert sub.denied_reason == "revoked"
    assert sub.denied_at is not None
    assert not Subscription.objects.active().filter(pk=sub.pk).exists()
    assert deliver(client, sub, b"after").status_code == 410
    assert [kwargs["notification"] for _, kwargs in received] == [b"before"]


# Content distribution ----------------------------------------------------------------


def test_content_without_secret_fires_signal(client, received):
    sub = active()
    response = deliver(client, sub, b"foo")
    assert response.status_code == 200
    [(sender, kwargs)] = received
    assert sender == sub
    assert kwargs["notification"] == b"foo"
    assert kwargs["links"] is None
    assert kwargs["request"].body == b"foo"
    sub.refresh_from_db()
    assert sub.last_notification_at is not None


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_valid_signatures_over_http(live_server, received, algorithm):
    sub = active(secret="lol")
    body = b"<feed>signed</feed>"
    request = urllib.request.Request(
        f"{live_server.url}{capability(sub)}",
        data=body,
        headers={
            "X-Hub-Signature": signatures.sign("lol", body, algorithm),
            "Content-Type": "text/xml",
        },
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert [kwargs["notification"] for _, kwargs in received] == [body]


@pytest.mark.parametrize("header", ["sha1=deadbeef", "md5=abc", "sha256", "", "sha256=" + "0" * 64])
def test_wrong_signature_is_dropped_with_2xx_and_logged(client, received, caplog, header):
    sub = active(secret="lol")
    with caplog.at_level(logging.WARNING, logger="django_push"):
        response = deliver(client, sub, b"foo", X_Hub_Signature=header)
    if header:
        assert response.status_code == 200  # S-20: nothing to learn by probing
    else:
        assert response.status_code == 400  # an empty header is a missing signature
    assert received == []
    assert caplog.records
    expected = signatures.sign("lol", b"foo", "sha1").split("=")[1]
    assert expected not in caplog.text  # 1.1 logged the expected digest


def test_missing_signature_with_secret_is_4xx(client, received):
    response = deliver(client, active(secret="lol"), b"foo")
    assert response.status_code == 400  # S-21, websub.rocks 302
    assert received == []


def test_unverified_or_expired_subscription_gets_no_signal(client, received):
    expired = make(verified=True, lease_expiration=timezone.now() - datetime.timedelta(seconds=1))
    unverified = make(topic="http://example.com/2", pending="subscribe")
    assert deliver(client, expired).status_code == 410
    assert deliver(client, unverified).status_code == 410
    assert received == []


def test_unknown_callback_is_404_with_a_token_and_410_without(client, received):
    def post(url):
        return client.post(url, data=b"x", content_type="text/plain").status_code

    assert post("/subscriber/424242/?token=guess") == 404
    # Only a hub still holding a 1.1 URL delivers there: 410 makes it stop.
    assert post("/subscriber/424242/") == 410
    moved = active()  # its tokenless URL is gone too, once the hub dropped it
    assert post(f"/subscriber/{moved.pk}/") == 410
    assert post(f"/subscriber/{moved.pk}/?token=guess") == 404
    assert received == []


def test_body_over_limit_is_413_and_touches_nothing(client, received, settings):
    settings.PUSH_MAX_BODY_SIZE = 10
    sub = active()
    response = deliver(client, sub, b"x" * 11)
    assert response.status_code == 413
    assert received == []
    sub.refresh_from_db()
    assert sub.last_notification_at is None


def test_body_over_django_upload_limit_is_413(client, received, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5
    settings.PUSH_MAX_BODY_SIZE = 100
    response = deliver(client, active(), b"x" * 50)
    assert response.status_code == 413
    assert response.content == b"Body over 5 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
    assert received == []


def test_links_are_parsed_and_malformed_links_do_not_raise(client, received):
    sub = active()
    deliver(
        client,
        sub,
        Link='<http://hub.example.com/>; rel="hub", <http://example.com/feed>; rel="self"',
    )
    deliver(client, sub, Link='garbage, <unterminated; rel="self", ;;;')
    first, second = (kwargs["links"] for _, kwargs in received)
    assert {"url": "http://example.com/feed", "rel": "self"} in first
    assert {"url": "http://hub.example.com/", "rel": "hub"} in first
    assert isinstance(second, list)


def test_subscription_identified_by_callback_not_link_header(client, received):
    # S-19: the Link header's self URL may differ from the subscribed topic.
    sub = active()
    deliver(client, sub, Link='<http://elsewhere.example/>; rel="self"')
    assert received[0][0] == sub


def test_handle_subscription_hook(client, settings):
    seen = {}

    class Hook(CallbackView):
        def handle_subscription(self):
            seen.update(request=self.request, subscription=self.subscription, links=self.links)

    sub = active()
    request = (
        __import__("django.test", fromlist=["RequestFactory"])
        .RequestFactory()
        .post(
            "/",
            data=b"body",
            content_type="text/plain",
            headers={"Link": '<http://x/>; rel="self"'},
        )
    )
    request.GET = request.GET.copy()
    request.GET["token"] = sub.callback_token
    response = Hook.as_view()(request, pk=sub.pk)
    assert response.status_code == 200
    assert seen["subscription"] == sub
    assert seen["request"].body == b"body"
    assert seen["links"] == [{"url": "http://x/", "rel": "self"}]


def test_other_methods_are_not_allowed(client):
    sub = active()
    assert client.put(reverse("subscriber_callback", args=[sub.pk])).status_code == 405


def test_the_callback_lookup_loads_what_the_orm_loads(django_assert_num_queries):
    """``for_callback`` reuses compiled SQL as a raw query: its values still go through the
    fields' converters (datetimes, booleans), and it costs one query."""
    from django_push.subscriber.views import CONTENT_FIELDS, VERIFICATION_FIELDS

    row = Subscription.objects.create(
        hub="http://hub.example.com/",
        topic="http://example.com/feed",
        verified=True,
        secret="s3cret",
        lease_expiration=timezone.now() + datetime.timedelta(days=1),
        last_notification_at=timezone.now(),
    )
    for fields in (CONTENT_FIELDS, VERIFICATION_FIELDS):
        expected = Subscription.objects.only(*fields).get(pk=row.pk)
        with django_assert_num_queries(1):
            found = Subscription.objects.for_callback(row.pk, fields)
            assert found is not None
            loaded = {name: getattr(found, name) for name in fields}
        assert loaded == {name: getattr(expected, name) for name in fields}
        assert found.pk == row.pk and type(found.verified) is bool
    assert Subscription.objects.for_callback(row.pk + 1, CONTENT_FIELDS) is None
