"""Reconciliation: fetch topics now and then, in case the hub missed a delivery.

A hub delivers at least once only while it keeps retrying; a subscriber that was down
longer than that, a notification the hub dropped, or content published before the
subscription was verified are lost otherwise. With ``PUSH_SUBSCRIBER_RECONCILE`` (or a
subscription's own ``reconcile_seconds``), each topic is fetched:

- once when its subscription is verified (the catch-up), and
- every interval after that, with a conditional GET (``If-None-Match``,
  ``If-Modified-Since``).

A body whose SHA-256 differs from the last one received, by push or by poll, is sent with the
``updated`` signal and ``polled=True``; the same hash is what the callback view compares a
pushed body with, so one content is sent once, whichever way it came first.

Work is claimed a batch at a time (claiming moves ``next_poll_at``, so two workers never poll
one topic at once) and polled concurrently over one guarded aiohttp session. Each failure
(an error status, a timeout, too many redirects, a body over ``PUSH_MAX_BODY_SIZE``, XML that
does not parse) costs one bounded request and a log line, and never stops the batch.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync, sync_to_async
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from django_push import http, metrics
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.links import parse_links
from django_push.subscriber.duplicates import body_digest
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated

if TYPE_CHECKING:
    from aiohttp import ClientSession

logger = logging.getLogger("django_push.subscriber")

# "missed": the poll found content that push had not brought (the number to watch).
Outcome = Literal["not_modified", "unchanged", "missed", "failed", "untrusted"]

# The columns a poll reads.
POLL_FIELDS = (
    "hub",
    "topic",
    "secret",
    "verified",
    "lease_expiration",
    "reconcile_seconds",
    "content_hash",
    "etag",
    "last_modified",
    "last_poll_error",
)
# Longest header values kept (the columns' sizes); longer ones are not sent back.
MAX_ETAG, MAX_LAST_MODIFIED = 255, 64


@dataclass
class Poll:
    """What one poll of one subscription's topic came to."""

    subscription: Subscription
    outcome: Outcome = "failed"
    error: str = ""
    etag: str = ""
    last_modified: str = ""


@dataclass
class Report:
    """Counts of a reconciliation run, by outcome."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def polled(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        found = ", ".join(f"{self.counts[name]} {name}" for name in sorted(self.counts))
        return f"{self.polled} polled" + (f" ({found})" if found else "")


def trusted(subscription: Subscription, url: str) -> bool:
    """Whether a body fetched from ``url`` may stand for the hub's signed delivery.

    A subscription with a secret accepts only content the hub signed; a plain-HTTP body has
    no signature, and anyone on the path could write it. So it is polled only over HTTPS,
    unless ``PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP`` says the site trusts that path.
    """
    return (
        not subscription.secret
        or urlsplit(url).scheme == "https"
        or conf.PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP
    )


def is_xml(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith(("/xml", "+xml"))


def well_formed(body: bytes) -> bool:
    """XML that parses (entities refused: no billion laughs)."""
    try:
        ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return False
    return True


# Claiming ------------------------------------------------------------------------------


def claim(size: int, now: datetime.datetime | None = None) -> list[Subscription]:
    """Take up to ``size`` due subscriptions, the longest due first, and plan their next
    poll: one SELECT, and one UPDATE per distinct interval in the batch."""
    now = now or timezone.now()
    with transaction.atomic():
        due = Subscription.objects.due(now).only(*POLL_FIELDS)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        batch = list(due.order_by(models.F("next_poll_at").asc(nulls_first=True), "pk")[:size])
        plan(batch, now)
    return batch


def plan(subscriptions: Iterable[Subscription], now: datetime.datetime) -> None:
    """Stamp ``last_poll_at`` and move ``next_poll_at`` one interval on."""
    by_interval: dict[int, list[int]] = {}
    for subscription in subscriptions:
        interval = subscription.poll_interval or conf.PUSH_SUBSCRIBER_RECONCILE or 3600
        by_interval.setdefault(interval, []).append(subscription.pk)
    for interval, pks in by_interval.items():
        Subscription.objects.filter(pk__in=pks).update(
            last_poll_at=now, next_poll_at=now + datetime.timedelta(seconds=interval)
        )


# Polling ---------------------------------------------------------------------------------


async def fetch(subscription: Subscription, session: ClientSession) -> Poll:
    """Poll one topic; content it has not seen is sent before this returns."""
    poll = Poll(subscription, etag=subscription.etag, last_modified=subscription.last_modified)
    topic = subscription.topic
    if not trusted(subscription, topic):
        poll.outcome, poll.error = "untrusted", "plain-HTTP topic of a subscription with a secret"
        return poll
    headers = {}
    if subscription.etag:
        headers["If-None-Match"] = subscription.etag
    if subscription.last_modified:
        headers["If-Modified-Since"] = subscription.last_modified
    try:
        response = await http.request(
            "GET",
            topic,
            headers=headers,
            max_bytes=conf.PUSH_MAX_BODY_SIZE,
            follow_redirects=True,
            session=session,
        )
    except FetchError as exc:
        poll.error = exc.reason
        return poll
    if response.status == 304:
        poll.outcome = "not_modified"
        return poll
    if not response.ok:
        poll.error = f"HTTP {response.status}"
        return poll
    if not trusted(subscription, response.url):
        poll.outcome, poll.error = "untrusted", f"redirected to plain HTTP ({response.url})"
        return poll
    poll.etag = _header(response, "ETag", MAX_ETAG)
    poll.last_modified = _header(response, "Last-Modified", MAX_LAST_MODIFIED)
    digest = body_digest(response.body)
    if digest == subscription.content_hash:
        poll.outcome = "unchanged"
        return poll
    return await sync_to_async(deliver)(poll, response, digest)


def _header(response: http.Response, name: str, longest: int) -> str:
    value = response.headers.get(name, "")
    return value if len(value) <= longest and value.isprintable() else ""


def deliver(poll: Poll, response: http.Response, digest: str) -> Poll:
    """Send new content with ``updated(polled=True)``; a receiver that raises leaves it
    unrecorded, so the next poll brings it again (as a hub would retry)."""
    subscription = poll.subscription
    if is_xml(response.content_type) and not well_formed(response.body):
        poll.error = f"invalid XML ({response.content_type})"
        poll.etag = poll.last_modified = ""  # fetch it whole next time
        return poll
    previous = subscription.content_hash
    if not subscription.receive_content(digest):  # a push brought it meanwhile
        poll.outcome = "unchanged"
        return poll
    links = parse_links(", ".join(response.links)) if response.links else None
    results = updated.send_robust(
        sender=subscription,
        notification=response.body,
        request=polled_request(response),
        links=links,
        polled=True,
    )
    failures = [result for _receiver, result in results if isinstance(result, Exception)]
    if failures:
        subscription.forget_content(digest, previous)
        logger.error(
            "A receiver of updated raised for polled content of %s: %r",
            subscription.topic,
            failures[0],
            exc_info=failures[0],
        )
        poll.error = f"a receiver raised {failures[0]!r}"
        poll.etag = poll.last_modified = ""
        return poll
    logger.info("Reconciliation found content of %s that push had not brought", subscription.topic)
    poll.outcome = "missed"
    return poll


def polled_request(response: http.Response) -> HttpRequest:
    """The ``request`` receivers get with polled content: a GET of the topic whose headers
    and body are the topic's answer, so receivers written for pushes, which read
    ``request.headers["Content-Type"]`` or ``request.body``, keep working."""
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = urlsplit(response.url).path
    for name, value in response.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        request.META.setdefault(key, value)
    request.META["CONTENT_LENGTH"] = str(len(response.body))
    request._body = response.body  # what request.body returns
    return request


async def poll_all(subscriptions: list[Subscription], session: ClientSession) -> list[Poll]:
    """Poll ``subscriptions`` concurrently (``PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY`` at once);
    one failing never stops the others."""
    gate = asyncio.Semaphore(conf.PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY)

    async def one(subscription: Subscription) -> Poll:
        async with gate:
            try:
                return await fetch(subscription, session)
            except Exception as exc:  # a bug must not cost the batch
                logger.exception("Reconciliation of %s failed", subscription.topic)
                return Poll(subscription, error=repr(exc))

    return list(await asyncio.gather(*(one(s) for s in subscriptions)))


def record(polls: Iterable[Poll]) -> Counter[str]:
    """Keep what the polls learnt: new validators and errors row by row (they are rare), the
    errors that ended in one UPDATE. Returns the counts by outcome."""
    counts: Counter[str] = Counter()
    cleared = []
    for poll in polls:
        counts[poll.outcome] += 1
        subscription = poll.subscription
        changes: dict[str, str] = {}
        if (poll.etag, poll.last_modified) != (subscription.etag, subscription.last_modified):
            changes.update(etag=poll.etag, last_modified=poll.last_modified)
        if poll.error:
            logger.warning("Reconciliation of %s: %s", subscription.topic, poll.error)
            changes["last_poll_error"] = poll.error[:1000]
        elif subscription.last_poll_error:
            if changes:
                changes["last_poll_error"] = ""
            else:
                cleared.append(subscription.pk)
        if changes:
            Subscription.objects.filter(pk=subscription.pk).update(**changes)
    if cleared:
        Subscription.objects.filter(pk__in=cleared).update(last_poll_error="")
    metrics.count_polls(counts)
    return counts


# Entry points ------------------------------------------------------------------------------


async def areconcile_due(max_batches: int | None = None) -> Report:
    """Poll every due subscription, a batch at a time, until none is due; every batch goes
    over one session, so connections to the same servers are kept."""
    report = Report()
    batches = 0
    claim_batch = sync_to_async(claim)
    async with _client() as client:
        while max_batches is None or batches < max_batches:
            batch = await claim_batch(conf.PUSH_SUBSCRIBER_RECONCILE_BATCH)
            if not batch:
                break
            polls = await poll_all(batch, client)
            report.counts.update(await sync_to_async(record)(polls))
            batches += 1
    return report


async def areconcile(subscriptions: Iterable[Subscription]) -> Report:
    """Poll these subscriptions now, due or not (the catch-up, the command's ``--all``),
    ``PUSH_SUBSCRIBER_RECONCILE_BATCH`` at a time."""
    report = Report()
    size = conf.PUSH_SUBSCRIBER_RECONCILE_BATCH
    pending: list[Iterator[Subscription]] = []

    def next_batch() -> list[Subscription]:  # iter() of a queryset queries: not on the loop
        if not pending:
            pending.append(iter(subscriptions))
        return list(itertools.islice(pending[0], size))

    take = sync_to_async(next_batch)
    async with _client() as client:
        while batch := await take():
            await sync_to_async(plan)(batch, timezone.now())
            polls = await poll_all(batch, client)
            report.counts.update(await sync_to_async(record)(polls))
    return report


def _client() -> ClientSession:
    return http.client_session(limit=conf.PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY)


def reconcile_due(max_batches: int | None = None) -> Report:
    """The sync twin of :func:`areconcile_due`."""
    return async_to_sync(areconcile_due)(max_batches)


def reconcile(subscriptions: Iterable[Subscription]) -> Report:
    """The sync twin of :func:`areconcile`."""
    return async_to_sync(areconcile)(subscriptions)


def catch_up(pk: int) -> Report:
    """The catch-up after a verification: poll subscription ``pk`` once, if it is polled.

    A row that has received nothing yet takes the last content of another row of the same
    topic (a subscription moved to another hub), so that content is not sent again.
    """
    batch = list(Subscription.objects.reconciled().filter(pk=pk).only(*POLL_FIELDS))
    for subscription in batch:
        if not subscription.content_hash:
            inherit_content(subscription)
    return reconcile(batch)


def inherit_content(subscription: Subscription) -> None:
    sibling = (
        Subscription.objects.filter(topic=subscription.topic)
        .exclude(pk=subscription.pk)
        .exclude(content_hash="")
        .order_by("-last_poll_at", "-pk")
        .values("content_hash", "etag", "last_modified")
        .first()
    )
    if sibling is None:
        return
    Subscription.objects.filter(pk=subscription.pk, content_hash="").update(**sibling)
    for name, value in sibling.items():
        setattr(subscription, name, value)


# The self-scheduling task runs again within this many seconds at most, so that a
# subscription verified meanwhile, or an interval shortened, is not left waiting long.
LONGEST_SLEEP = 3600


def next_run(now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When the next poll falls due (at least a second, at most ``LONGEST_SLEEP`` from now);
    ``None`` when reconciliation is off altogether."""
    now = now or timezone.now()
    reconciled = Subscription.objects.reconciled()
    if not conf.PUSH_SUBSCRIBER_RECONCILE and not reconciled.exists():
        return None
    latest = now + datetime.timedelta(seconds=LONGEST_SLEEP)
    earliest = now + datetime.timedelta(seconds=1)
    if reconciled.filter(next_poll_at__isnull=True).exists():  # never polled: due now
        return earliest
    soonest = reconciled.aggregate(soonest=models.Min("next_poll_at"))["soonest"]
    return max(earliest, min(soonest or latest, latest))
