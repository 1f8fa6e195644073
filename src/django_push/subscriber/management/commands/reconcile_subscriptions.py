from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_push.conf import conf
from django_push.subscriber.models import Subscription
from django_push.subscriber.reconcile import POLL_FIELDS, reconcile, reconcile_due


class Command(BaseCommand):
    help = (
        "Poll the topics of subscriptions whose reconciliation is due (PUSH_SUBSCRIBER_RECONCILE), "
        "and send updated for content the hub did not deliver. Run it from cron, or use "
        "reconcile_task."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all",
            action="store_true",
            help="Poll every reconciled subscription now, due or not.",
        )

    def handle(self, *args: Any, all: bool, **options: Any) -> None:
        reconciled = Subscription.objects.reconciled()
        if not conf.PUSH_SUBSCRIBER_RECONCILE and not reconciled.exists():
            raise CommandError(
                "Reconciliation is off: set PUSH_SUBSCRIBER_RECONCILE (seconds between polls), "
                "or give subscriptions their own reconcile_seconds."
            )
        report = reconcile(reconciled.only(*POLL_FIELDS).iterator()) if all else reconcile_due()
        self.stdout.write(f"Reconciliation: {report}.")
        if report.counts["missed"]:
            self.stdout.write(
                f"{report.counts['missed']} topic(s) had content the hub did not deliver."
            )
