"""Back-off schedule for failed deliveries, as pure functions."""

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
