"""Publish: fetch a topic once, store it once, and deliver it to every active subscription."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import uuid
from dataclasses import dataclass

import aiohttp
from asgiref.sync import async_to_sync, sync_to_async
from django.db import models, transaction
from django.utils import timezone

from django_push import http, metrics, protocol, signatures
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.hub import feeddiff, signals
from django_push.hub.models import (
    Content,
    Delivery,
    HubSubscription,
    Intent,
    Ping,
    SubscriptionQuerySet,
)
from django_push.links import format_links
from django_push.tasks import enqueue

logger = logging.getLogger("django_push.hub")


async def afetch(topic: str, hub_url: str, ping_id: int | None = None) -> Content | None:
    """Fetch ``topic`` and store it as one ``Content`` row; ``None`` when the fetch fails or
    the body is the one stored last (nothing new to deliver).

    With ``ping_id``, the outcome is written to that ``Ping`` (in the same transaction as
    the content, so a ping is never fetched twice once its content is stored), and a
    transient failure is retried later.
    """
    ping = None if ping_id is None else await Ping.objects.filter(pk=ping_id).afirst()
    try:
        response = await http.get(
            topic,
            follow_redirects=True,
            max_bytes=conf.PUSH_HUB_MAX_CONTENT_SIZE,
            guard=http.guard_enabled(),
        )
    except FetchError as exc:
        failed = sync_to_async(_fetch_failed)
        await failed(topic, hub_url, ping, exc.reason, transient=_transient(exc))
        return None
    if not response.ok:
        transient = response.status >= 500 or response.status in TRANSIENT_STATUSES
        failed = sync_to_async(_fetch_failed)
        await failed(topic, hub_url, ping, f"HTTP {response.status}", transient=transient)
        return None
    return await sync_to_async(_keep)(topic, response, hub_url, ping)


def fetch(topic: str, hub_url: str, ping_id: int | None = None) -> Content | None:
    """:func:`afetch` for sync callers (the publish task)."""
    return async_to_sync(afetch)(topic, hub_url, ping_id)


def _keep(topic: str, response: http.Response, hub_url: str, ping: Ping | None) -> Content | None:
    """Store what was fetched, unless it is the body stored last."""
    last = Content.objects.latest_of(topic)
    if last is not None and last.sha256 == hashlib.sha256(response.body).hexdigest():
        logger.info("Hub fetched %s: unchanged, nothing delivered", topic)
        if ping is not None:
            ping.unchanged(last)
        metrics.count_publish("unchanged")
        return None
    metrics.count_publish("fetched")
    return store(topic, response.body, response.content_type, hub_url, ping)


# Answers worth fetching again later, besides 5xx: a timeout and "slow down".
TRANSIENT_STATUSES = frozenset({408, 429})


def _transient(exc: FetchError) -> bool:
    """A timeout or a failed connection, not a refusal: the topic may answer next time.
    Over the size cap, too many redirects or a refused address are final."""
    if isinstance(exc, http.GuardRefusal):
        return False
    return isinstance(exc.__cause__, (TimeoutError, aiohttp.ClientConnectionError))


def _fetch_failed(
    topic: str, hub_url: str, ping: Ping | None, reason: str, *, transient: bool
) -> None:
    retry_at = None if ping is None else ping.fail(reason, transient=transient)
    metrics.count_publish("failed" if retry_at is None else "retried")
    if retry_at is None:
        logger.error("Hub could not fetch %s: %s", topic, reason)
        return
    from django_push.hub.tasks import publish_task

    logger.warning("Hub could not fetch %s (%s); retry at %s", topic, reason, retry_at)
    enqueue(publish_task, topic, hub_url, ping.pk if ping else None, run_after=retry_at)


def store(
    topic: str, body: bytes, content_type: str, hub_url: str, ping: Ping | None = None
) -> Content:
    """Store one version of ``topic`` and a pending delivery for each active subscription
    (none when it is a feed diff without new entries)."""
    diff = feeddiff.for_topic(topic, body, content_type)  # once per content, not per subscriber
    with transaction.atomic():
        content = Content.objects.create(
            topic=topic,
            body=body,
            content_type=content_type,
            sha256=hashlib.sha256(body).hexdigest(),
            hub_url=hub_url,
            feed_diff=None if diff is None else diff.body,
        )
        # A feed diff with no new entry is stored (the next diff starts from it) but owed
        # to nobody.
        news = diff is None or diff.new > 0
        created = Delivery.objects.owe(content) if news else 0
        if ping is not None:
            ping.fetched(content)
        signals.send_on_commit(
            signals.content_published, Content, {"content": content, "deliveries": created}
        )
    return content


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed delivery, as plain values: no model instances on the hot path."""

    pk: int
    content_id: int
    subscription_id: int
    callback: str
    secret: str


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Batch:
    token: str
    jobs: list[Job]


def claim(limit: int, content_id: int | None = None, token: str = "") -> Batch:
    """Claim up to ``limit`` due deliveries for this worker until the claim expires; with
    ``token``, take the batch the sweeper already claimed under it instead."""
    now = timezone.now()
    # A lease that ended after the content was stored gets nothing more (H-11); the
    # sweeper removes the subscription and its deliveries.
    live = {"subscription__expires_at__gt": now}
    if token:
        claimed = Delivery.objects.filter(claim=token, claimed_until__gt=now, **live)
        return Batch(token, _jobs(claimed.filter(status=Delivery.Status.PENDING)))
    token = uuid.uuid4().hex
    with transaction.atomic():
        due = Delivery.objects.due().filter(**live)
        if content_id is not None:
            due = due.filter(content_id=content_id)
        due.claim(limit, token)
    return Batch(token, _jobs(Delivery.objects.filter(claim=token)))


def _jobs(claimed: models.QuerySet[Delivery]) -> list[Job]:
    rows = claimed.order_by("pk").values_list(
        "pk", "content_id", "subscription_id", "subscription__callback", "subscription__secret"
    )
    return [Job(*row) for row in rows]


# A content's body and the headers every delivery of it carries.
Prepared = tuple[bytes, dict[str, str]]


async def afanout(content_id: int | None = None, token: str = "") -> tuple[int, int]:
    """Deliver due deliveries batch after batch until none is left: ``(sent, delivered)``.
    With ``token``, the batch the sweeper claimed under it goes first.

    One session serves every batch, and two batches are in flight at once: while one is
    being sent, the one before is recorded and the next claimed, in one trip to the
    database (:func:`_turn`).
    """
    size, limit = conf.PUSH_HUB_BATCH_SIZE, conf.PUSH_HUB_CONCURRENCY
    guard = http.guard_enabled()
    semaphore = asyncio.Semaphore(limit)
    turn = sync_to_async(_turn)
    prepared: dict[int, Prepared] = {}
    sent = delivered = 0
    previous: tuple[Batch, asyncio.Future[list[Outcome]]] | None = None
    async with http.client_session(guard=guard, limit=limit) as session:
        batch, loaded = await turn(None, size, content_id, token, set())
        while batch.jobs:
            prepared.update(loaded)
            sending = asyncio.ensure_future(
                _send_all(session, semaphore, batch.jobs, prepared, guard)
            )
            done = None
            if previous is not None:
                done = (previous[0], await previous[1])
                sent, delivered = _count(done[1], sent, delivered)
            # A second batch: work enough for another worker (the sweeper enqueues its own).
            spread = previous is None and not token
            previous = (batch, sending)
            batch, loaded = await turn(done, size, content_id, "", set(prepared), spread)
        if previous is not None:
            done = (previous[0], await previous[1])
            sent, delivered = _count(done[1], sent, delivered)
            await turn(done, 0, content_id, "", set(prepared))
    return sent, delivered


def fanout(content_id: int | None = None, token: str = "") -> tuple[int, int]:
    """:func:`afanout` for sync callers (the fan-out task)."""
    return async_to_sync(afanout)(content_id, token)


def _turn(
    done: tuple[Batch, list[Outcome]] | None,
    size: int,
    content_id: int | None,
    token: str,
    loaded: set[int],
    spread: bool = False,
) -> tuple[Batch, dict[int, Prepared]]:
    """The database's part of one turn of the fan-out, in one call from the event loop:
    record the batch ``done`` was sent, claim the next (up to ``size``; none if 0, the
    sweeper's under ``token`` first), and load the contents it needs besides ``loaded``.
    With ``spread``, a batch claimed means work for one more fan-out task."""
    from django_push.hub.tasks import spread_fanout

    with transaction.atomic():
        if done is not None:
            record(*done)
        batch = claim(size, content_id, token) if size else Batch("", [])
        if token and not batch.jobs:  # the sweeper's batch is gone: go on with due work
            batch = claim(size, content_id)
        if spread and batch.jobs:
            spread_fanout(content_id)
    missing = {job.content_id for job in batch.jobs} - loaded
    return batch, _prepare(missing) if missing else {}


def _count(outcomes: list[Outcome], sent: int, delivered: int) -> tuple[int, int]:
    return sent + len(outcomes), delivered + sum(1 for outcome in outcomes if outcome.ok)


def _prepare(content_ids: set[int]) -> dict[int, Prepared]:
    """Body and headers of each content, loaded once per fan-out (H-14, H-15)."""
    prepared = {}
    for content in Content.objects.filter(pk__in=content_ids):
        headers = {
            "Content-Type": content.content_type or "application/octet-stream",
            "Link": format_links([(content.hub_url, "hub"), (content.topic, "self")]),
            protocol.DELIVERY_ID_HEADER: content.delivery_id,
        }
        prepared[content.pk] = (content.delivered_body, headers)
    return prepared


async def _send_all(
    session: aiohttp.ClientSession,
    semaphore: asyncio.Semaphore,
    batch: list[Job],
    prepared: dict[int, Prepared],
    guard: bool,
) -> list[Outcome]:
    algorithm = conf.PUSH_HUB_SIGNATURE_ALGORITHM

    async def send(job: Job) -> Outcome:
        body, headers = prepared[job.content_id]
        if job.secret:  # H-16: signed only when the subscriber gave a secret
            signature = signatures.sign(job.secret, body, algorithm)
            headers = {**headers, protocol.SIGNATURE_HEADER: signature}
        async with semaphore:
            try:
                status = await metrics.timed_post(
                    http.deliver(session, job.callback, body, headers, guard=guard)
                )
            except FetchError as exc:
                return Outcome(job, None, exc.reason)
        return Outcome(job, status)

    return await asyncio.gather(*(send(job) for job in batch))


def record(batch: Batch, outcomes: list[Outcome]) -> None:
    """Write back what happened: delivered, retry later, give up, or subscription gone.

    Rows are selected by the batch's claim token, so the common case (all delivered)
    costs two UPDATE statements whatever the batch size.
    """
    now = timezone.now()
    not_delivered = [outcome for outcome in outcomes if not outcome.ok]
    gone = [outcome.job.subscription_id for outcome in not_delivered if outcome.status == 410]
    by_status: dict[int, list[int]] = {}
    for outcome in outcomes:
        if outcome.ok and outcome.status is not None:
            by_status.setdefault(outcome.status, []).append(outcome.job.pk)
    claimed = Delivery.objects.filter(claim=batch.token)
    with transaction.atomic():
        if len(by_status) == 1:  # the common case: one UPDATE for the whole batch
            [(status, _)] = by_status.items()
            if not_delivered:
                claimed = claimed.exclude(pk__in=[outcome.job.pk for outcome in not_delivered])
            claimed.deliver(status, now)
        else:
            for status, pks in by_status.items():
                claimed.filter(pk__in=pks).deliver(status, now)
        if gone:
            # H-17: 410 Gone ends the subscription (its deliveries go with it).
            logger.info("Subscriptions %s answered 410 Gone and were removed", gone)
            remove(HubSubscription.objects.filter(pk__in=gone), "gone")
        for outcome in not_delivered:
            if outcome.status != 410:
                _schedule_retry(outcome, batch.token, now)
    metrics.count_deliveries(outcomes, len(gone), now)


def _schedule_retry(outcome: Outcome, token: str, now: datetime.datetime) -> None:
    # Still ours? It may have been dropped (admin, a 410 in the same batch) or, after the
    # claim expired, claimed by another worker, which will record its own outcome.
    delivery = Delivery.objects.filter(pk=outcome.job.pk, claim=token).first()
    if delivery is None:
        return
    if delivery.fail(outcome.status, outcome.error, now):
        logger.error("Gave up delivering to %s: %s", outcome.job.callback, delivery.last_error)
        metrics.count_delivery("gave_up")
        failed = {
            "subscription_id": delivery.subscription_id,
            "content_id": delivery.content_id,
            "attempts": delivery.attempts,
            "reason": delivery.last_error,
        }
        signals.send_on_commit(signals.delivery_failed, Delivery, failed)
    else:
        metrics.count_delivery("retried")
        logger.warning(
            "Delivery to %s failed (%s); retry %s at %s",
            outcome.job.callback,
            delivery.last_error,
            delivery.attempts,
            delivery.next_attempt_at,
        )


def prune() -> tuple[int, int]:
    """Delete what is older than ``PUSH_HUB_RETENTION`` and finished: contents with no
    pending delivery (their deliveries go with them), then decided verifications and
    publish requests: ``(contents, requests)``."""
    cutoff = timezone.now() - datetime.timedelta(seconds=conf.PUSH_HUB_RETENTION)
    old = Content.objects.filter(fetched_at__lt=cutoff).exclude(
        deliveries__status=Delivery.Status.PENDING
    )
    contents = old.count()
    old.delete()
    intents, _ = Intent.objects.finished_before(cutoff).delete()
    pings, _ = Ping.objects.finished_before(cutoff).delete()
    return contents, intents + pings


def expire_leases() -> int:
    """Delete subscriptions whose lease has ended (H-11); returns how many."""
    return remove(HubSubscription.objects.expired(), "expired")


def remove(subscriptions: SubscriptionQuerySet, reason: str) -> int:
    """Delete ``subscriptions`` (their deliveries go too) and, once committed, send
    ``subscription_removed`` for each with ``reason``; returns how many were deleted.

    The rows are loaded (and locked until deleted) only when a receiver is connected;
    otherwise this is the bare DELETE it always was.
    """
    with transaction.atomic():
        rows = []
        if signals.subscription_removed.has_listeners(HubSubscription):
            rows = list(subscriptions.select_for_update())
        _, deleted = subscriptions.delete()
        each = [{"subscription": row, "reason": reason} for row in rows]
        signals.send_on_commit(signals.subscription_removed, HubSubscription, *each)
    return deleted.get(HubSubscription._meta.label, 0)
