from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from demo.views import feed_url
from django_push.exceptions import DiscoveryError
from django_push.subscriber.models import Subscription
from django_push.subscriber.tasks import reconcile_task
from django_push.tasks import enqueue


class Command(BaseCommand):
    help = "Subscribe the demo's subscriber to the demo's feed, discovering the hub from the feed."

    def handle(self, *args: Any, **options: Any) -> None:
        url = feed_url()
        for _ in range(50):
            try:
                subscription = Subscription.objects.subscribe(url, lease_seconds=3600)
            except DiscoveryError as exc:
                last = exc
                time.sleep(0.2)  # the web server may still be starting
                continue
            self.stdout.write(f"Subscribed to {subscription.topic} via {subscription.hub}")
            enqueue(reconcile_task, True)  # polls when due, then schedules its next run
            return
        raise CommandError(f"Could not subscribe to {url}: {last}")
