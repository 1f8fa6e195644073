"""Prometheus metrics of the hub and the subscriber (the ``django-push[metrics]`` extra).

Every function here is a no-op unless ``PUSH_METRICS`` is on and ``prometheus_client`` is
installed. The hot path calls them once per batch where it can: a fan-out batch counts its
outcomes in one call, and the durations of its POSTs are kept in a queue and observed when
the batch is recorded, off the event loop that sends the next one.

The metrics live in ``prometheus_client``'s default ``REGISTRY``: the view in
:mod:`django_push.metrics.views` exposes them, and so does django-prometheus's view when the
site already has it. Gauges that describe the database (subscriptions, pending deliveries)
are computed when scraped, by :class:`django_push.metrics.collector.HubCollector`.
"""

from __future__ import annotations

import datetime
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from django_push.conf import conf

try:
    import prometheus_client  # noqa: F401
except ImportError:  # the extra is not installed: every function below does nothing
    INSTALLED = False
else:
    INSTALLED = True

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

__all__ = [
    "DELIVERY_OUTCOMES",
    "NOTIFICATION_OUTCOMES",
    "POLL_OUTCOMES",
    "PUBLISH_OUTCOMES",
    "VERIFICATION_OUTCOMES",
    "available",
    "count_deliveries",
    "count_delivery",
    "count_gap",
    "count_notification",
    "count_polls",
    "count_publish",
    "count_refusal",
    "count_verifications",
    "enabled",
    "gauge_source",
    "set_gauge_source",
    "timed_post",
    "when_made",
]

DeliveryOutcome = Literal["delivered", "retried", "gone", "gave_up", "superseded"]
PublishOutcome = Literal["fetched", "unchanged", "retried", "failed", "skipped"]
NotificationOutcome = Literal["accepted", "bad_signature", "refused", "duplicate"]

DELIVERY_OUTCOMES: tuple[DeliveryOutcome, ...] = (
    "delivered",
    "retried",
    "gone",
    "gave_up",
    "superseded",
)
# The statuses an Intent is decided with (hub.models.Intent.Status).
VERIFICATION_OUTCOMES = ("verified", "failed", "denied")
# "skipped": a topic of a publish request that nobody follows, neither fetched nor stored.
PUBLISH_OUTCOMES: tuple[PublishOutcome, ...] = (
    "fetched",
    "unchanged",
    "retried",
    "failed",
    "skipped",
)
# "duplicate": a notification the subscriber had already received (the 1.1 callback of a
# moved subscription, or a repeated delivery), dropped with a 2xx.
NOTIFICATION_OUTCOMES: tuple[NotificationOutcome, ...] = (
    "accepted",
    "bad_signature",
    "refused",
    "duplicate",
)

# Reconciliation polls of the subscriber (subscriber/reconcile.py). "missed": the poll found
# content that push had not brought, the number that tells an operator the hub loses content.
POLL_OUTCOMES = ("not_modified", "unchanged", "missed", "failed", "untrusted")

# Seconds from a content's fetch to its delivery: seconds for a healthy fan-out, up to
# PUSH_HUB_RETRY_HORIZON (a day by default) for a delivery that needed retries.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
# Seconds of one delivery POST, up to the timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def available() -> bool:
    """Whether ``prometheus_client`` is installed."""
    return INSTALLED


def enabled() -> bool:
    """Whether metrics are recorded: ``PUSH_METRICS`` is on and the extra is installed."""
    return INSTALLED and conf.PUSH_METRICS


@dataclass(frozen=True)
class Instruments:
    """The metric objects, made once per process, their labelled children ready."""

    deliveries: dict[str, Counter]
    verifications: dict[str, Counter]
    publishes: dict[str, Counter]
    notifications: dict[str, Counter]
    polls: dict[str, Counter]
    gaps: Counter
    latency: Histogram
    duration: Histogram

    @classmethod
    def create(cls) -> Instruments:
        from prometheus_client import Counter, Histogram

        def outcomes(name: str, doc: str, labels: Iterable[str]) -> dict[str, Counter]:
            counter = Counter(name, doc, ["outcome"])
            return {label: counter.labels(label) for label in labels}

        return cls(
            deliveries=outcomes(
                "django_push_hub_deliveries",
                "Delivery attempts of the hub, by outcome.",
                DELIVERY_OUTCOMES,
            ),
            verifications=outcomes(
                "django_push_hub_verifications",
                "Verifications of intent decided by the hub, by outcome.",
                VERIFICATION_OUTCOMES,
            ),
            publishes=outcomes(
                "django_push_hub_publishes",
                "Topics of publish requests, by outcome: fetched, unchanged, retried, failed, "
                "or skipped (nobody follows the topic: neither fetched nor stored).",
                PUBLISH_OUTCOMES,
            ),
            notifications=outcomes(
                "django_push_subscriber_notifications",
                "Content notifications received by the subscriber's callback view, by outcome.",
                NOTIFICATION_OUTCOMES,
            ),
            polls=outcomes(
                "django_push_subscriber_polls",
                "Reconciliation polls of topics by the subscriber, by outcome; 'missed' counts "
                "content the poll found that push had not brought.",
                POLL_OUTCOMES,
            ),
            gaps=Counter(
                "django_push_subscriber_sequence_gaps",
                "Deliveries whose Push-Sequence skipped one or more numbers: content the hub "
                "did not bring.",
            ),
            latency=Histogram(
                "django_push_hub_publish_to_delivery_seconds",
                "Seconds from a content's fetch to its successful delivery.",
                buckets=LATENCY_BUCKETS,
            ),
            duration=Histogram(
                "django_push_hub_delivery_duration_seconds",
                "Seconds of one delivery POST, from sending to the answer's status line.",
                buckets=DURATION_BUCKETS,
            ),
        )


_instruments: Instruments | None = None
_lock = threading.Lock()
# Durations of delivery POSTs not observed yet: appended on the event loop, observed in
# bulk by count_deliveries() in the thread that records the batch.
_durations: deque[float] = deque()


def instruments() -> Instruments | None:
    """The metric objects, made (and registered) on first use; ``None`` when metrics are off."""
    global _instruments
    if not enabled():
        return None
    if _instruments is None:
        with _lock:
            if _instruments is None:
                _instruments = Instruments.create()
                from django_push.metrics.collector import register_hub_collector

                register_hub_collector()
                for callback in _when_made:
                    callback()
    return _instruments


_when_made: list[Callable[[], object]] = []


def when_made(callback: Callable[[], object]) -> None:
    """Call ``callback`` once the instruments are made (now, if they are): how an app adds
    collectors of its own (the hub's heartbeat) without this package importing it."""
    _when_made.append(callback)
    if _instruments is not None:
        callback()


# Hub -----------------------------------------------------------------------------------

_gauge_source: Callable[[], dict[str, float]] | None = None


def set_gauge_source(source: Callable[[], dict[str, float]]) -> None:
    """Where the hub's gauges are read when scraped (the hub app gives its own at start:
    this package never reaches up into the hub's tables)."""
    global _gauge_source
    _gauge_source = source
    if _instruments is not None:  # metrics were made before the hub app was ready
        from django_push.metrics.collector import register_hub_collector

        register_hub_collector()


def gauge_source() -> Callable[[], dict[str, float]] | None:
    return _gauge_source


T = TypeVar("T")


def timed_post(sending: Awaitable[T]) -> Awaitable[T]:
    """``sending`` itself when metrics are off; else the same, with its duration kept for
    the delivery duration histogram (failures included: a timeout is a slow POST)."""
    if not enabled():
        return sending
    return _timed(sending)


async def _timed(sending: Awaitable[T]) -> T:
    started = time.perf_counter()
    try:
        return await sending
    finally:
        _durations.append(time.perf_counter() - started)


class _Job(Protocol):
    @property
    def published_at(self) -> datetime.datetime: ...


class _Outcome(Protocol):
    """What the fan-out records of one delivery (``hub.fanout.Outcome``)."""

    @property
    def job(self) -> _Job: ...

    @property
    def ok(self) -> bool: ...


def count_deliveries(
    outcomes: Iterable[_Outcome], gone: int = 0, now: datetime.datetime | None = None
) -> None:
    """Count a recorded batch: its successful ``outcomes`` and its ``gone`` answers (410;
    retries and give-ups are counted row by row, with :func:`count_delivery`). Observes the
    publish-to-delivery latency of each success, and the POST durations kept so far."""
    metrics = instruments()
    if metrics is None:
        return
    delivered = [outcome.job.published_at for outcome in outcomes if outcome.ok]
    if delivered:
        metrics.deliveries["delivered"].inc(len(delivered))
        _observe_latency(metrics.latency, delivered, now)
    if gone:
        metrics.deliveries["gone"].inc(gone)
    durations = []
    while _durations:
        durations.append((_durations.popleft(), 1))
    observe_many(metrics.duration, durations)


def count_delivery(outcome: DeliveryOutcome, count: int = 1) -> None:
    """Count ``count`` delivery outcomes decided row by row (a retry, giving up, a retry
    superseded by a newer content)."""
    metrics = instruments()
    if metrics is not None:
        metrics.deliveries[outcome].inc(count)


def _observe_latency(
    histogram: Histogram, published: list[datetime.datetime], now: datetime.datetime | None
) -> None:
    from django.utils import timezone

    now = now or timezone.now()
    # A batch holds one content, or a few: one observation per content, counted.
    delivered: dict[datetime.datetime, int] = {}
    for at in published:
        delivered[at] = delivered.get(at, 0) + 1
    observe_many(
        histogram,
        [(max(0.0, (now - at).total_seconds()), count) for at, count in delivered.items()],
    )


def observe_many(histogram: Histogram, observations: Iterable[tuple[float, int]]) -> None:
    """Observe each ``(value, times)`` in ``histogram``: bucketed here, then one increment
    per bucket, where ``Histogram.observe`` takes a lock per value (ten times slower, which
    the fan-out would feel)."""
    bounds: list[float] | None = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:  # not the layout we know
        for amount, times in observations:
            for _ in range(times):
                histogram.observe(amount)
        return
    counts = [0] * len(bounds)
    added = 0.0
    for amount, times in observations:
        counts[bisect_left(bounds, amount)] += times  # the first bound >= amount
        added += amount * times
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)
    if added:
        total.inc(added)


def count_verifications(statuses: Iterable[str]) -> None:
    """Count the decided verifications of a batch, by their status."""
    metrics = instruments()
    if metrics is None:
        return
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    for status, count in counts.items():
        if status in metrics.verifications:
            metrics.verifications[status].inc(count)


def count_publish(outcome: PublishOutcome, count: int = 1) -> None:
    """Count the outcome of ``count`` topics of publish requests (a fetch, or a skip)."""
    metrics = instruments()
    if metrics is not None:
        metrics.publishes[outcome].inc(count)


# Subscriber ------------------------------------------------------------------------------


def count_notification(outcome: NotificationOutcome) -> None:
    """Count one content notification the callback view received, by outcome."""
    metrics = instruments()
    if metrics is not None:
        metrics.notifications[outcome].inc()


def count_refusal(status: int) -> None:
    """Count a notification answered with ``status``: a refusal if it is 4xx or 5xx (the
    2xx drops are counted where they are decided)."""
    if status >= 400:
        count_notification("refused")


def count_gap() -> None:
    """Count one delivery whose ``Push-Sequence`` skipped a number."""
    metrics = instruments()
    if metrics is not None:
        metrics.gaps.inc()


def count_polls(counts: Mapping[str, int]) -> None:
    """Count a batch of reconciliation polls, by outcome (one of ``POLL_OUTCOMES``)."""
    metrics = instruments()
    if metrics is None:
        return
    for outcome, count in counts.items():
        if count and outcome in metrics.polls:
            metrics.polls[outcome].inc(count)
