from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class PublisherConfig(AppConfig):
    """Optional: installing the publisher adds its system checks; its code works without it."""

    name = "django_push.publisher"
    label = "push_publisher"
    verbose_name = "WebSub publisher"

    def ready(self) -> None:
        from django_push import checks as push_checks

        checks.register(push_checks.check_publisher_settings)
        checks.register(push_checks.check_common_settings)
