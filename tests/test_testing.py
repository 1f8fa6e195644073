"""django_push.testing.FakeHub: what a user's test of code that subscribes relies on."""

from __future__ import annotations

import pytest

from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated
from django_push.testing import FakeHub

TOPIC = "http://example.com/feed.atom"


@pytest.mark.django_db
def test_records_the_request_then_verifies_and_delivers(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PUSH_INSECURE_SECRETS = True  # the fake hub is plain HTTP; send it a secret anyway
    received = []

    def receiver(sender, notification, **kwargs):
        received.append((sender.pk, notification))

    updated.connect(receiver)
    try:
        with FakeHub() as hub:
            with django_capture_on_commit_callbacks(execute=True):
                subscription = Subscription.objects.subscribe(TOPIC, hub=hub.url)
            assert [r.mode for r in hub.requests] == ["subscribe"]
            assert hub.last.topic == TOPIC
            assert hub.last.callback == subscription.callback_url
            assert hub.last.secret

            answer = hub.verify(client, lease_seconds=3600)
            assert answer.status_code == 200
            subscription.refresh_from_db()
            assert subscription.verified

            assert hub.deliver(client, b"<feed/>").status_code == 200
    finally:
        updated.disconnect(receiver)
    assert received == [(subscription.pk, b"<feed/>")]


@pytest.mark.django_db
def test_a_refusing_hub_is_recorded_in_last_error(django_capture_on_commit_callbacks):
    with (
        FakeHub(status=400, text="topic not allowed") as hub,
        django_capture_on_commit_callbacks(execute=True),
    ):
        subscription = Subscription.objects.subscribe(TOPIC, hub=hub.url)
    subscription.refresh_from_db()
    assert "topic not allowed" in subscription.last_error
    assert not subscription.verified


def test_last_without_a_request_says_so():
    with FakeHub() as hub, pytest.raises(AssertionError, match="received no request"):
        hub.last  # noqa: B018


@pytest.mark.django_db
def test_upgrading_guide_examples(client, django_capture_on_commit_callbacks):
    from docs.examples import upgrading_example as example

    example.test_follow_subscribes(client, django_capture_on_commit_callbacks)
    Subscription.objects.all().delete()
    example.test_refused_subscription(django_capture_on_commit_callbacks)
