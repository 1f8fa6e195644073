"""How django-push sends its signals: once the change they report is committed, robustly.

The hub and the subscriber both send their signals through :func:`send_on_commit`: a
receiver that raises is logged on the ``django_push.signals`` logger with the signal's name,
and the bookkeeping, already committed, is not affected. Nothing is sent if the transaction
rolls back.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger("django_push.signals")

# Names of the signals for the log, by id(): see name_signals().
_NAMES: dict[int, str] = {}


def name_signals(**signals: Signal) -> None:
    """Register the names the log gives ``signals`` when one of their receivers raises."""
    _NAMES.update((id(signal), name) for name, signal in signals.items())


def send_on_commit(signal: Signal, sender: Any, *each: dict[str, Any]) -> None:
    """Send ``signal`` once per dict of keyword arguments in ``each``, when the current
    transaction commits (at once outside one); nothing is sent if it rolls back."""
    if each:
        transaction.on_commit(partial(_send, signal, sender, each), robust=True)


def _send(signal: Signal, sender: Any, each: tuple[dict[str, Any], ...]) -> None:
    for kwargs in each:
        for receiver, result in signal.send_robust(sender=sender, **kwargs):
            if isinstance(result, Exception):
                logger.error(
                    "Receiver %s of django-push's %s signal raised: %r",
                    getattr(receiver, "__qualname__", receiver),
                    _NAMES.get(id(signal), "unnamed"),
                    result,
                    exc_info=result,
                )
