"""A circuit breaker per callback host: when most deliveries to a host fail within
``PUSH_HUB_BREAKER_WINDOW``, its deliveries are held for ``PUSH_HUB_BREAKER_OPEN_SECONDS``
instead of spending connections and retries on it; then one delivery probes it, and the
breaker closes when the probe is answered.

The state lives in the database (``HostBreaker``), so every worker shares it and it
survives a restart. The fan-out pays for it per batch, never per delivery: one query for the
breakers it must look at (:func:`watch`), and three writes for a batch with failures
(:func:`tally`); a batch without a failure to a watched host writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Protocol, Self
from urllib.parse import urlsplit

from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push.conf import conf

logger = logging.getLogger("django_push.hub")

# The error a held delivery records (its row shows why it waits).
HELD = "held: the circuit breaker of {host} is open"


@functools.lru_cache(maxsize=65536)
def host_of(url: str) -> str:
    """``host:port`` of ``url``, lower-cased, with the scheme's port when it names none: a
    breaker counts servers, and two ports of one address are two servers."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ""
    return f"{parts.hostname or ''}:{port}"[:300]


class HostBreakerQuerySet(models.QuerySet["HostBreaker"]):
    def open(self) -> Self:
        """Breakers holding their host's deliveries, or about to probe it."""
        return self.filter(open_until__isnull=False)

    def watched(self, now: datetime.datetime) -> Self:
        """Open breakers, and hosts with failures in the current window: those whose every
        outcome counts (two indexed conditions)."""
        since = now - datetime.timedelta(seconds=conf.PUSH_HUB_BREAKER_WINDOW)
        recent = models.Q(window_started_at__gte=since, failed__gt=0)
        return self.filter(models.Q(open_until__isnull=False) | recent)

    def idle_since(self, cutoff: datetime.datetime) -> Self:
        """Closed breakers with no count since ``cutoff``: what the sweep prunes (a host that
        fails again gets a new row)."""
        return self.filter(open_until__isnull=True, window_started_at__lt=cutoff)

    def close(self) -> int:
        """Close these breakers: their hosts get deliveries again at once (the held ones
        when they fall due). Returns how many were open."""
        return self.open().update(
            open_until=None, sent=0, failed=0, window_started_at=timezone.now()
        )


class HostBreaker(models.Model):
    """Recent deliveries to one callback host, and whether they are held."""

    host = models.CharField(_("callback host"), max_length=300, unique=True)
    window_started_at = models.DateTimeField(_("window started"), default=timezone.now)
    sent = models.PositiveIntegerField(_("sent in the window"), default=0)
    failed = models.PositiveIntegerField(_("failed in the window"), default=0)
    open_until = models.DateTimeField(_("open until"), null=True, blank=True)
    opened_at = models.DateTimeField(_("last opened"), null=True, blank=True)
    opens = models.PositiveIntegerField(_("times opened"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    objects = HostBreakerQuerySet.as_manager()

    class Meta:
        app_label = "push_hub"
        verbose_name = _("host breaker")
        verbose_name_plural = _("host breakers")
        indexes = [
            models.Index(
                fields=["open_until"],
                name="push_hub_breaker_open",
                condition=models.Q(open_until__isnull=False),
            ),
            models.Index(fields=["window_started_at"], name="push_hub_breaker_window"),
        ]

    def __str__(self) -> str:
        return f"{self.host}: {self.state}"

    @property
    def state(self) -> str:
        """ "closed", "open", or "probing" (its open period is over: the next delivery to
        its host probes it)."""
        if self.open_until is None:
            return "closed"
        return "open" if self.open_until > timezone.now() else "probing"

    def count(self, sent: int, failed: int, error: str, now: datetime.datetime) -> bool:
        """Add a batch's ``sent`` deliveries to this host, ``failed`` of them; open, close
        or open again as they say. True when the row changed."""
        if self.open_until is not None:  # a probe, or sends that were in flight
            if sent > failed:
                logger.info("Circuit breaker of %s closed: it answers again", self.host)
                self.open_until, self.sent, self.failed, self.window_started_at = None, 0, 0, now
            else:  # every one failed: open for another period
                self._open(now, error)
            return True
        window = datetime.timedelta(seconds=conf.PUSH_HUB_BREAKER_WINDOW)
        if self.window_started_at < now - window:
            self.sent, self.failed, self.window_started_at = 0, 0, now
        self.sent += sent
        self.failed += failed
        self.last_error = error or self.last_error
        if trips(self.sent, self.failed):
            logger.warning(
                "Circuit breaker of %s opened: %s of its %s deliveries failed (%s)",
                self.host,
                self.failed,
                self.sent,
                error,
            )
            self.opens += 1
            self.opened_at = now
            self._open(now, error)
        return True

    def _open(self, now: datetime.datetime, error: str) -> None:
        seconds = datetime.timedelta(seconds=conf.PUSH_HUB_BREAKER_OPEN_SECONDS)
        self.open_until, self.sent, self.failed = now + seconds, 0, 0
        self.window_started_at, self.last_error = now, error or self.last_error


def trips(sent: int, failed: int) -> bool:
    """The breaker's rule: at least ``PUSH_HUB_BREAKER_MIN_DELIVERIES`` sent, and at least
    ``PUSH_HUB_BREAKER_FAILURE_RATIO`` of them failed."""
    return (
        sent >= conf.PUSH_HUB_BREAKER_MIN_DELIVERIES
        and failed >= conf.PUSH_HUB_BREAKER_FAILURE_RATIO * sent
    )


def open_until(hosts: Iterable[str], now: datetime.datetime) -> dict[str, datetime.datetime]:
    """When the open breakers of ``hosts`` end (one query)."""
    rows = HostBreaker.objects.filter(host__in=list(hosts), open_until__gt=now)
    return {host: until for host, until in rows.values_list("host", "open_until") if until}


class Trips:
    """One fan-out's own count of what its deliveries to each host did. A fan-out sends a
    batch while it records the one before, so a host's breaker opens a batch late; a host
    that fails as the breaker's rule says (:func:`trips`) within the fan-out is tripped at
    once instead: the fan-out's next first attempts to it are held, for
    ``PUSH_HUB_BREAKER_OPEN_SECONDS`` at most. Counts start again each
    ``PUSH_HUB_BREAKER_WINDOW``. The record of a tripped delivery holds it until the host's
    breaker ends, or makes it due at once if the breaker stayed closed."""

    def __init__(self) -> None:
        self.window = conf.PUSH_HUB_BREAKER_WINDOW
        self.open_seconds = conf.PUSH_HUB_BREAKER_OPEN_SECONDS
        self.counts: dict[str, tuple[float, int, int]] = {}  # host: (since, sent, failed)
        self.tripped: dict[str, float] = {}  # host: until (monotonic)

    def holds(self, host: str) -> bool:
        until = self.tripped.get(host)
        if until is None:
            return False
        if until > time.monotonic():
            return True
        del self.tripped[host]
        return False

    def count(self, host: str, failed: bool) -> None:
        now = time.monotonic()
        since, sent, failures = self.counts.get(host, (now, 0, 0))
        if since < now - self.window:
            since, sent, failures = now, 0, 0
        sent, failures = sent + 1, failures + failed
        self.counts[host] = (since, sent, failures)
        if failed and trips(sent, failures) and host not in self.tripped:
            self.tripped[host] = now + self.open_seconds
            self.counts[host] = (now, 0, 0)


# Fields :meth:`HostBreaker.count` changes.
COUNTED = ["window_started_at", "sent", "failed", "open_until", "opened_at", "opens", "last_error"]


class _Job(Protocol):
    @property
    def callback(self) -> str: ...


class _Outcome(Protocol):
    @property
    def job(self) -> _Job: ...

    @property
    def status(self) -> int | None: ...

    @property
    def error(self) -> str: ...

    @property
    def failed(self) -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Watch:
    """The breakers a batch is sent under: which of its jobs are held (by index, until
    when), and the hosts whose outcomes are counted even when all succeed."""

    held: dict[int, datetime.datetime] = dataclasses.field(default_factory=dict)
    watched: frozenset[str] = frozenset()


UNWATCHED = Watch()


def watch(jobs: Sequence[_Job], now: datetime.datetime | None = None) -> Watch:
    """Read the breakers ``jobs`` are sent under, in one query: the jobs to hosts whose
    breaker is open are held until it ends. Of a host whose open period is over, one job is
    the probe (taken by one worker at a time: its breaker is held for one delivery timeout
    more), and the others wait for that."""
    if not conf.PUSH_HUB_BREAKER:
        return UNWATCHED
    now = now or timezone.now()
    breakers = dict(HostBreaker.objects.watched(now).values_list("host", "open_until"))
    if not breakers:
        return UNWATCHED
    holds: dict[str, datetime.datetime] = {}
    probes: set[str] = set()
    held: dict[int, datetime.datetime] = {}
    for index, job in enumerate(jobs):
        host = host_of(job.callback)
        if host not in holds:
            until = breakers.get(host)
            if until is None:
                continue
            if until <= now:
                until = now + datetime.timedelta(seconds=conf.timeout)
                taken = HostBreaker.objects.filter(host=host, open_until__lte=now)
                if taken.update(open_until=until):
                    probes.add(host)
            holds[host] = until
        if host in probes:
            probes.discard(host)  # this job is the probe: sent
            continue
        held[index] = holds[host]
    return Watch(held, frozenset(breakers))


def tally(watched: frozenset[str], outcomes: Iterable[_Outcome], now: datetime.datetime) -> None:
    """Count a batch's outcomes per host (held ones excepted): hosts with a failure in it,
    and ``watched`` hosts. Call it in the transaction that records the batch."""
    if not conf.PUSH_HUB_BREAKER:
        return
    counts: dict[str, tuple[int, int]] = {}
    errors: dict[str, str] = {}
    for outcome in outcomes:
        host = host_of(outcome.job.callback)
        sent, failures = counts.get(host, (0, 0))
        counts[host] = (sent + 1, failures + outcome.failed)
        if outcome.failed:
            errors[host] = outcome.error or f"HTTP {outcome.status}"
    hosts = sorted(host for host, (_, failed) in counts.items() if failed or host in watched)
    if not hosts:
        return
    HostBreaker.objects.bulk_create(
        [HostBreaker(host=host, window_started_at=now) for host in hosts], ignore_conflicts=True
    )
    rows = HostBreaker.objects.filter(host__in=hosts).order_by("host")
    if connection.features.has_select_for_update:
        rows = rows.select_for_update()  # two workers counting one host add up
    changed = [row for row in rows if row.count(*counts[row.host], errors.get(row.host, ""), now)]
    HostBreaker.objects.bulk_update(changed, COUNTED)
