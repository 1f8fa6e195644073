"""Insert verified subscriptions directly: what N verifications would have written.

Subscribing 1,000,000 callbacks through the endpoint would take the bench hours, and its
figures at that size are about fan-out, not intake. So past a size (``hub_deployed.py
--insert``), the bench writes the rows a successful verification leaves behind: the intent,
decided ``verified`` (its reason, its finished time, a claim), and its ``HubSubscription``
(topic, callback, secret, lease, lease end, verified and created times, no failure).

The rows are made by the database itself, a chunk of numbers per statement: ``INSERT ...
SELECT`` over ``generate_series`` on PostgreSQL and over a recursive CTE on SQLite, two
statements (intents, subscriptions) per transaction. Subscription ids ascend with the
subscriber's number. On PostgreSQL both tables are then vacuumed and analysed, as autovacuum
would have done by the time a deployment reached that size: else it starts on a million new
rows in the middle of the measured fan-out, and the planner plans on an empty table's
statistics. Measured: 1,000,000 in about 20 s on PostgreSQL (the ORM's ``bulk_create`` took
21 s per 100,000).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from django_push.hub.models import HubSubscription, Intent, host_of

CHUNK = 250_000  # numbers per statement: on SQLite, how long the write lock is held


class Command(BaseCommand):
    help = "Insert verified subscriptions of callbacks PREFIX<first>..PREFIX<last - 1> to TOPIC."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic")
        parser.add_argument("prefix", help="callback URL up to the subscriber's number")
        parser.add_argument("first", type=int)
        parser.add_argument("last", type=int)
        parser.add_argument("--secret", default="")
        parser.add_argument("--lease", type=int, default=864000)

    def handle(self, *args: Any, **options: Any) -> None:
        topic, prefix, secret, lease = (options[k] for k in ("topic", "prefix", "secret", "lease"))
        first, last = options["first"], options["last"]
        started = time.monotonic()
        now = timezone.now()
        at = connection.ops.adapt_datetimefield_value(now)
        ends = connection.ops.adapt_datetimefield_value(now + datetime.timedelta(seconds=lease))
        callback = ("CAST(%s AS TEXT) || n", prefix)
        # What Intent.objects.decide() and SubscriptionQuerySet.activate() leave behind.
        intent = {
            "mode": ("%s", "subscribe"),
            "topic": ("%s", topic),
            "callback": callback,
            "callback_host": ("%s", host_of(prefix)),
            "secret": ("%s", secret),
            "lease_seconds": ("%s", lease),
            "status": ("%s", Intent.Status.VERIFIED.value),
            "reason": ("%s", "subscribe verified"),
            "created_at": ("%s", at),
            "claim": ("%s", "bench_seed"),
            "finished_at": ("%s", at),
        }
        subscription = {
            "topic": ("%s", topic),
            "callback": callback,
            "secret": ("%s", secret),
            "lease_seconds": ("%s", lease),
            "expires_at": ("%s", ends),
            "created_at": ("%s", at),
            "verified_at": ("%s", at),
            "failures": ("%s", 0),
        }
        for start in range(first, last, CHUNK):
            end = min(start + CHUNK, last) - 1
            with transaction.atomic():
                for model, columns in ((Intent, intent), (HubSubscription, subscription)):
                    insert_series(model, columns, start, end)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in (Intent, HubSubscription):
                    cursor.execute(f"VACUUM (ANALYZE) {table(model)}")
        took = time.monotonic() - started
        self.stdout.write(f"{last - first} subscriptions inserted in {took:.1f} s")


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def insert_series(
    model: type[Model], columns: dict[str, tuple[str, Any]], first: int, last: int
) -> None:
    """One row of ``model`` for each number n in first..last (both included): each column's
    SQL expression (of n and one parameter) with its parameter."""
    if connection.vendor == "postgresql":
        series = "WITH series(n) AS (SELECT generate_series(%s::bigint, %s::bigint))"
    else:
        series = (
            "WITH RECURSIVE series(n) AS (SELECT %s UNION ALL SELECT n + 1 FROM series "
            "WHERE n < %s)"
        )
    names = ", ".join(connection.ops.quote_name(name) for name in columns)
    values = ", ".join(expression for expression, _ in columns.values())
    sql = f"{series} INSERT INTO {table(model)} ({names}) SELECT {values} FROM series"
    with connection.cursor() as cursor:
        cursor.execute(sql, [first, last, *(param for _, param in columns.values())])
