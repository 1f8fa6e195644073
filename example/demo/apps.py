from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"

    def ready(self) -> None:
        from demo.receivers import record_notification
        from django_push.subscriber.signals import updated

        updated.connect(record_notification, dispatch_uid="demo-record")
