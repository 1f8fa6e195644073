from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Count

from django_push.hub.models import Content, Delivery, HubSubscription, Intent, Ping


class Command(BaseCommand):
    help = "Show the hub's subscriptions, pending verifications, contents and deliveries."

    def handle(self, *args: Any, **options: Any) -> None:
        subscriptions = HubSubscription.objects
        rows = [
            ("active subscriptions", subscriptions.active().count()),
            ("expired subscriptions", subscriptions.expired().count()),
            ("topics", subscriptions.active().values("topic").distinct().count()),
            ("pending verifications", Intent.objects.pending().count()),
            ("pending publishes", Ping.objects.pending().count()),
            ("published contents", Content.objects.count()),
        ]
        by_status = dict(
            Delivery.objects.values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        for status in Delivery.Status:
            rows.append((f"deliveries {status.label}", by_status.get(status.value, 0)))
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"{label.ljust(width)}  {value}")
