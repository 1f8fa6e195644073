"""Leases granted by hubs are clamped (PUSH_SUBSCRIBER_LEASE_RANGE), and so is the renewal
schedule: a huge lease stored before the clamp cannot stop renewals."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from django_push import checks
from django_push.subscriber.models import Subscription, clamp_lease
from tests.servers import Reply
from tests.test_migrations import at_11_schema  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value", [(0, 10), (10, 5), (1, 2**31), "3600", (3600,), (1.5, 10), None, (True, 10)]
)
def test_e009_bad_lease_range(settings, value):
    settings.PUSH_SUBSCRIBER_LEASE_RANGE = value
    assert [m.id for m in checks.check_subscriber_settings()] == ["django_push.E009"]


def test_valid_lease_range_passes(settings):
    settings.PUSH_SUBSCRIBER_LEASE_RANGE = [60, 60]
    assert checks.check_subscriber_settings() == []


def test_clamp(settings):
    settings.PUSH_SUBSCRIBER_LEASE_RANGE = (100, 1000)
    assert [clamp_lease(s) for s in (0, 100, 500, 1000, 2**31 - 1)] == [100, 100, 500, 1000, 1000]


def row(topic, **fields):
    return Subscription.objects.create(topic=topic, hub="http://hub.example/", **fields)


def test_renewal_schedule_follows_the_clamp():
    now = timezone.now()
    soon = row("http://e/soon", verified=True, lease_expiration=now + datetime.timedelta(hours=2))
    later = row("http://e/later", verified=True, lease_expiration=now + datetime.timedelta(days=9))
    # Stored by 1.1 (or before the clamp): 68 years from now.
    huge = row("http://e/huge", verified=True, lease_expiration=now + datetime.timedelta(days=9999))
    unknown = row("http://e/unknown", verified=True)  # a 0.3 hub's 204 told no lease
    row("http://e/unverified", lease_expiration=now)
    assert set(Subscription.objects.expiring()) == {soon, huge, unknown}
    assert later not in Subscription.objects.expiring()


def test_a_0_3_hubs_204_stores_a_clamped_lease(server, settings):
    settings.PUSH_SUBSCRIBER_LEASE_RANGE = (3600, 7200)
    server.default = Reply(204)
    subscription = Subscription.objects.create(topic="http://e/f", hub=server.url)
    subscription.subscribe(lease_seconds=999999)
    subscription.refresh_from_db()
    assert subscription.verified and subscription.lease_seconds == 7200
    assert subscription not in Subscription.objects.expiring(within=60)


# The 1.1 rows after ``migrate`` ------------------------------------------------------------


def test_migrated_11_rows_have_no_token_and_new_rows_each_get_one(at_11_schema):  # noqa: F811
    from django.core.management import call_command

    call_command("migrate", "subscriber", verbosity=0)
    rows = list(Subscription.objects.all())
    assert rows and all(row.callback_token is None for row in rows)
    assert set(Subscription.objects.legacy()) == set(rows)
    # The 1.1 URL, unchanged, until the next renewal.
    assert rows[0].callback_url == f"http://testserver.com/subscriber/{rows[0].pk}/"
    new = [row(f"http://e/{n}") for n in range(3)]
    assert len({subscription.callback_token for subscription in new}) == 3
    assert all(len(subscription.callback_token) >= 22 for subscription in new)
