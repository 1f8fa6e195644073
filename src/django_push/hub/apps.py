from __future__ import annotations

from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "django_push.hub"
    label = "push_hub"
    verbose_name = "WebSub hub"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from django_push import checks as push_checks
        from django_push import metrics
        from django_push.hub import health, heartbeat
        from django_push.wakeup import connect_sender

        checks.register(push_checks.check_hub_settings)
        checks.register(push_checks.check_common_settings)
        checks.register(push_checks.check_hub_deployment, checks.Tags.security, deploy=True)
        metrics.set_gauge_source(health.gauges)
        metrics.when_made(heartbeat.register_metrics)
        metrics.instruments()  # PUSH_METRICS on: registered now, so a scrape shows zeros
        connect_sender()
