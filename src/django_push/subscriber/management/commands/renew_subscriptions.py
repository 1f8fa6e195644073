from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_push.conf import conf
from django_push.exceptions import PushError
from django_push.subscriber.models import Subscription


class Command(BaseCommand):
    help = "Renew verified subscriptions whose lease ends soon (run it daily, or use the task)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--within",
            type=int,
            default=None,
            help="Renew leases ending within this many seconds (default: PUSH_RENEW_BEFORE, "
            f"{conf.PUSH_RENEW_BEFORE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be renewed; send nothing.",
        )

    def handle(self, *args: Any, within: int | None, dry_run: bool, **options: Any) -> None:
        subscriptions = list(Subscription.objects.expiring(within).order_by("lease_expiration"))
        total = len(subscriptions)
        self.stdout.write(f"{total} subscription(s) to renew.")
        failed = 0
        for number, subscription in enumerate(subscriptions, start=1):
            prefix = f"[{number}/{total}] {subscription.topic} via {subscription.hub}"
            if dry_run:
                self.stdout.write(
                    f"{prefix}: would renew (lease ends {subscription.lease_expiration})"
                )
                continue
            try:
                subscription.subscribe()
            except PushError as exc:
                failed += 1
                self.stderr.write(f"{prefix}: FAILED: {exc}")
            else:
                self.stdout.write(f"{prefix}: requested")
        if failed:
            raise CommandError(f"{failed} of {total} renewal(s) failed; see the messages above.")
        self.stdout.write(self.style.SUCCESS(f"Done: {total - failed} renewal(s) requested."))
