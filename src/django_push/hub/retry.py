"""Back-off schedule for failed fetches and deliveries."""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable


def backoff(attempt: int, base: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``,
    scaled by a jitter factor in [0.5, 1.5) so that failed subscribers don't retry in step."""
    return float(base * 2 ** min(attempt - 1, 30) * (0.5 + rng()))


def gives_up(first_failure: datetime.datetime, retry_at: datetime.datetime, horizon: float) -> bool:
    """True when ``retry_at`` falls beyond ``horizon`` seconds after the first failure."""
    return (retry_at - first_failure).total_seconds() > horizon


def next_attempt(
    attempts: int, first_failure: datetime.datetime, now: datetime.datetime
) -> datetime.datetime | None:
    """When to try again after failed attempt number ``attempts`` (the first failure was at
    ``first_failure``): back-off from ``PUSH_HUB_RETRY_BASE``, or ``None`` once that falls
    beyond ``PUSH_HUB_RETRY_HORIZON``. The one retry step of fetches and deliveries."""
    from django_push.conf import conf

    retry_at = now + datetime.timedelta(seconds=backoff(attempts, conf.PUSH_HUB_RETRY_BASE))
    if gives_up(first_failure, retry_at, conf.PUSH_HUB_RETRY_HORIZON):
        return None
    return retry_at
