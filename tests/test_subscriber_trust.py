"""Nobody but the hub we asked can steer a subscription (issue 8): capability callbacks
(S-7), strict verification (S-12, C-4), forged denials and leases, the move of 1.1 rows.

Everything here goes over real HTTP to a live server on 127.0.0.1; the end-to-end tests use
this project's hub as the attacker's hub.
"""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

import pytest
from django.utils import timezone

from django_push.hub.models import HubSubscription, Intent
from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription
from tests.conftest import wait_until
from tests.hub_queue import hub_queue  # noqa: F401  (a fixture)
from tests.receiving import receiving

pytestmark = pytest.mark.django_db(transaction=True)
TOPIC = "http://example.com/feed"


@pytest.fixture
def notifications():
    with receiving(
        lambda sender, notification, request, **_: (
            sender.pk,
            notification,
            request.get_full_path(),
        )
    ) as received:
        yield received


def fetch(url, data=None):
    """(status, body) of a GET (or a POST of ``data``), whatever the status."""
    try:
        with urllib.request.urlopen(url, data=data) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def active(**fields):
    defaults = {
        "topic": TOPIC,
        "hub": "http://hub.example.com/",
        "verified": True,
        "lease_seconds": 86400,
        "lease_expiration": timezone.now() + datetime.timedelta(days=1),
    }
    return Subscription.objects.create(**{**defaults, **fields})


def path_of(subscription):
    """The callback's path, without the capability."""
    return urlsplit(subscription.callback_url).path


def with_params(url, **params):
    return url + ("&" if "?" in url else "?") + urlencode(params)


def state(subscription):
    row = Subscription.objects.get(pk=subscription.pk)
    return (row.verified, row.pending, row.lease_expiration, row.denied_at, row.secret)


# The hijack of issue 8, through our own hub -------------------------------------------


def test_hijack_through_a_hub_fails_and_deliveries_go_on(site, notifications):
    topic = f"{site}/feed/"
    subscription = Subscription.objects.subscribe(topic, lease_seconds=3600)
    hub_side = wait_until(HubSubscription.objects.first, message="hub-side activation")
    subscription.refresh_from_db()
    assert hub_side.secret == subscription.secret != ""
    before = state(subscription)

    # The attacker knows the whole callback URL (the worst case) and asks the hub, anonymously,
    # to subscribe it again with their own secret and lease.
    forged = urlencode(
        {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": subscription.callback_url,
            "hub.secret": "attacker",
            "hub.lease_seconds": "2147483647",
        }
    ).encode()
    assert fetch(f"{site}/hub/", forged)[0] == 202
    wait_until(
        lambda: Intent.objects.filter(secret="attacker").exclude(status="pending").exists(),
        message="the forged intent to be decided",
    )
    intent = Intent.objects.get(secret="attacker")
    assert intent.status == Intent.Status.FAILED
    assert "404" in intent.reason  # our callback refused to echo
    assert HubSubscription.objects.get().secret == subscription.secret  # the hub kept ours
    assert state(subscription) == before

    # The next delivery is signed with our secret, and accepted.
    assert ping_hub(topic).status == 202
    wait_until(lambda: notifications, message="the next notification")
    assert notifications[0][0] == subscription.pk


def test_guessed_callback_cannot_be_subscribed_at_a_hub(site):
    topic = f"{site}/feed/"
    subscription = Subscription.objects.subscribe(topic)
    wait_until(HubSubscription.objects.first, message="hub-side activation")
    guessed = f"{site}{path_of(subscription)}"
    forged = urlencode(
        {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": guessed, "hub.secret": "x"}
    ).encode()
    assert fetch(f"{site}/hub/", forged)[0] == 202
    wait_until(
        lambda: Intent.objects.filter(secret="x").exclude(status="pending").exists(),
        message="the forged intent to be decided",
    )
    assert Intent.objects.get(secret="x").status == Intent.Status.FAILED
    assert list(HubSubscription.objects.values_list("callback", flat=True)) == [
        subscription.callback_url
    ]


# Guessed URLs --------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 200])
def test_guessed_urls_get_the_404_of_an_unknown_subscription(live_domain, notifications, token):
    subscription = active()
    base = f"{live_domain.url}{path_of(subscription)}"
    url = base if token is None else with_params(base, token=token)
    unknown = f"{live_domain.url}/subscriber/{subscription.pk + 1000}/"
    unknown = unknown if token is None else with_params(unknown, token=token)
    verification = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c"}
    before = state(subscription)

    assert fetch(url, b"content") == fetch(unknown, b"content")
    # Content without a token: 410, so that a hub holding a dead 1.1 URL stops.
    assert fetch(url, b"content")[0] == (410 if token is None else 404)
    assert fetch(with_params(url, **verification)) == fetch(with_params(unknown, **verification))
    assert fetch(with_params(url, **verification))[0] == 404
    assert notifications == []
    assert state(subscription) == before
    # The capability URL itself works.
    assert fetch(subscription.callback_url, b"content")[0] == 200
    assert len(notifications) == 1


def test_guesses_do_not_fill_the_logs(live_domain, caplog):
    subscription = active()
    base = f"{live_domain.url}{path_of(subscription)}"
    caplog.set_level("DEBUG")
    for url, status in ((base, 410), (with_params(base, token="wrong"), 404)):
        assert fetch(url, b"content")[0] == status
    loud = [r for r in caplog.records if r.levelno >= 30]  # WARNING and above
    assert loud == []
    quiet = [
        r
        for r in caplog.records
        if r.name == "django_push.subscriber" and "wrong token" in r.message
    ]
    assert len(quiet) == 2


def test_callback_url_carries_an_unguessable_token(live_domain):
    first, second = active(), active(topic="http://example.com/other")
    for subscription in (first, second):
        query = urlsplit(subscription.callback_url).query
        assert query.startswith("token=")
        assert len(query.removeprefix("token=")) >= 22  # >= 128 bits of base64
    assert first.callback_url.split("=")[1] != second.callback_url.split("=")[1]


# Forged denials and leases ---------------------------------------------------------------


def test_forged_denial_on_a_guessed_url_changes_nothing(live_domain, notifications):
    subscription = active()
    before = state(subscription)
    denial = {"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "forged"}
    assert fetch(with_params(f"{live_domain.url}{path_of(subscription)}", **denial))[0] == 404
    assert state(subscription) == before
    assert fetch(subscription.callback_url, b"still here")[0] == 200
    assert [body for _, body, _ in notifications] == [b"still here"]


@pytest.mark.parametrize("lease", ["0", "2147483647", "-5", "99999999999999999999"])
def test_forged_lease_on_the_capability_url_changes_nothing(live_domain, notifications, lease):
    # Even with the capability: no request of ours is pending, so nothing is verified.
    subscription = active()
    before = state(subscription)
    verification = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "c",
        "hub.lease_seconds": lease,
    }
    assert fetch(with_params(subscription.callback_url, **verification))[0] == 404
    assert state(subscription) == before
    assert fetch(subscription.callback_url, b"content")[0] == 200
    assert len(notifications) == 1


def test_unrequested_unsubscribe_on_the_capability_url_is_404(live_domain):
    subscription = active()
    params = {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "c"}
    assert fetch(with_params(subscription.callback_url, **params))[0] == 404
    assert Subscription.objects.filter(pk=subscription.pk).exists()


# 1.1 rows move to a tokened URL ----------------------------------------------------------


def test_legacy_row_moves_on_renewal_without_duplicate_deliveries(site, notifications):
    topic = f"{site}/feed/"
    # A subscription made by django-push 1.1: no token, known to the hub at /subscriber/<pk>/.
    legacy = Subscription.objects.create(
        topic=topic,
        hub=f"{site}/hub/",
        verified=True,
        secret="s" * 50,
        lease_expiration=timezone.now() + datetime.timedelta(hours=2),
        callback_token=None,
    )
    old_callback = f"{site}/subscriber/{legacy.pk}/"
    assert legacy.callback_url == old_callback
    HubSubscription.objects.create(
        topic=topic,
        callback=old_callback,
        secret=legacy.secret,
        lease_seconds=7200,
        expires_at=timezone.now() + datetime.timedelta(hours=2),
    )
    assert ping_hub(topic).status == 202
    wait_until(lambda: len(notifications) == 1, message="a delivery to the 1.1 callback")
    assert notifications[0][2] == f"/subscriber/{legacy.pk}/"

    # The next renewal moves it.
    from django_push.subscriber.renewal import renew_expiring

    assert renew_expiring() == (1, 0)
    wait_until(
        lambda: not HubSubscription.objects.filter(callback=old_callback).exists(),
        message="the hub to drop the 1.1 callback",
    )
    legacy.refresh_from_db()
    assert legacy.callback_token
    assert legacy.callback_url != old_callback
    assert legacy.legacy_callback == ""
    assert list(HubSubscription.objects.values_list("callback", flat=True)) == [legacy.callback_url]

    assert ping_hub(topic).status == 202
    wait_until(lambda: len(notifications) == 2, message="a delivery to the new callback")
    assert notifications[1][2] == urlsplit(legacy.callback_url)._replace(
        scheme="", netloc=""
    ).geturl().removeprefix("//")
    # The old URL is now gone: 410, should a hub still hold it.
    assert fetch(old_callback, b"content")[0] == 410
    assert len(notifications) == 2


def test_legacy_url_keeps_working_until_the_move(live_domain, notifications):
    legacy = active(callback_token=None)
    assert urlsplit(legacy.callback_url).query == ""
    assert fetch(legacy.callback_url, b"1.1")[0] == 200
    assert len(notifications) == 1


def test_legacy_url_drops_duplicates_once_the_new_callback_is_verified(live_domain, notifications):
    # Between the verification of the new callback and the hub's removal of the old one the
    # hub delivers twice: the old URL answers 2xx and drops its copy.
    moved = active(
        legacy_callback=f"{live_domain.url}/subscriber/0/", legacy_moved_at=timezone.now()
    )
    assert fetch(f"{live_domain.url}{path_of(moved)}", b"copy")[0] == 200
    assert notifications == []
    assert fetch(moved.callback_url, b"original")[0] == 200
    assert [body for _, body, _ in notifications] == [b"original"]


# Bodies over Django's own limit ----------------------------------------------------------


def test_body_over_data_upload_max_memory_size_is_413_naming_it(live_domain, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.PUSH_MAX_BODY_SIZE = 10_000
    subscription = active()
    status, body = fetch(subscription.callback_url, b"x" * 2000)
    assert status == 413
    assert b"DATA_UPLOAD_MAX_MEMORY_SIZE" in body and b"1000" in body
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    status, body = fetch(subscription.callback_url, b"x" * 20_000)
    assert status == 413
    assert b"PUSH_MAX_BODY_SIZE" in body and b"10000" in body


def test_unverified_11_row_cannot_be_subscribed_at_an_attackers_hub(site, notifications):
    # Migration 0003 marks 1.1's unverified rows as awaiting a subscribe verification; their
    # URL is guessable. The attacker subscribes it at their own hub (here, this project's),
    # without a secret, then publishes whatever they like.
    topic = f"{site}/feed/"
    legacy = Subscription.objects.create(
        topic=topic, hub="http://hub.example.com/", pending="subscribe", callback_token=None
    )
    guessed = f"{site}/subscriber/{legacy.pk}/"
    forged = urlencode(
        {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": guessed}
    ).encode()
    assert fetch(f"{site}/hub/", forged)[0] == 202
    wait_until(
        lambda: Intent.objects.exclude(status="pending").exists(),
        message="the forged intent to be decided",
    )
    intent = Intent.objects.get()
    assert (intent.status, "404" in intent.reason) == (Intent.Status.FAILED, True)
    legacy.refresh_from_db()
    assert not legacy.verified and legacy.lease_expiration is None
    assert fetch(guessed, b"forged")[0] == 410
    assert notifications == []


def test_tokenless_url_never_answers_a_subscribe_verification(live_domain, notifications):
    legacy = Subscription.objects.create(
        topic=TOPIC, hub="http://hub.example.com/", pending="subscribe", callback_token=None
    )
    verification = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "c",
        "hub.lease_seconds": "86400",
    }
    assert fetch(with_params(legacy.callback_url, token="guess", **verification))[0] == 404
    assert fetch(with_params(legacy.callback_url, **verification))[0] == 404
    legacy.refresh_from_db()
    assert not legacy.verified and legacy.pending == "subscribe"
    # Its unsubscription, once asked for, is still answered there.
    Subscription.objects.filter(pk=legacy.pk).update(verified=True, pending="unsubscribe")
    unsubscribe = {**verification, "hub.mode": "unsubscribe"}
    assert fetch(with_params(legacy.callback_url, **unsubscribe)) == (200, b"c")
    assert not Subscription.objects.exists()


def test_a_sites_own_route_with_more_url_arguments_works(live_server):
    """1.1's ``CallbackView.get/post`` took ``*args, **kwargs``: a route with one more
    argument than ``pk`` raised TypeError (a 500) once they did not."""
    from django.urls import reverse

    from tests.testapp.views import SiteCallback

    SiteCallback.received.clear()
    subscription = active(pending="subscribe", verified=False)
    url = live_server.url + reverse("site_callback", args=["blog", subscription.pk])
    url = with_params(url, token=subscription.callback_token)
    verification = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "c",
        "hub.lease_seconds": "86400",
    }
    assert fetch(with_params(url, **verification)) == (200, b"c")
    assert fetch(url, b"news") == (200, b"")
    assert SiteCallback.received == [("blog", b"news")]


def test_hub_stops_delivering_to_a_row_the_upgrade_merged_away(site, notifications):
    """Migration 0003 deletes duplicate (hub, topic) rows of 1.1; the hub still delivers to
    their URLs until the answer there makes it stop."""
    topic = f"{site}/feed/"
    kept = Subscription.objects.create(
        topic=topic,
        hub=f"{site}/hub/",
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(hours=2),
        callback_token=None,
    )
    merged_away = f"{site}/subscriber/{kept.pk + 1000}/"
    for callback in (f"{site}/subscriber/{kept.pk}/", merged_away):
        HubSubscription.objects.create(
            topic=topic,
            callback=callback,
            lease_seconds=7200,
            expires_at=timezone.now() + datetime.timedelta(hours=2),
        )
    assert ping_hub(topic).status == 202
    wait_until(lambda: len(notifications) == 1, message="the delivery to the kept row")
    wait_until(
        lambda: not HubSubscription.objects.filter(callback=merged_away).exists(),
        timeout=10,
        message="the hub to drop the merged row's URL",
    )
    assert list(HubSubscription.objects.values_list("callback", flat=True)) == [
        f"{site}/subscriber/{kept.pk}/"
    ]
