from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from django_push.hub.models import Intent, Ping, Span
from django_push.hub.tasks import stale_deliveries, sweep
from django_push.hub.upkeep import prune


class Command(BaseCommand):
    help = (
        "Expire ended leases, re-enqueue work no live worker covers (ranges, deliveries, "
        "verifications "
        "and publish requests of crashed workers, due retries) and prune old records. Run it "
        "every few minutes, or run sweep_task."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stale = stale_deliveries().count()
        ranges = Span.objects.stale().count()
        intents = Intent.objects.stale().count()
        pings = Ping.objects.stale().count()
        self.stdout.write(f"{ranges} stale range(s) and {stale} stale delivery(ies) found.")
        self.stdout.write(
            f"{intents} stale verification(s) and {pings} stale publish request(s) found."
        )
        expired, enqueued = sweep()
        self.stdout.write(f"{expired} expired subscription(s) removed.")
        contents, requests, breakers = prune()
        self.stdout.write(
            f"{contents} old content(s), {requests} old request(s) and {breakers} idle host "
            "breaker(s) pruned (PUSH_HUB_RETENTION)."
        )
        self.stdout.write(self.style.SUCCESS(f"{enqueued} task(s) enqueued."))
