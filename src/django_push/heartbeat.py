"""What the hub's and the subscriber's heartbeats share.

A periodic task records when it last ran on a task backend (a row per backend); a health
view answers 503 once that is older than a bound, and a gauge shows the age. The hub's
heartbeat (``hub.heartbeat``) and the subscriber's renewal beat (``subscriber.heartbeat``)
each keep their own table, bound and words; the rest is here.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from django.db import DatabaseError, models
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push.conf import conf

if TYPE_CHECKING:
    from prometheus_client.core import Metric

DATABASE_DOWN = "the database is unreachable"


class Beat(models.Model):
    """When a periodic task last ran on a task backend."""

    backend = models.CharField(_("task backend"), max_length=100, primary_key=True)
    beat_at = models.DateTimeField(_("last beat"))

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.backend}: {self.beat_at:%Y-%m-%d %H:%M:%S}"


def age(model: type[Beat], now: datetime.datetime | None = None) -> float | None:
    """Seconds since ``model``'s last beat on ``PUSH_TASK_BACKEND``; ``None`` if it never
    beat. One primary-key lookup."""
    beat = (
        model._default_manager.filter(backend=conf.PUSH_TASK_BACKEND)
        .values_list("beat_at", flat=True)
        .first()
    )
    if beat is None:
        return None
    return max(0.0, ((now or timezone.now()) - beat).total_seconds())


def silence(seconds: float | None, max_age: float, *, never: str, late: str) -> str:
    """Why a beat ``seconds`` old says the workers are down (``never`` or ``late``); ``""``
    when it is no older than ``max_age``."""
    if seconds is None:
        return never
    return late if seconds > max_age else ""


@dataclass(frozen=True)
class Health:
    """What a health view says: only fixed words, nothing from the data or the errors."""

    status: str  # "ok" or "unavailable"
    database: str  # "ok" or "unreachable"
    workers: str  # "ok", "late" or "unknown" (the database could not say)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def unreachable(cls) -> Health:
        return cls("unavailable", "unreachable", "unknown", DATABASE_DOWN)

    @classmethod
    def late(cls, reason: str) -> Health:
        return cls("unavailable", "ok", "late", reason)


HEALTHY = Health("ok", "ok", "ok")


def health_response(result: Health) -> HttpResponse:
    """200 with the non-empty fields of ``result`` as JSON, or 503; never cached."""
    fields = {key: value for key, value in asdict(result).items() if value}
    response = HttpResponse(
        json.dumps(fields), status=200 if result.ok else 503, content_type="application/json"
    )
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class AgeCollector:
    """A beat's age for Prometheus, read at each scrape (one primary-key lookup); absent
    before the first beat, and when the database cannot say."""

    def __init__(
        self, name: str, doc: str, read: Callable[[], float | None], logger: logging.Logger
    ) -> None:
        self.name, self.doc, self.read, self.logger = name, doc, read, logger

    def describe(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        return [GaugeMetricFamily(self.name, self.doc)]  # registering queries nothing

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            seconds = self.read()
        except DatabaseError:
            self.logger.exception("Metrics: %s could not be read", self.name)
            return
        if seconds is not None:
            yield GaugeMetricFamily(self.name, self.doc, value=seconds)


_registered: set[str] = set()


def register_age(
    name: str, doc: str, read: Callable[[], float | None], logger: logging.Logger
) -> None:
    """Add the gauge ``name`` to Prometheus' default registry, once per process; a failed
    read is logged on ``logger``."""
    if name in _registered:
        return
    from prometheus_client.registry import REGISTRY

    REGISTRY.register(AgeCollector(name, doc, read, logger))  # a Collector by shape
    _registered.add(name)
