"""Gauges computed when Prometheus scrapes, from the hub's tables: never kept up to date on
the hot path. Results are kept for ``GAUGE_TTL`` seconds, so scraping in a loop costs one
round of queries per interval and process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger("django_push.hub")

GAUGE_TTL = 5.0

GAUGES = {
    "django_push_hub_active_subscriptions": "Subscriptions whose lease has not ended.",
    "django_push_hub_pending_deliveries": "Deliveries not yet delivered nor given up.",
    "django_push_hub_oldest_pending_delivery_age_seconds": (
        "Seconds the oldest due delivery has waited to be delivered (0 when none is due)."
    ),
    "django_push_hub_open_breakers": (
        "Callback hosts whose circuit breaker holds their deliveries, or is about to probe."
    ),
}


class HubCollector(Collector):
    """The hub's gauges, from four indexed queries."""

    _lock = threading.Lock()
    _cached: tuple[float, dict[str, float]] | None = None

    def describe(self) -> Iterable[Metric]:
        # Registering must not query the database.
        return [GaugeMetricFamily(name, doc) for name, doc in GAUGES.items()]

    def collect(self) -> Iterator[Metric]:
        values = self.values()
        for name, doc in GAUGES.items():
            if name in values:
                yield GaugeMetricFamily(name, doc, value=values[name])

    @classmethod
    def values(cls) -> dict[str, float]:
        with cls._lock:
            cached = cls._cached
            if cached is not None and time.monotonic() - cached[0] < GAUGE_TTL:
                return cached[1]
            try:
                values = cls.query()
            except DatabaseError:
                logger.exception("Metrics: the hub's gauges could not be read")
                values = {}
            cls._cached = (time.monotonic(), values)
            return values

    @classmethod
    def forget(cls) -> None:
        """Drop the kept values: the next scrape queries again."""
        with cls._lock:
            cls._cached = None

    @staticmethod
    def query() -> dict[str, float]:
        from django_push.metrics import gauge_source

        source = gauge_source()
        return {} if source is None else source()


_registered = False


def register_hub_collector() -> None:
    """Add the hub's gauges to the default registry once, if the hub gave their source."""
    global _registered
    from django_push.metrics import gauge_source

    if _registered or gauge_source() is None:
        return
    REGISTRY.register(HubCollector())
    _registered = True
