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
from django.db import transaction

from django_push import UA, http, metrics
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.hub import intake
from django_push.hub.models import Content, HubSubscription, Ping

logger = logging.getLogger("django_push.hub")

# Answers worth fetching again later, besides 5xx: a timeout and "slow down".
TRANSIENT_STATUSES = frozenset({408, 429})
NOT_MODIFIED = 304


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch came to: the content stored (``None``: failed, unchanged or nobody
    subscribes), and when to fetch again after a transient failure."""

    content: Content | None = None
    retry_at: datetime.datetime | None = None


async def afetch(topic: str, hub_url: str, ping_id: int | None = None) -> Fetched:
    """Fetch ``topic`` and take it in (:func:`hub.intake.accept`). With ``ping_id``, the
    outcome is written to that ``Ping``, in the same transaction as the content: a ping is
    never fetched twice once its content is stored.

    With ``PUSH_HUB_CONDITIONAL_FETCH``, the request carries the validators of the content
    stored last, and a 304 is "unchanged". A 304 to a request that carried none is retried
    like a 5xx: nothing is stored, and the ping waits for its next attempt.
    """
    ping = None if ping_id is None else await Ping.objects.filter(pk=ping_id).afirst()
    last = await _last_validated(topic) if conf.PUSH_HUB_CONDITIONAL_FETCH else None
    headers = {} if last is None else _validators(last).headers()
    if conf.PUSH_HUB_FETCH_AUDIENCE:
        headers["User-Agent"] = await user_agent(topic, hub_url)
    try:
        response = await http.get(
            topic,
            headers=headers,
            follow_redirects=True,
            max_bytes=conf.PUSH_HUB_MAX_CONTENT_SIZE,
            guard=http.guard_enabled(),
        )
    except FetchError as exc:
        return await sync_to_async(_failed)(topic, ping, exc.reason, transient=_transient(exc))
    if response.status == NOT_MODIFIED:
        if last is None:
            reason = "HTTP 304 to a fetch without validators"
            return await sync_to_async(_failed)(topic, ping, reason, transient=True)
        return await sync_to_async(_not_modified)(topic, last, response, ping)
    if not response.ok:
        transient = response.status >= 500 or response.status in TRANSIENT_STATUSES
        reason = f"HTTP {response.status}"
        return await sync_to_async(_failed)(topic, ping, reason, transient=transient)
    return await sync_to_async(_accept)(topic, response, hub_url, ping)


async def user_agent(topic: str, hub_url: str) -> str:
    """The fetch's User-Agent with the topic's audience, as Google's hub wrote it:
    ``django-push/2.0 (+https://hub.example/hub/; 12 subscribers)``. One COUNT over the
    index ``push_hub_topic_lease``."""
    count = await HubSubscription.objects.active().filter(topic=topic).acount()
    return f"{UA} (+{hub_url}; {count} subscribers)"


async def _last_validated(topic: str) -> Content | None:
    """The content stored last for ``topic``, without its body, if it has validators."""
    last = (
        await Content.objects.filter(topic=topic)
        .order_by("-pk")
        .only("pk", "topic", "etag", "last_modified")
        .afirst()
    )
    return last if last is not None and _validators(last) else None


def _validators(content: Content) -> http.Validators:
    return http.Validators(content.etag, content.last_modified)


def _not_modified(topic: str, last: Content, response: http.Response, ping: Ping | None) -> Fetched:
    """The topic answered 304 to the validators of ``last``: unchanged, nothing delivered.
    A validator the 304 carries replaces the stored one; one it leaves out is kept."""
    if not Content.objects.filter(pk=last.pk).exists():  # pruned since: fetch it whole
        return _failed(topic, ping, "HTTP 304, but the last content is gone", transient=True)
    sent = http.Validators.of(response)
    fresh = http.Validators(sent.etag or last.etag, sent.last_modified or last.last_modified)
    with transaction.atomic():
        intake.keep_validators(last, fresh)
        if ping is not None:
            ping.unchanged(last, "HTTP 304 Not Modified")
    metrics.count_publish("unchanged")
    logger.info("Content of %s not modified (HTTP 304): nothing delivered", topic)
    return Fetched()


def fetch(topic: str, hub_url: str, ping_id: int | None = None) -> Fetched:
    """:func:`afetch` for sync callers (the publish task)."""
    return async_to_sync(afetch)(topic, hub_url, ping_id)


def _accept(topic: str, response: http.Response, hub_url: str, ping: Ping | None) -> Fetched:
    validators = http.Validators.of(response)
    try:
        return Fetched(
            intake.accept(topic, response.body, response.content_type, hub_url, ping, validators)
        )
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
