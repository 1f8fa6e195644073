"""Repeated deliveries: a hub delivers at least once, so a retry, or a worker taking over
from one that died, can bring the same content twice. With
``PUSH_SUBSCRIBER_DUPLICATE_WINDOW``, the callback view remembers each delivery for that
many seconds and drops a repeat for the same subscription.

A delivery is known by the hub's ``Push-Delivery-Id`` header (django-push hubs send it) and
the SHA-256 of its body, or by the body's hash alone without the header. The header is not
signed: keyed on it alone, whoever captured one signed body could replay it under the id of
a delivery still to come, and the real one would be dropped as a repeat.

It is remembered with ``cache.add``, which is atomic in Django's shared caches: of two copies
arriving at once, one passes.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import BaseCache, caches

from django_push.conf import conf

logger = logging.getLogger("django_push.subscriber")

KEY_PREFIX = "django_push.delivery."


class Remembered:
    """A delivery remembered as seen; :meth:`forget` it when it was not processed after
    all, so that the hub's retry gets through."""

    def __init__(self, cache: BaseCache | None = None, key: str = "") -> None:
        self.cache, self.key = cache, key

    def forget(self) -> None:
        if self.cache is not None:
            self.cache.delete(self.key)


NOT_REMEMBERED = Remembered()  # the window is off


def body_digest(body: bytes) -> str:
    """The SHA-256 of a body, in hex: a delivery's identity without the hub's header, and
    the ``content_hash`` that reconciliation compares polled bodies with."""
    return hashlib.sha256(body).hexdigest()


def identity(header: str | None, body: bytes) -> str:
    """The delivery's identity: the hub's header and a hash of the body, else the hash."""
    if header:
        return f"id:{header}\nsha256:{body_digest(body)}"
    return "sha256:" + body_digest(body)


def remember(subscription_pk: int, header: str | None, body: bytes) -> Remembered | None:
    """Remember this delivery to ``subscription_pk`` for the window; ``None`` when it is a
    repeat of one remembered (drop it)."""
    window = conf.PUSH_SUBSCRIBER_DUPLICATE_WINDOW
    if not window:
        return NOT_REMEMBERED
    # Hashed: the header is the sender's text, and cache keys must be short and plain.
    seen = f"{subscription_pk}\n{identity(header, body)}".encode()
    key = KEY_PREFIX + hashlib.sha256(seen).hexdigest()
    cache = caches[conf.PUSH_SUBSCRIBER_DUPLICATE_CACHE]
    try:
        first = cache.add(key, 1, timeout=window)
    except Exception:  # an unreachable cache must not lose content: let it through
        logger.warning("Could not check for a repeated delivery", exc_info=True)
        return NOT_REMEMBERED
    return Remembered(cache, key) if first else None
