"""A django-push 1.1 database migrates forward in place (SQLite and, in CI, PostgreSQL)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

# The table exactly as django-push 1.1's 0001_initial created it.
SCHEMA_11 = {
    "sqlite": """
        CREATE TABLE "subscriber_subscription" (
            "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
            "hub" varchar(1023) NOT NULL,
            "topic" varchar(1023) NOT NULL,
            "verified" bool NOT NULL,
            "verify_token" varchar(255) NOT NULL,
            "lease_expiration" datetime NULL,
            "secret" varchar(255) NOT NULL
        )""",
    "postgresql": """
        CREATE TABLE "subscriber_subscription" (
            "id" serial NOT NULL PRIMARY KEY,
            "hub" varchar(1023) NOT NULL,
            "topic" varchar(1023) NOT NULL,
            "verified" boolean NOT NULL,
            "verify_token" varchar(255) NOT NULL,
            "lease_expiration" timestamp with time zone NULL,
            "secret" varchar(255) NOT NULL
        )""",
}

ROWS = [
    # hub, topic, verified, lease_expiration, secret
    ("http://hub/", "http://a/", True, "2030-01-01 00:00:00", "s1"),
    ("http://hub/", "http://a/", False, None, ""),  # duplicate 1.1 allowed
    ("http://hub/", "http://a/", True, "2020-01-01 00:00:00", "old"),  # older duplicate
    ("http://hub/", "http://b/", False, None, ""),
    ("https://hub2/", "http://b/", True, None, "s3"),
    # Verified duplicates with and without a lease: SQLite sorts NULL last in a descending
    # order, PostgreSQL first. The dated lease must win on both.
    ("http://hub/", "http://c/", True, None, "no-lease"),
    ("http://hub/", "http://c/", True, "2030-01-01 00:00:00", "dated"),
    ("http://hub/", "http://c/", True, None, "no-lease-newer"),
    # Unverified duplicates: the newest wins.
    ("http://hub/", "http://d/", False, None, "older"),
    ("http://hub/", "http://d/", False, None, "newer"),
]


@pytest.fixture
def at_11_schema(transactional_db):
    """Roll the subscriber app back, then recreate 1.1's table by hand, with 1.1's data."""
    call_command("migrate", "subscriber", "zero", verbosity=0)
    vendor = connection.vendor
    with connection.cursor() as cursor:
        cursor.execute(SCHEMA_11[vendor])
        for hub, topic, verified, lease, secret in ROWS:
            cursor.execute(
                "INSERT INTO subscriber_subscription (hub, topic, verified, verify_token, "
                "lease_expiration, secret) VALUES (%s, %s, %s, '', %s, %s)",
                [hub, topic, verified, lease, secret],
            )
    # A 1.1 database records its one migration as applied.
    executor = MigrationExecutor(connection)
    executor.recorder.record_applied("subscriber", "0001_initial")
    yield
    call_command("migrate", verbosity=0)


def test_11_database_migrates_in_place(at_11_schema):
    call_command("migrate", "subscriber", verbosity=0)
    from django_push.subscriber.models import Subscription

    rows = {(s.hub, s.topic): s for s in Subscription.objects.all()}
    assert sorted(rows) == [
        ("http://hub/", "http://a/"),
        ("http://hub/", "http://b/"),
        ("http://hub/", "http://c/"),
        ("http://hub/", "http://d/"),
        ("https://hub2/", "http://b/"),
    ]
    # The duplicate kept is the verified one with the latest lease.
    assert rows["http://hub/", "http://a/"].secret == "s1"
    assert rows["http://hub/", "http://a/"].verified
    # A dated lease counts as later than none, on every database.
    assert rows["http://hub/", "http://c/"].secret == "dated"
    assert rows["http://hub/", "http://d/"].secret == "newer"
    # Unverified 1.1 rows await the verification of their subscription.
    assert rows["http://hub/", "http://b/"].pending == "subscribe"
    assert rows["https://hub2/", "http://b/"].pending == ""
    # Primary keys are kept.
    assert rows["https://hub2/", "http://b/"].pk == 5

    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(hub="http://hub/", topic="http://a/")


@pytest.mark.django_db
def test_no_pending_migrations_with_big_auto_field(settings):
    assert settings.DEFAULT_AUTO_FIELD == "django.db.models.BigAutoField"
    out = io.StringIO()
    call_command("makemigrations", "subscriber", "push_hub", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()


def test_rollback_to_11_keeps_the_rows_in_11s_table(at_11_schema):
    """docs/upgrading.rst's rollback: ``migrate subscriber 0001`` leaves 1.1's columns and
    the rows (the merged duplicates stay merged)."""
    call_command("migrate", "subscriber", verbosity=0)
    call_command("migrate", "subscriber", "0001", verbosity=0)
    with connection.cursor() as cursor:
        columns = {
            column.name
            for column in connection.introspection.get_table_description(
                cursor, "subscriber_subscription"
            )
        }
        cursor.execute("SELECT hub, topic, verified, secret FROM subscriber_subscription")
        rows = sorted(cursor.fetchall())
    assert columns == {
        *("id", "hub", "topic", "verified", "verify_token", "lease_expiration", "secret")
    }
    assert len(rows) == 5
    assert ("http://hub/", "http://a/", True, "s1") in [(h, t, bool(v), s) for h, t, v, s in rows]


def test_hub_0014_fills_the_diagnostics_key_of_existing_subscriptions(transactional_db):
    # Subscriptions made before 0014 get the key their diagnostics page is looked up by
    # (more than one of the migration's batches of 2,000).
    from django_push.diagnostics import lookup_key

    executor = MigrationExecutor(connection)
    executor.migrate([("push_hub", "0013_host_breakers")])
    old = executor.loader.project_state([("push_hub", "0013_host_breakers")]).apps
    HubSubscription = old.get_model("push_hub", "HubSubscription")
    HubSubscription.objects.bulk_create(
        HubSubscription(
            topic=f"http://publisher.test/{n % 7}",
            callback=f"http://subscriber.test/cb/{n}",
            lease_seconds=60,
            expires_at=timezone.now(),
        )
        for n in range(2005)
    )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([("push_hub", "0014_diagnostics")])
        from django_push.hub.models import HubSubscription as Current

        rows = Current.objects.values_list("topic", "callback", "diagnostics_key")
        assert len(rows) == 2005
        assert all(key == lookup_key(topic, callback) for topic, callback, key in rows)
    finally:
        call_command("migrate", verbosity=0)
