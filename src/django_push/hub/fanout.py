"""Fan-out: claim a range of a content's subscriptions (or a batch of due retries), send it,
record it.

A range costs one row (``Span``), written when claimed and updated once when decided; only
the subscriptions that did not answer 2xx become ``Delivery`` rows, which the retry path
works on. Nothing here enqueues: a fan-out that finds more work than it can send says so
through its ``spread`` callback (``hub.tasks`` enqueues).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection, models, transaction
from django.utils import timezone

from django_push import http, metrics, protocol, signatures
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.hub import breakers, retry, signals
from django_push.hub.models import (
    Content,
    Delivery,
    DeliveryQuerySet,
    HubSubscription,
    Span,
    claim_until,
)
from django_push.hub.upkeep import remove
from django_push.links import format_links

logger = logging.getLogger("django_push.hub")


@dataclass(frozen=True, slots=True)
class Job:
    """One delivery to send, as plain values: no model instances on the hot path."""

    content_id: int
    published_at: datetime.datetime  # when the content was stored, for the latency metric
    subscription_id: int
    callback: str
    secret: str
    pk: int | None = None  # the ``Delivery`` row of a retry; None within a range


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    status: int | None
    error: str = ""
    held_until: datetime.datetime | None = None  # not sent: its host's breaker is open
    tripped: bool = False  # not sent: its host failed too often in this fan-out

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def failed(self) -> bool:
        """Sent and to be sent again (a 410 is an answer: the subscription ends)."""
        return not self.ok and self.status != 410 and not self.held

    @property
    def held(self) -> bool:
        """Not sent, for its host's breaker."""
        return self.held_until is not None or self.tripped


@dataclass(frozen=True, slots=True)
class Batch:
    """Claimed work: a range of one content (``span``), or retries (``Delivery`` rows)."""

    token: str
    jobs: list[Job] = field(default_factory=list)
    span: int | None = None
    content_id: int | None = None  # of the range
    more: bool = False  # the content has ranges left after this one
    breakers: breakers.Watch = breakers.UNWATCHED


NOTHING = Batch("")


# Claiming -------------------------------------------------------------------------------


def claim_range(size: int, content_id: int | None = None) -> Batch:
    """Hand out the next range of up to ``size`` subscriptions of an open content (the
    content ``content_id`` first, else the oldest), recorded as a ``Span`` claimed for
    ``PUSH_HUB_CLAIM_SECONDS``. Two workers never get one range: the content's row is
    locked while its cursor moves (a row lock on PostgreSQL, the write lock on SQLite)."""
    tried: set[int] = set()
    while True:
        open_ = Content.objects.open().exclude(pk__in=tried).order_by("pk")
        pk = None
        if content_id is not None and content_id not in tried:
            pk = open_.filter(pk=content_id).values_list("pk", flat=True).first()
        if pk is None:
            pk = open_.values_list("pk", flat=True).first()
        if pk is None:
            return NOTHING
        tried.add(pk)
        batch = _next_range(pk, size)
        if batch is not None:
            return batch


def _next_range(content_id: int, size: int) -> Batch | None:
    """The next range of the content ``content_id``; ``None`` when it has none left."""
    now = timezone.now()
    with transaction.atomic():
        if not _lock_open(content_id):
            return None
        topic, cursor, upto, published_at = (
            Content.objects.filter(pk=content_id)
            .values_list("topic", "cursor", "upto", "fetched_at")
            .get()
        )
        rows = list(
            HubSubscription.objects.in_range(topic, cursor + 1, upto)
            .order_by("pk")
            .values_list("pk", "callback", "secret")[:size]
        )
        last = rows[-1][0] if len(rows) == size else upto
        Content.objects.filter(pk=content_id).update(cursor=last, claimed_at=now)
        if not rows:  # the rest of the plan unsubscribed or expired meanwhile
            Content(pk=content_id).finish_if_done()
            return None
        token = uuid.uuid4().hex
        span = Span.objects.create(
            content_id=content_id,
            first=cursor + 1,
            last=last,
            claim=token,
            claimed_until=claim_until(),
        )
    jobs = [Job(content_id, published_at, *row) for row in rows]
    return Batch(token, jobs, span.pk, content_id, more=last < upto)


def _lock_open(content_id: int) -> bool:
    """Lock the row of the content ``content_id`` for this transaction if its plan is still
    open. SQLite has no row locks: a first statement that writes takes the database's write
    lock at once, where a read followed by a write could fail with "database is locked"."""
    still_open = Content.objects.open().filter(pk=content_id)
    if connection.features.has_select_for_update:
        return still_open.select_for_update().exists()
    return bool(still_open.update(cursor=models.F("cursor")))


def claim_range_again(token: str) -> Batch:
    """The range the sweeper claimed under ``token`` (its worker died): sent again whole,
    to its subscriptions still active now. The claim is renewed first: the task may have
    waited in the queue for longer than a claim lasts (a token is handed out once, so the
    range is still this task's unless a later sweep gave it another)."""
    ours = Span.objects.filter(claim=token, status=Span.Status.PENDING)
    if not ours.update(claimed_until=claim_until()):
        return NOTHING
    pk, content_id, topic, published_at, first, last = ours.values_list(
        "pk", "content_id", "content__topic", "content__fetched_at", "first", "last"
    ).get()
    rows = HubSubscription.objects.in_range(topic, first, last).order_by("pk")
    values = rows.values_list("pk", "callback", "secret")
    jobs = [Job(content_id, published_at, *row) for row in values]
    return Batch(token, jobs, pk, content_id)


def claim_retries(limit: int, token: str = "") -> Batch:
    """Claim up to ``limit`` due deliveries (retries, or sent again); with ``token``, take
    the batch the sweeper already claimed under it instead."""
    now = timezone.now()
    # A lease that ended after the content was stored gets nothing more (H-11); the
    # sweeper removes the subscription and its deliveries.
    live = {"subscription__expires_at__gt": now}
    if token:  # renewed first, as in claim_range_again
        claimed = Delivery.objects.filter(claim=token, status=Delivery.Status.PENDING, **live)
        Delivery.objects.filter(pk__in=list(claimed.values_list("pk", flat=True))).update(
            claimed_until=claim_until()
        )
        return Batch(token, _retry_jobs(claimed))
    token = uuid.uuid4().hex
    with transaction.atomic():
        # Never send an older content after a newer one: drop what a newer one supersedes.
        _count_superseded(Delivery.objects.due().drop_obsolete())
        Delivery.objects.due().filter(**live).claim(limit, token)
    return Batch(token, _retry_jobs(Delivery.objects.filter(claim=token)))


def _retry_jobs(claimed: models.QuerySet[Delivery]) -> list[Job]:
    rows = claimed.order_by("pk").values_list(
        "content_id",
        "content__fetched_at",
        "subscription_id",
        "subscription__callback",
        "subscription__secret",
        "pk",
    )
    return [Job(*row) for row in rows]


def claim(size: int, content_id: int | None = None, token: str = "") -> Batch:
    """The next work: the sweeper's batch under ``token`` first, then a range of an open
    content (``content_id`` first), then due retries."""
    if token:
        batch = claim_range_again(token)
        if not batch.jobs:
            batch = claim_retries(size, token)
        if batch.jobs:
            return batch
    batch = claim_range(size, content_id)
    return batch if batch.jobs else claim_retries(size)


# Sending --------------------------------------------------------------------------------

# A content's body and the headers every delivery of it carries.
Prepared = tuple[bytes, dict[str, str]]


async def afanout(
    content_id: int | None = None, token: str = "", spread: Callable[[], object] | None = None
) -> tuple[int, int]:
    """Send claimed work batch after batch until none is left: ``(sent, delivered)``. With
    ``token``, the batch the sweeper claimed under it goes first. ``spread`` is called once,
    in the claim's transaction, when a range leaves more of its content for another worker.

    One session serves every batch, and two batches are in flight at once: while one is
    being sent, the one before is recorded and the next claimed, in one trip to the
    database (:func:`_turn`).
    """
    size, limit = conf.PUSH_HUB_BATCH_SIZE, conf.PUSH_HUB_CONCURRENCY
    guard = http.guard_enabled()
    turn = sync_to_async(_turn)
    prepared: dict[int, Prepared] = {}
    sent = delivered = 0
    previous: tuple[Batch, asyncio.Future[list[Outcome]]] | None = None
    async with http.client_session(guard=guard, limit=limit) as session:
        senders = Senders(session, limit, prepared, guard)
        try:
            batch, loaded = await turn(None, size, content_id, token, set(), spread)
            while batch.jobs or previous is not None:
                sending = None
                if batch.jobs:
                    prepared.update(loaded)
                    sending = senders.submit(batch.jobs, batch.breakers.held)
                done = None
                if previous is not None:
                    done = (previous[0], await previous[1])
                    sent, delivered = _count(done[1], sent, delivered)
                if batch.more:
                    spread = None  # once per fan-out: the worker it starts spreads further
                # The last record claims again only if it may have made work due at once:
                # deliveries this fan-out held for a host whose breaker then stayed closed.
                more = sending is not None or (done is not None and any(o.tripped for o in done[1]))
                previous = (batch, sending) if sending is not None else None
                batch, loaded = await turn(
                    done, size if more else 0, content_id, "", set(prepared), spread
                )
        finally:
            await senders.close()
    return sent, delivered


def fanout(
    content_id: int | None = None, token: str = "", spread: Callable[[], object] | None = None
) -> tuple[int, int]:
    """:func:`afanout` for sync callers (the fan-out task)."""
    return async_to_sync(afanout)(content_id, token, spread)


def _turn(
    done: tuple[Batch, list[Outcome]] | None,
    size: int,
    content_id: int | None,
    token: str,
    loaded: set[int],
    spread: Callable[[], object] | None = None,
) -> tuple[Batch, dict[int, Prepared]]:
    """The database's part of one turn of the fan-out, in one call from the event loop:
    record the batch ``done`` was sent, claim the next (up to ``size``; none if 0), and load
    the contents it needs besides ``loaded``."""
    with transaction.atomic():
        if done is not None:
            record(*done)
        batch = claim(size, content_id, token) if size else NOTHING
        if batch.more and spread is not None:
            spread()
    if batch.jobs:  # after the commit: a probe's claim is a statement of its own
        batch = dataclasses.replace(batch, breakers=breakers.watch(batch.jobs))
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
        if content.sequence is not None and conf.PUSH_HUB_SEQUENCE_HEADER:
            headers[protocol.SEQUENCE_HEADER] = str(content.sequence)
        prepared[content.pk] = (content.delivered_body, headers)
    return prepared


class Senders:
    """``limit`` coroutines that send the jobs of every batch submitted, in order, over one
    session: no task per delivery, and never more than ``limit`` requests in flight, however
    many batches overlap."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        limit: int,
        prepared: dict[int, Prepared],
        guard: bool,
    ) -> None:
        self.session, self.prepared, self.guard = session, prepared, guard
        self.algorithm = conf.PUSH_HUB_SIGNATURE_ALGORITHM
        self.trips = breakers.Trips() if conf.PUSH_HUB_BREAKER else None
        self.queue: asyncio.Queue[tuple[Job, _Collected] | None] = asyncio.Queue()
        self.workers = [asyncio.ensure_future(self._work()) for _ in range(limit)]

    def submit(
        self, jobs: list[Job], held: dict[int, datetime.datetime] | None = None
    ) -> asyncio.Future[list[Outcome]]:
        """Queue ``jobs`` but those ``held`` (by index: their host's breaker is open, until
        when); the future is their outcomes, in the order they came."""
        collected = _Collected(len(jobs))
        held = held or {}
        for index, job in enumerate(jobs):
            until = held.get(index)
            if until is None:
                self.queue.put_nowait((job, collected))
            else:
                error = breakers.HELD.format(host=breakers.host_of(job.callback))
                collected.add(Outcome(job, None, error, until))
        return collected.future

    async def close(self) -> None:
        for _ in self.workers:
            self.queue.put_nowait(None)
        await asyncio.gather(*self.workers, return_exceptions=True)

    async def _work(self) -> None:
        while (item := await self.queue.get()) is not None:
            job, collected = item
            host = breakers.host_of(job.callback) if self.trips else ""
            if self.trips and job.pk is None and self.trips.holds(host):
                error = breakers.HELD.format(host=host)
                collected.add(Outcome(job, None, error, tripped=True))
                continue
            try:
                outcome = await self._send(job)
            except Exception as exc:  # a bug, not a failed delivery: the fan-out fails
                collected.fail(exc)
            else:
                if self.trips:
                    self.trips.count(host, outcome.failed)
                collected.add(outcome)

    async def _send(self, job: Job) -> Outcome:
        body, headers = self.prepared[job.content_id]
        if job.secret:  # H-16: signed only when the subscriber gave a secret
            signature = signatures.sign(job.secret, body, self.algorithm)
            headers = {**headers, protocol.SIGNATURE_HEADER: signature}
        try:
            status = await metrics.timed_post(
                http.deliver(self.session, job.callback, body, headers, guard=self.guard)
            )
        except FetchError as exc:
            return Outcome(job, None, exc.reason)
        return Outcome(job, status)


class _Collected:
    """The outcomes of one submitted batch, complete when every job has one."""

    def __init__(self, expected: int) -> None:
        self.future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self.outcomes: list[Outcome] = []
        self.expected = expected

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if len(self.outcomes) == self.expected and not self.future.done():
            self.future.set_result(self.outcomes)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


# Recording ------------------------------------------------------------------------------


def record(batch: Batch, outcomes: list[Outcome]) -> None:
    """Count a sent batch on the breakers of its hosts, then write back what happened to
    it: a range or retries."""
    now = timezone.now()
    breakers.tally(batch.breakers.watched, [o for o in outcomes if not o.held], now)
    outcomes = _hold_tripped(outcomes, now)
    if batch.span is not None:
        record_range(batch, outcomes)
    else:
        record_retries(batch, outcomes)


def _hold_tripped(outcomes: list[Outcome], now: datetime.datetime) -> list[Outcome]:
    """The deliveries the fan-out held for a host it saw failing are held until that host's
    breaker ends, or due at once where it is closed: the retry path sends them under it."""
    hosts = {breakers.host_of(outcome.job.callback) for outcome in outcomes if outcome.tripped}
    if not hosts:
        return outcomes
    until = breakers.open_until(hosts, now)
    return [
        dataclasses.replace(
            outcome, held_until=until.get(breakers.host_of(outcome.job.callback), now)
        )
        if outcome.tripped
        else outcome
        for outcome in outcomes
    ]


def _split(
    outcomes: list[Outcome],
) -> tuple[list[int], list[Outcome], list[int], list[Outcome]]:
    """(subscriptions delivered, outcomes failed but 410, subscriptions gone, outcomes held
    by a breaker)."""
    held = [outcome for outcome in outcomes if outcome.held]
    ok = [outcome.job.subscription_id for outcome in outcomes if outcome.ok]
    failed = [outcome for outcome in outcomes if outcome.failed]
    gone = [outcome.job.subscription_id for outcome in outcomes if outcome.status == 410]
    return ok, failed, gone, held


def record_range(batch: Batch, outcomes: list[Outcome]) -> None:
    """Decide a range in one UPDATE: its counts; subscriptions that did not answer 2xx
    become delivery rows (one INSERT), on the retry schedule; 410 Gone removes them. An
    outcome of a range another worker took over (its claim expired) is dropped: that
    worker records its own."""
    assert batch.span is not None
    assert batch.content_id is not None
    now = timezone.now()
    ok, failed, gone, held = _split(outcomes)
    with transaction.atomic():
        decided = Span.objects.filter(
            pk=batch.span, claim=batch.token, status=Span.Status.PENDING
        ).update(
            status=Span.Status.DONE,
            delivered=len(ok),
            failed=len(failed) + len(gone) + len(held),
            finished_at=now,
            claimed_until=None,
        )
        if not decided:
            return
        _delivered(ok)
        _gone(gone)
        if failed or held:
            _owe_again(failed, held, now)
        if Delivery.objects.retrying():  # else nothing can be superseded: one indexed probe
            # The range's subscriptions lie between its first and last (others of the pks
            # between are not of this topic: what they have obsolete may go with them).
            ids = [outcome.job.subscription_id for outcome in outcomes]
            _count_superseded(Delivery.objects.drop_obsolete_between(min(ids), max(ids)))
        Content(pk=batch.content_id).finish_if_done()
    metrics.count_deliveries(outcomes, len(gone), now)


def _delivered(subscription_ids: list[int]) -> None:
    """Mark the subscriptions that had failures healthy again. A successful delivery writes
    nothing else to a subscription's row: its last delivery is read from the ranges
    (:meth:`HubSubscription.last_delivered_at`)."""
    if subscription_ids:
        HubSubscription.objects.filter(pk__in=subscription_ids, failures__gt=0).update(failures=0)


def _gone(subscription_ids: list[int]) -> None:
    if subscription_ids:
        # H-17: 410 Gone ends the subscription (its deliveries go with it).
        logger.info("Subscriptions %s answered 410 Gone and were removed", subscription_ids)
        remove(HubSubscription.objects.filter(pk__in=subscription_ids), "gone")


def _owe_again(failed: list[Outcome], held: list[Outcome], now: datetime.datetime) -> None:
    """Delivery rows for the failures of a range, after their first attempt, and for its
    deliveries held by a breaker, not attempted yet (due when it ends; a held row of an
    older content owes this one instead); a subscription removed meanwhile (unsubscribed,
    expired) gets none."""
    wanted = HubSubscription.objects.filter(pk__in=[o.job.subscription_id for o in failed + held])
    if connection.features.has_select_for_update:
        wanted = wanted.select_for_update()  # kept until the rows referring to them exist
    alive = set(wanted.values_list("pk", flat=True))
    by_until: dict[tuple[int, datetime.datetime, str], list[int]] = {}
    for outcome in held:
        if outcome.job.subscription_id in alive:
            key = (outcome.job.content_id, outcome.held_until or now, outcome.error)
            by_until.setdefault(key, []).append(outcome.job.subscription_id)
    for (content_id, until, error), ids in by_until.items():
        Delivery.objects.owe_held(content_id, ids, until, error)
    rows = []
    gave_up = []
    for outcome in failed:
        if outcome.job.subscription_id not in alive:
            continue
        retry_at = retry.next_attempt(1, now, now)
        row = Delivery(
            content_id=outcome.job.content_id,
            subscription_id=outcome.job.subscription_id,
            status=Delivery.Status.PENDING if retry_at else Delivery.Status.FAILED,
            attempts=1,
            first_failure_at=now,
            next_attempt_at=retry_at or now,
            last_status=outcome.status,
            last_error=outcome.error or f"HTTP {outcome.status}",
        )
        rows.append(row)
        if retry_at is None:
            gave_up.append((row, outcome.job.callback))
        else:
            metrics.count_delivery("retried")
            logger.warning(
                "Delivery to %s failed (%s); retry 1 at %s",
                outcome.job.callback,
                row.last_error,
                retry_at,
            )
    Delivery.objects.bulk_create(rows)
    tried = {outcome.job.subscription_id for outcome in failed} & alive
    HubSubscription.objects.filter(pk__in=tried).update(failures=models.F("failures") + 1)
    for row, callback in gave_up:
        _gave_up(row, callback)


def record_retries(batch: Batch, outcomes: list[Outcome]) -> None:
    """Write back what happened to claimed delivery rows: delivered, retry later, give up,
    or subscription gone. Rows are selected by the batch's claim token, so the common case
    (all delivered) costs two UPDATE statements whatever the batch size."""
    now = timezone.now()
    _ok, failed, gone, held = _split(outcomes)
    by_status: dict[int, list[int]] = {}
    for outcome in outcomes:
        if outcome.ok and outcome.status is not None and outcome.job.pk is not None:
            by_status.setdefault(outcome.status, []).append(outcome.job.pk)
    claimed = Delivery.objects.filter(claim=batch.token)
    with transaction.atomic():
        for status, pks in by_status.items():
            claimed.filter(pk__in=pks).deliver(status, now)
        _gone(gone)
        for outcome in failed:
            _schedule_retry(outcome, batch.token, now)
        _hold(claimed, held, now)
    metrics.count_deliveries(outcomes, len(gone), now)


def _hold(claimed: DeliveryQuerySet, held: list[Outcome], now: datetime.datetime) -> None:
    """Put off the claimed rows held by a breaker, one UPDATE per host."""
    by_until: dict[datetime.datetime, list[int]] = {}
    for outcome in held:
        if outcome.held_until is not None and outcome.job.pk is not None:
            by_until.setdefault(outcome.held_until, []).append(outcome.job.pk)
    for until, pks in by_until.items():
        claimed.filter(pk__in=pks).hold(until, now)


def _schedule_retry(outcome: Outcome, token: str, now: datetime.datetime) -> None:
    # Still ours? It may have been dropped (admin, a 410 in the same batch, a newer content)
    # or, after the claim expired, claimed by another worker, which records its own outcome.
    delivery = Delivery.objects.filter(pk=outcome.job.pk or 0, claim=token).first()
    if delivery is None:
        return
    if delivery.fail(outcome.status, outcome.error, now):
        _gave_up(delivery, outcome.job.callback)
    else:
        metrics.count_delivery("retried")
        logger.warning(
            "Delivery to %s failed (%s); retry %s at %s",
            outcome.job.callback,
            delivery.last_error,
            delivery.attempts,
            delivery.next_attempt_at,
        )


def _gave_up(delivery: Delivery, callback: str) -> None:
    logger.error("Gave up delivering to %s: %s", callback, delivery.last_error)
    metrics.count_delivery("gave_up")
    failed = {
        "subscription_id": delivery.subscription_id,
        "content_id": delivery.content_id,
        "attempts": delivery.attempts,
        "reason": delivery.last_error,
    }
    signals.send_on_commit(signals.delivery_failed, Delivery, failed)


def _count_superseded(count: int) -> None:
    if count:
        logger.info("Dropped %s pending delivery(ies) superseded by a newer content", count)
        metrics.count_delivery("superseded", count)
