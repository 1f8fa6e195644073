"""Start the workers' heartbeat (see ``django_push.hub.heartbeat``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_push.conf import conf
from django_push.hub.tasks import start_heartbeat


class Command(BaseCommand):
    help = (
        "Enqueue the first beat of the workers' heartbeat; it re-schedules itself every "
        "PUSH_HEARTBEAT_INTERVAL seconds. Run it once after deploying (again is harmless)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if conf.PUSH_HEARTBEAT_INTERVAL is None:
            raise CommandError("PUSH_HEARTBEAT_INTERVAL is not set: the heartbeat is off.")
        start_heartbeat()
        self.stdout.write(
            f"Heartbeat enqueued on task backend {conf.PUSH_TASK_BACKEND!r}: a worker runs it "
            f"and then every {conf.PUSH_HEARTBEAT_INTERVAL:g} s."
        )
