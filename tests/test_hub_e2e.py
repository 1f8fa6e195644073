"""Our subscriber and publisher talk to our hub end to end over 127.0.0.1.

Runs with the immediate backend (quick leg), and with real workers when
PUSH_TEST_TASKS=db or rq (the RQ leg in .ci/run, on PostgreSQL and Redis).
"""

from __future__ import annotations

import pytest

from django_push import signatures
from django_push.hub.models import Content, HubSubscription, Ping
from django_push.links import parse_links
from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription
from tests.conftest import wait_until
from tests.hub_queue import hub_queue  # noqa: F401  (a fixture)
from tests.hub_rows import counts
from tests.receiving import receiving

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notifications():
    with receiving(
        lambda sender, notification, request, links, **_: (
            sender.pk,
            notification,
            request.headers,
            links,
        )
    ) as received:
        yield received


def test_subscribe_publish_receive_unsubscribe(site, notifications):
    hub_url, topic = f"{site}/hub/", f"{site}/feed/"

    # Subscribe from the topic URL alone: discovery finds our hub and the feed's self URL.
    subscription = Subscription.objects.subscribe(topic, lease_seconds=3600)
    assert (subscription.hub, subscription.topic) == (hub_url, topic)
    wait_until(
        lambda: Subscription.objects.get(pk=subscription.pk).verified, message="verification"
    )
    subscription.refresh_from_db()
    assert subscription.secret
    assert 3500 < subscription.lease_seconds <= 3600
    # The subscriber is verified when it answers the challenge; the hub activates just after.
    hub_subscription = wait_until(HubSubscription.objects.first, message="hub-side activation")
    assert hub_subscription.callback == subscription.callback_url
    assert hub_subscription.secret == subscription.secret

    # Publish: the hub fetches the feed once and delivers it, signed.
    assert ping_hub(topic).status == 202
    wait_until(lambda: notifications, message="the notification")
    [(pk, body, headers, links)] = notifications
    assert pk == subscription.pk
    content = Content.objects.get()
    assert body == bytes(content.body)
    assert b"<feed" in body
    assert headers["Content-Type"] == content.content_type == "application/atom+xml; charset=utf-8"
    assert signatures.verify(subscription.secret, body, headers["X-Hub-Signature"])
    assert headers["X-Hub-Signature"].startswith("sha256=")
    assert {(link["rel"], link["url"]) for link in links} == {("hub", hub_url), ("self", topic)}
    assert len(parse_links(headers["Link"])) == 2
    wait_until(
        lambda: counts(Content.objects.get())["delivered"] == 1,
        message="the delivery to be recorded",
    )

    # Unsubscribe: verified by the hub, the row goes, and nothing more is delivered.
    subscription.unsubscribe()
    wait_until(lambda: not Subscription.objects.exists(), message="unsubscription")
    wait_until(lambda: not HubSubscription.objects.exists(), message="hub-side removal")
    assert ping_hub(topic).status == 202
    # No subscriber left: the ping is counted as skipped, not stored, and not fetched again.
    assert not Ping.objects.filter(status=Ping.Status.PENDING).exists()
    assert Content.objects.count() == 1
    assert len(notifications) == 1


def test_resubscription_replaces_secret_only_once_verified(site, notifications):
    topic = f"{site}/feed/"
    subscription = Subscription.objects.subscribe(topic)
    wait_until(lambda: HubSubscription.objects.exists(), message="verification")
    old_secret = HubSubscription.objects.get().secret
    assert HubSubscription.objects.get().lease_seconds == 10 * 24 * 3600  # the default lease

    # A forged re-subscription with another secret fails verification: state unchanged (H-6).
    from urllib.parse import urlencode
    from urllib.request import urlopen

    forged = urlencode(
        {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": f"{subscription.callback_url}",
            "hub.secret": "forged",
        }
    ).encode()
    Subscription.objects.filter(pk=subscription.pk).update(pending="")  # not ours: refuse it
    Subscription.objects.filter(pk=subscription.pk).update(verified=False)
    with urlopen(f"{site}/hub/", data=forged) as response:
        assert response.status == 202
    from django_push.hub.models import Intent

    wait_until(
        lambda: Intent.objects.filter(secret="forged").exclude(status="pending").exists(),
        message="the forged intent to be decided",
    )
    assert Intent.objects.get(secret="forged").status == Intent.Status.FAILED
    assert HubSubscription.objects.get().secret == old_secret
