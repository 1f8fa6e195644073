"""Fetch a topic for a publish request and hand the body to :func:`hub.intake.accept`.

A transient failure is not retried here: :func:`fetch` returns when to try again, and
``hub.tasks`` enqueues the retry.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

import aiohttp
from asgiref.sync import async_to_sync, sync_to_async

from django_push import http, metrics
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.hub import intake
from django_push.hub.models import Content, Ping

logger = logging.getLogger("django_push.hub")

# Answers worth fetching again later, besides 5xx: a timeout and "slow down".
TRANSIENT_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch came to: the content stored (``None``: failed, unchanged or nobody
    subscribes), and when to fetch again after a transient failure."""

    content: Content | None = None
    retry_at: datetime.datetime | None = None


async def afetch(topic: str, hub_url: str, ping_id: int | None = None) -> Fetched:
    """Fetch ``topic`` and take it in (:func:`hub.intake.accept`). With ``ping_id``, the
    outcome is written to that ``Ping``, in the same transaction as the content: a ping is
    never fetched twice once its content is stored."""
    ping = None if ping_id is None else await Ping.objects.filter(pk=ping_id).afirst()
    try:
        response = await http.get(
            topic,
            follow_redirects=True,
            max_bytes=conf.PUSH_HUB_MAX_CONTENT_SIZE,
            guard=http.guard_enabled(),
        )
    except FetchError as exc:
        return await sync_to_async(_failed)(topic, ping, exc.reason, transient=_transient(exc))
    if not response.ok:
        transient = response.status >= 500 or response.status in TRANSIENT_STATUSES
        reason = f"HTTP {response.status}"
        return await sync_to_async(_failed)(topic, ping, reason, transient=transient)
    return await sync_to_async(_accept)(topic, response, hub_url, ping)


def fetch(topic: str, hub_url: str, ping_id: int | None = None) -> Fetched:
    """:func:`afetch` for sync callers (the publish task)."""
    return async_to_sync(afetch)(topic, hub_url, ping_id)


def _accept(topic: str, response: http.Response, hub_url: str, ping: Ping | None) -> Fetched:
    try:
        return Fetched(intake.accept(topic, response.body, response.content_type, hub_url, ping))
    except intake.PublishRefused as exc:
        return _failed(topic, ping, str(exc), transient=False)


def _transient(exc: FetchError) -> bool:
    """A timeout or a failed connection, not a refusal: the topic may answer next time.
    Over the size cap, too many redirects or a refused address are final."""
    if isinstance(exc, http.GuardRefusal):
        return False
    return isinstance(exc.__cause__, (TimeoutError, aiohttp.ClientConnectionError))


def _failed(topic: str, ping: Ping | None, reason: str, *, transient: bool) -> Fetched:
    retry_at = None if ping is None else ping.fail(reason, transient=transient)
    metrics.count_publish("failed" if retry_at is None else "retried")
    if retry_at is None:
        logger.error("Hub could not fetch %s: %s", topic, reason)
    else:
        logger.warning("Hub could not fetch %s (%s); retry at %s", topic, reason, retry_at)
    return Fetched(retry_at=retry_at)
