"""The workers' heartbeat: a self-scheduling task that records when it last ran.

Judging waiting work alone, an idle hub whose workers are all dead looks healthy. With
``PUSH_HEARTBEAT_INTERVAL`` set, ``hub.tasks.heartbeat_task`` runs on the task backend every that
many seconds, on any engine that can defer tasks (the database queue, RQ, Celery), and the
health view answers 503 once its last run is older than ``PUSH_HUB_HEALTH_MAX_AGE``.

One chain of tasks beats at a time: each task carries its chain's token, and a task whose
token is no longer the row's (because ``hub.tasks.start_heartbeat`` began a new chain)
records its beat and ends its chain. Starting twice, or from several workers at once,
therefore leaves one chain.
"""

from __future__ import annotations

import datetime
import logging
import secrets

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push import heartbeat as shared
from django_push.conf import conf

logger = logging.getLogger("django_push.hub")

NEVER = "no heartbeat yet: run manage.py push_heartbeat once the workers run"
LATE = "the workers' heartbeat is older than PUSH_HUB_HEALTH_MAX_AGE: are the workers running?"
METRIC = "django_push_heartbeat_age_seconds"


class Heartbeat(shared.Beat):
    """When the heartbeat task last ran on a task backend, and which chain beats."""

    chain = models.CharField(_("chain"), max_length=32)

    class Meta:
        app_label = "push_hub"
        verbose_name = _("worker heartbeat")


def beat(chain: str = "") -> str:
    """Record a beat of the chain ``chain`` (``""`` starts a new one); returns the chain's
    token if it goes on (the task enqueues the next beat), ``""`` if it ends: the interval is
    off, or a newer chain took over."""
    now = timezone.now()
    backend = conf.PUSH_TASK_BACKEND
    with transaction.atomic():
        row = Heartbeat.objects.select_for_update().filter(backend=backend).first()
        current = chain != "" and (row is None or row.chain == chain)
        token = chain if current else secrets.token_hex(8)
        going_on = conf.PUSH_HEARTBEAT_INTERVAL is not None and (chain == "" or current)
        if row is None:
            Heartbeat.objects.create(backend=backend, beat_at=now, chain=token)
        else:
            row.beat_at = now
            row.chain = row.chain if not going_on else token
            row.save(update_fields=["beat_at", "chain"])
    return token if going_on else ""


def age(now: datetime.datetime | None = None) -> float | None:
    """Seconds since the last beat on ``PUSH_TASK_BACKEND``; ``None`` if it never beat.
    One primary-key lookup."""
    return shared.age(Heartbeat, now)


def silence() -> str:
    """Why the heartbeat says the workers are down: ``""`` when it does not, or is off (then
    without a query)."""
    if conf.PUSH_HEARTBEAT_INTERVAL is None:
        return ""
    return shared.silence(age(), conf.PUSH_HUB_HEALTH_MAX_AGE, never=NEVER, late=LATE)


def register_metrics() -> None:
    """Add the heartbeat's gauge to Prometheus' default registry, once (when the metrics'
    instruments are made)."""
    doc = "Seconds since the workers' heartbeat task last ran (absent before the first)."
    shared.register_age(METRIC, doc, age, logger)
