"""Are the subscriber's workers alive? The renewal beat and the subscriber's health view.

The self-scheduling ``renew_leases_task`` (every ``PUSH_RENEW_INTERVAL``) and
``reconcile_task`` record a beat on ``PUSH_TASK_BACKEND`` each time they run. With
``PUSH_SUBSCRIBER_HEALTH_MAX_AGE`` set, :func:`health` answers 503 once the last beat is
older: the workers died, or the renewal chain broke, and leases will lapse.
"""

from __future__ import annotations

import datetime
import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from django_push import heartbeat as shared
from django_push.conf import conf

logger = logging.getLogger("django_push.subscriber")

NEVER = "no renewal beat yet: enqueue django_push.subscriber.tasks.renew_leases_task once"
LATE = (
    "the renewal task last ran longer ago than PUSH_SUBSCRIBER_HEALTH_MAX_AGE: "
    "are the workers running?"
)
METRIC = "django_push_subscriber_heartbeat_age_seconds"


class RenewalBeat(shared.Beat):
    """When the subscriber's periodic task (renewal or reconciliation) last ran."""

    class Meta:
        app_label = "subscriber"
        verbose_name = _("renewal beat")


def beat() -> None:
    """Record that the periodic task runs now on ``PUSH_TASK_BACKEND`` (one upsert)."""
    RenewalBeat.objects.update_or_create(
        backend=conf.PUSH_TASK_BACKEND, defaults={"beat_at": timezone.now()}
    )


def age(now: datetime.datetime | None = None) -> float | None:
    """Seconds since the last beat on ``PUSH_TASK_BACKEND``; ``None`` if it never beat."""
    return shared.age(RenewalBeat, now)


def check() -> shared.Health:
    """The database answers and, with ``PUSH_SUBSCRIBER_HEALTH_MAX_AGE`` set, the last beat
    is no older than that. One primary-key lookup."""
    try:
        seconds = age()
    except DatabaseError:
        # Logged, never shown: the error names hosts, ports and users.
        logger.exception("Subscriber health check: the database is unreachable")
        return shared.Health.unreachable()
    max_age = conf.PUSH_SUBSCRIBER_HEALTH_MAX_AGE
    if max_age is None:
        return shared.HEALTHY
    reason = shared.silence(seconds, max_age, never=NEVER, late=LATE)
    return shared.Health.late(reason) if reason else shared.HEALTHY


@csrf_exempt  # GET and HEAD only: a POST gets 405, not a CSRF page
@login_not_required
@require_safe
def health(request: HttpRequest) -> HttpResponse:
    """200 with ``{"status": "ok", ...}``, or 503 with the reason; GET and HEAD only. The
    query string is ignored and nothing is written: one indexed query a call."""
    return shared.health_response(check())


def register_metrics() -> None:
    """Add the beat's age gauge to Prometheus' default registry, once."""
    doc = "Seconds since the subscriber's renewal or reconciliation task last ran."
    shared.register_age(METRIC, doc, age, logger)
