from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_push import protocol
from django_push.conf import conf
from django_push.exceptions import PushError
from django_push.subscriber.models import Subscription
from django_push.subscriber.renewal import (
    give_tokens_to_unverified_legacy_rows,
    send_each,
    to_renew,
)


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
            "--legacy",
            action="store_true",
            help="Also renew now every subscription still on a django-push 1.1 callback URL "
            "(no token), which moves it to an unguessable URL.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be renewed; send nothing.",
        )

    def handle(
        self, *args: Any, within: int | None, legacy: bool, dry_run: bool, **options: Any
    ) -> None:
        subscriptions = to_renew(within, legacy=legacy)
        total = len(subscriptions)
        self.stdout.write(f"{total} subscription(s) to renew.")
        position = {subscription.pk: number for number, subscription in enumerate(subscriptions, 1)}

        def prefix(subscription: Subscription) -> str:
            number = position[subscription.pk]
            return f"[{number}/{total}] {subscription.topic} via {subscription.hub}"

        if dry_run:
            for subscription in subscriptions:
                self.stdout.write(
                    f"{prefix(subscription)}: would renew "
                    f"(lease ends {subscription.lease_expiration})"
                )
            return

        def report(subscription: Subscription, error: PushError | None) -> None:
            if error is None:
                self.stdout.write(f"{prefix(subscription)}: requested")
            else:
                self.stderr.write(f"{prefix(subscription)}: FAILED: {error}")

        _sent, failed = send_each(subscriptions, protocol.SUBSCRIBE, report)
        if legacy:
            tokens = give_tokens_to_unverified_legacy_rows()
            self.stdout.write(f"{tokens} unverified 1.1 subscription(s) given a token.")
        if failed:
            raise CommandError(f"{failed} of {total} renewal(s) failed; see the messages above.")
        self.stdout.write(self.style.SUCCESS(f"Done: {total - failed} renewal(s) requested."))
