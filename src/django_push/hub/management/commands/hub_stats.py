from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_push.conf import conf
from django_push.hub import health, heartbeat
from django_push.hub.models import Content, Delivery, HubSubscription, Intent, Ping

# Deliveries by state in --json: the words printed (the status value "failed" is "gave up").
JSON_NAMES = {Delivery.Status.FAILED.value: "gave_up"}


class Command(BaseCommand):
    help = "Show the hub's subscriptions, pending verifications, contents and deliveries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object (the same figures, and the health check's) instead.",
        )

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
        by_status = health.delivery_counts()
        for status in Delivery.Status:
            rows.append((f"deliveries {status.label}", by_status.get(status.value, 0)))
        if options["json"]:
            self.stdout.write(json.dumps(self.as_json(rows, by_status), indent=2))
            return
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"{label.ljust(width)}  {value}")

    def as_json(self, rows: list[tuple[str, int]], by_status: dict[str, int]) -> dict[str, Any]:
        """The printed figures under snake_case keys (deliveries by state, named as printed:
        ``gave_up``, not the status value ``failed``), and the health check with the backlog
        it judged."""
        figures: dict[str, Any] = {
            label.replace(" ", "_"): value
            for label, value in rows
            if not label.startswith("deliveries ")
        }
        figures["deliveries"] = {
            JSON_NAMES.get(status.value, status.value): by_status.get(status.value, 0)
            for status in Delivery.Status
        }
        backlog = health.backlog()
        verdict = health.check(backlog)
        beat = heartbeat.age()
        figures["health"] = {
            "status": verdict.status,
            "database": verdict.database,
            "workers": verdict.workers,
            "reason": verdict.reason,
            "max_age_seconds": conf.PUSH_HUB_HEALTH_MAX_AGE,
            "oldest_waiting_seconds": {
                "deliveries": round(backlog.deliveries, 3),
                "verifications": round(backlog.verifications, 3),
                "publishes": round(backlog.publishes, 3),
            },
            "heartbeat_interval_seconds": conf.PUSH_HEARTBEAT_INTERVAL,
            "heartbeat_age_seconds": None if beat is None else round(beat, 3),
        }
        return figures
