from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from django_push.hub.distribution import prune
from django_push.hub.tasks import stale_deliveries, sweep


class Command(BaseCommand):
    help = (
        "Expire ended leases and re-enqueue deliveries that are due but not covered by a live "
        "worker (crashed workers, retries). Run it every few minutes, or run sweep_task."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stale = stale_deliveries().count()
        self.stdout.write(f"{stale} stale delivery(ies) found.")
        expired, enqueued = sweep()
        self.stdout.write(f"{expired} expired subscription(s) removed.")
        contents, intents = prune()
        self.stdout.write(
            f"{contents} old content(s) and {intents} old verification(s) pruned "
            "(PUSH_HUB_RETENTION)."
        )
        self.stdout.write(self.style.SUCCESS(f"{enqueued} fan-out task(s) enqueued."))
