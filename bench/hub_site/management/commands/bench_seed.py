"""Insert verified subscriptions directly: what N verifications would have written.

Subscribing 100,000 callbacks through the endpoint would take the bench most of an hour, and
its figures at that size are about fan-out, not intake. So past a size, ``hub_deployed.py``
writes the rows a successful verification leaves behind (the intent, decided ``verified``,
and its ``HubSubscription``) in bulk, through the hub's own models.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from django_push.hub.models import HubSubscription, Intent, host_of

CHUNK = 5000


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
        host = host_of(prefix)
        for start in range(options["first"], options["last"], CHUNK):
            numbers = range(start, min(start + CHUNK, options["last"]))
            now = timezone.now()
            with transaction.atomic():
                Intent.objects.bulk_create(
                    Intent(
                        mode="subscribe",
                        topic=topic,
                        callback=f"{prefix}{n}",
                        callback_host=host,
                        secret=secret,
                        lease_seconds=lease,
                        status=Intent.Status.VERIFIED,
                        reason="inserted by the benchmark",
                        finished_at=now,
                    )
                    for n in numbers
                )
                HubSubscription.objects.bulk_create(
                    HubSubscription(
                        topic=topic,
                        callback=f"{prefix}{n}",
                        secret=secret,
                        lease_seconds=lease,
                        expires_at=now + datetime.timedelta(seconds=lease),
                        verified_at=now,
                    )
                    for n in numbers
                )
        self.stdout.write(f"{options['last'] - options['first']} subscriptions inserted")
