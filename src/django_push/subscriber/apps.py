from __future__ import annotations

from django.apps import AppConfig


class SubscriberConfig(AppConfig):
    name = "django_push.subscriber"
    # The label and the AutoField keep a django-push 1.1 database free of pending migrations.
    label = "subscriber"
    default_auto_field = "django.db.models.AutoField"
    verbose_name = "WebSub subscriptions"

    def ready(self) -> None:
        from django.core import checks

        from django_push import checks as push_checks
        from django_push import metrics
        from django_push.subscriber import heartbeat
        from django_push.subscriber.signals import subscription_verified
        from django_push.subscriber.tasks import catch_up_on_verification

        subscription_verified.connect(catch_up_on_verification, dispatch_uid="push_catch_up")
        checks.register(push_checks.check_subscriber_settings)
        checks.register(push_checks.check_common_settings)
        metrics.when_made(heartbeat.register_metrics)
        metrics.instruments()  # PUSH_METRICS on: registered now, so a scrape shows zeros
