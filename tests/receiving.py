"""What the subscriber's ``updated`` signal sends, collected while a test runs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django_push.subscriber.signals import updated


@contextlib.contextmanager
def receiving(record: Callable[..., Any]) -> Iterator[list[Any]]:
    """A list that gets ``record(sender, notification=..., request=..., links=..., ...)``
    for each ``updated`` signal sent until the block ends."""
    received: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append(record(sender, **kwargs))

    updated.connect(receiver)
    try:
        yield received
    finally:
        updated.disconnect(receiver)
