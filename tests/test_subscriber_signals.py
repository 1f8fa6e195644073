"""Lifecycle signals: how a caller learns what the background request to the hub led to."""

from __future__ import annotations

import datetime
import logging
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.utils import timezone

from django_push.subscriber import signals
from django_push.subscriber.models import Subscription, SubscriptionError
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)
TOPIC = "http://example.com/feed"
NAMES = ["subscription_verified", "subscription_denied", "subscription_failed"]


@pytest.fixture
def sent():
    """Every lifecycle signal received, as (name, kwargs)."""
    received = []
    receivers = {}
    for name in [*NAMES, "subscription_removed"]:

        def receiver(sender, signal, name=name, **kwargs):
            assert sender is Subscription
            received.append((name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield received
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def get(url, **params):
    try:
        with urllib.request.urlopen(f"{url}&{urlencode(params)}") as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def make(**fields):
    return Subscription.objects.create(**{"topic": TOPIC, "hub": "http://hub.example/", **fields})


def test_verified_after_the_hubs_verification(live_domain, sent):
    subscription = make(pending="subscribe")
    params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c"}
    assert get(subscription.callback_url, **params, **{"hub.lease_seconds": "86400"}) == (
        200,
        b"c",
    )
    [(name, kwargs)] = sent
    assert name == "subscription_verified"
    assert kwargs["subscription"].pk == subscription.pk
    assert kwargs["lease_seconds"] == 86400
    # A second verification of the same request: not pending any more, no signal.
    assert get(subscription.callback_url, **params, **{"hub.lease_seconds": "86400"})[0] == 404
    assert len(sent) == 1


def test_removed_after_the_hub_verifies_the_unsubscription(live_domain, sent):
    subscription = make(verified=True, pending="unsubscribe")
    params = {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "bye"}
    assert get(subscription.callback_url, **params) == (200, b"bye")
    [(name, kwargs)] = sent
    assert name == "subscription_removed"
    assert (kwargs["subscription"].pk, kwargs["reason"]) == (subscription.pk, "unsubscribed")


def test_denied_on_the_capability_url_is_recorded_logged_and_signalled(live_domain, sent, caplog):
    subscription = make(verified=True)
    with caplog.at_level(logging.WARNING, logger="django_push"):
        status, _ = get(
            subscription.callback_url,
            **{"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "no"},
        )
    assert status == 200
    assert "denied" in caplog.text and "no" in caplog.text
    [(name, kwargs)] = sent
    assert (name, kwargs["reason"]) == ("subscription_denied", "no")
    subscription.refresh_from_db()
    assert not subscription.verified and subscription.denied_reason == "no"


def test_denial_on_a_guessable_11_url_is_refused(live_domain, sent, caplog):
    legacy = make(
        verified=True,
        callback_token=None,
        lease_expiration=timezone.now() + datetime.timedelta(days=1),
    )
    denial = {"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "forged"}
    with caplog.at_level(logging.WARNING, logger="django_push"):
        assert get(legacy.callback_url + "?x=1", **denial)[0] == 404
    assert "guessable" in caplog.text
    legacy.refresh_from_db()
    assert legacy.verified and legacy.denied_at is None
    assert sent == []


def test_failed_with_the_hubs_status_and_text(server, sent):
    server.default = Reply(403, b"topic not allowed")
    subscription = make(hub=server.url)
    with pytest.raises(SubscriptionError):
        subscription.subscribe()
    [(name, kwargs)] = sent
    assert name == "subscription_failed"
    assert kwargs["mode"] == "subscribe"
    assert kwargs["status"] == 403
    assert "topic not allowed" in kwargs["text"]


def test_failed_without_status_when_the_hub_is_unreachable(unused_tcp_port, sent):
    subscription = make(hub=f"http://127.0.0.1:{unused_tcp_port}/")
    with pytest.raises(SubscriptionError):
        subscription.unsubscribe()
    [(name, kwargs)] = sent
    assert (name, kwargs["mode"], kwargs["status"]) == ("subscription_failed", "unsubscribe", None)


def test_failed_through_the_background_task(server, sent, settings):
    # Subscribing through the manager raises nothing (a task sends the request): the signal
    # is how the caller learns that the hub refused. The immediate backend runs the task
    # in this process, where the receiver listens, whatever PUSH_TEST_TASKS says.
    from importlib.util import find_spec

    package = "django.tasks" if find_spec("django.tasks") else "django_tasks"
    settings.TASKS = {"default": {"BACKEND": f"{package}.backends.immediate.ImmediateBackend"}}
    server.default = Reply(400, b"bad lease")
    Subscription.objects.subscribe(TOPIC, hub=server.url)
    [(name, kwargs)] = sent
    assert (name, kwargs["status"]) == ("subscription_failed", 400)


def test_nothing_is_sent_when_the_transaction_rolls_back(sent):
    subscription = make(pending="subscribe")
    with pytest.raises(RuntimeError), transaction.atomic():
        assert subscription.confirm_subscription(3600)
        assert sent == []  # not before the commit
        raise RuntimeError
    assert sent == []
    subscription.refresh_from_db()
    assert not subscription.verified


def test_a_raising_receiver_is_logged_and_the_others_still_run(live_domain, sent, caplog):
    def broken(**kwargs):
        raise ValueError("receiver bug")

    signals.subscription_verified.connect(broken)
    try:
        subscription = make(pending="subscribe")
        with caplog.at_level(logging.ERROR, logger="django_push"):
            status, _ = get(
                subscription.callback_url,
                **{
                    "hub.mode": "subscribe",
                    "hub.topic": TOPIC,
                    "hub.challenge": "c",
                    "hub.lease_seconds": "3600",
                },
            )
    finally:
        signals.subscription_verified.disconnect(broken)
    assert status == 200  # the hub's verification succeeded all the same
    assert [name for name, _ in sent] == ["subscription_verified"]
    assert "subscription_verified" in caplog.text and "receiver bug" in caplog.text


# The docs' receivers ----------------------------------------------------------------------


def test_docs_lifecycle_receivers(server, live_domain):
    from docs.examples import subscriber_example as example

    example.outcomes.clear()
    server.default = Reply(500, b"hub down")
    subscription = make(hub=server.url)
    with pytest.raises(SubscriptionError):
        subscription.subscribe()
    Subscription.objects.filter(pk=subscription.pk).update(pending="subscribe")
    subscription.refresh_from_db()
    params = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c"}
    assert get(subscription.callback_url, **params, **{"hub.lease_seconds": "7200"})[0] == 200
    assert get(subscription.callback_url, **{"hub.mode": "denied", "hub.topic": TOPIC})[0] == 200
    assert example.outcomes == [
        ("failed", TOPIC, 500),
        ("verified", TOPIC, 7200),
        ("denied", TOPIC, ""),
    ]
