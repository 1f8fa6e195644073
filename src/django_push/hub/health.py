"""Is the hub working? Figures for ``hub_stats``, the metrics' gauges and the health view.

Every query here is bounded or served by an index: the health view faces the internet, and
a stranger who calls it in a loop must cost the database no more than a 404 does.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, models
from django.db.models import Min, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from django_push.conf import conf
from django_push.heartbeat import HEALTHY, Health, health_response
from django_push.hub import heartbeat
from django_push.hub.breakers import HostBreaker
from django_push.hub.models import Content, Delivery, HubSubscription, Intent, Ping

logger = logging.getLogger("django_push.hub")


@dataclass(frozen=True)
class Backlog:
    """Seconds the oldest work of each kind has been waiting for a worker (0 when none)."""

    deliveries: float
    verifications: float
    publishes: float

    @property
    def oldest(self) -> float:
        return max(self.deliveries, self.verifications, self.publishes)


def _age(oldest: datetime.datetime | None, now: datetime.datetime) -> float:
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


def backlog() -> Backlog:
    """Four ``MIN()`` queries: due deliveries (two: see :func:`delivery_backlog`),
    pending verifications (at most ``PUSH_HUB_MAX_PENDING``) and due publish requests
    (one pending per topic at most)."""
    now = timezone.now()
    intent = Intent.objects.pending().aggregate(oldest=Min("created_at"))["oldest"]
    ping = (
        Ping.objects.pending()
        .filter(next_attempt_at__lte=now)
        .aggregate(oldest=Min("next_attempt_at"))["oldest"]
    )
    return Backlog(delivery_backlog(now), _age(intent, now), _age(ping, now))


def delivery_backlog(now: datetime.datetime | None = None) -> float:
    """Seconds the oldest due delivery has waited (0 when none is due): the oldest pending
    delivery row (partial index on ``next_attempt_at``), or the unfinished fan-out that has
    waited longest for a worker to claim its next range (partial index of open contents)."""
    now = now or timezone.now()
    row = Delivery.objects.filter(status=Delivery.Status.PENDING).aggregate(
        oldest=Min("next_attempt_at")
    )["oldest"]
    fanout = Content.objects.filter(finished_at__isnull=True).aggregate(
        oldest=Min(Coalesce("claimed_at", "fetched_at"))
    )["oldest"]
    return max(_age(row, now), _age(fanout, now))


def delivery_counts(contents: models.QuerySet[Content] | None = None) -> dict[str, int]:
    """Deliveries of ``contents`` (default: every content) by status value: sums over their
    ranges and delivery rows, never a scan of subscribers."""
    queryset = Content.objects.all() if contents is None else contents
    totals = queryset.with_counts().aggregate(  # type: ignore[attr-defined]
        delivered=Sum("n_delivered"), pending=Sum("n_pending"), failed=Sum("n_failed")
    )
    return {status: int(totals[status] or 0) for status in Delivery.Status.values}


def pending_deliveries() -> int:
    """Deliveries owed and not decided: the rest of every unfinished fan-out's plan, and the
    pending delivery rows (retries, sent again) of finished ones."""
    unfinished = Content.objects.filter(finished_at__isnull=True)
    rows = Delivery.objects.filter(
        status=Delivery.Status.PENDING, content__finished_at__isnull=False
    )
    return delivery_counts(unfinished)[Delivery.Status.PENDING] + rows.count()


def gauges() -> dict[str, float]:
    """The hub's gauges for the metrics (``django_push.metrics.collector``)."""
    return {
        "django_push_hub_active_subscriptions": HubSubscription.objects.active().count(),
        "django_push_hub_pending_deliveries": pending_deliveries(),
        "django_push_hub_oldest_pending_delivery_age_seconds": delivery_backlog(),
        "django_push_hub_open_breakers": HostBreaker.objects.open().count(),
    }


WORKERS_LATE = (
    "work has waited for a worker longer than PUSH_HUB_HEALTH_MAX_AGE: are the workers running?"
)


def check(work: Backlog | None = None) -> Health:
    """The database answers, no work has waited longer than ``PUSH_HUB_HEALTH_MAX_AGE``, and
    with ``PUSH_HEARTBEAT_INTERVAL`` set, the workers' heartbeat is no older than that either
    (without it, a hub with nothing to do is healthy: workers need not prove they exist)."""
    try:
        work = backlog() if work is None else work
        silence = heartbeat.silence()
    except DatabaseError:
        # Logged here, never shown: the error names hosts, ports and users.
        logger.exception("Hub health check: the database is unreachable")
        return Health.unreachable()
    if work.oldest > conf.PUSH_HUB_HEALTH_MAX_AGE:
        return Health.late(WORKERS_LATE)
    if silence:
        return Health.late(silence)
    return HEALTHY


@csrf_exempt  # GET and HEAD only: a POST gets 405, not a CSRF page
@login_not_required
@require_safe
def health(request: HttpRequest) -> HttpResponse:
    """200 with ``{"status": "ok", ...}``, or 503 with the reason; GET and HEAD only.

    The query string is ignored, nothing is written, nothing is enqueued: calling it in a
    loop costs five indexed queries a call (four ``MIN()`` and the heartbeat's primary-key
    lookup).
    """
    return health_response(check())
