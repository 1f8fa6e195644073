"""Task definitions of the hub, and the only hub module that enqueues; the work itself is in
verification, fetching, fanout and upkeep."""

from __future__ import annotations

import datetime
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from django.db import OperationalError, transaction
from django.utils import timezone

from django_push.conf import conf
from django_push.tasks import enqueue, task

if TYPE_CHECKING:
    from django_push.hub.models import DeliveryQuerySet, Ping

logger = logging.getLogger("django_push.hub")


# Attempts of a task body that meets a locked SQLite database, and the first back-off.
LOCKED_ATTEMPTS = 6
LOCKED_BACKOFF = 0.05

_R = TypeVar("_R")
_P = ParamSpec("_P")


def retry_locked(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``function`` again at once, with a short doubling back-off, when SQLite answers
    "database is locked" (another process holds the write lock): the work goes on now
    instead of failing and waiting for the sweep. Other errors are raised as they are."""

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for attempt in range(LOCKED_ATTEMPTS):
            try:
                return function(*args, **kwargs)
            except OperationalError as exc:
                if "database is locked" not in str(exc) or attempt == LOCKED_ATTEMPTS - 1:
                    raise
                delay = LOCKED_BACKOFF * 2**attempt
                logger.warning("Database is locked; %s again in %.2f s", function.__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


# Seconds a verification task on a worker waits after a batch that was not full, to let
# a trickle of subscribe requests gather into the next batch.
GATHER_SECONDS = 0.2


@task()
def verify_intent_task(intent_id: int | None = None, gather: float = 0.0) -> int:
    """Verify pending intents a batch at a time until none is claimable, waiting ``gather``
    seconds after a batch that was not full; returns how many were decided. (``intent_id``
    is not needed: tasks enqueued by 2.0 still carry it.)"""
    from django_push.hub.models import Delivery, Intent
    from django_push.hub.verification import verify_pending

    Intent.objects.task_started()  # first: requests from now on enqueue another task
    decided = verify_pending(gather=gather)
    if conf.PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE and Delivery.objects.untried().exists():
        start_fanout()  # the latest contents owed to the new subscriptions
    return decided


def start_verification(intent_id: int) -> bool:
    """Enqueue a verification task for the new intent ``intent_id``, unless one is already
    queued and has not started: it starts after this intent was committed, and verifies it
    too. Returns True if enqueued.

    So a stream of subscribe requests costs one queued task at a time, not one per request.
    """
    from django_push.hub.models import Intent

    if Intent.objects.task_coming():
        return False
    Intent.objects.task_queued(intent_id)
    # A backend that can defer runs tasks on workers; the immediate one runs this one in
    # the request, which must not wait.
    configured = verify_intent_task.using(backend=conf.PUSH_TASK_BACKEND)
    gather = GATHER_SECONDS if configured.get_backend().supports_defer else 0.0
    return enqueue(verify_intent_task, None, gather)


@task()
def publish_task(topic: str, hub_url: str, ping_id: int | None = None) -> int | None:
    """Fetch ``topic`` once, then deliver it from here; a range that leaves more of it makes
    the fan-out enqueue a task for another worker.

    With ``ping_id`` (the endpoint's publish requests), the ``Ping`` is claimed first: a ping
    already fetched, or held by a live worker, is left alone.
    """
    from django_push.hub.models import Ping

    if ping_id is not None and not Ping.objects.due().claim_one(ping_id):
        return None
    try:
        return _publish(topic, hub_url, ping_id)
    except Exception as exc:
        # A bug or a broken database, not a failed fetch: the ping counts an attempt, is
        # tried again with back-off, and fails for good past PUSH_HUB_RETRY_HORIZON, instead
        # of being claimed again after every claim period, forever.
        if ping_id is None:
            raise
        ping = Ping.objects.get(pk=ping_id)
        retry_at = ping.fail(f"the publish task raised {type(exc).__name__}", transient=True)
        logger.exception(
            "Publishing %s raised; %s", topic, f"retry at {retry_at}" if retry_at else "gave up"
        )
        if retry_at is not None:
            enqueue(publish_task, topic, hub_url, ping_id, run_after=retry_at)
        raise


@retry_locked
def _publish(topic: str, hub_url: str, ping_id: int | None) -> int | None:
    from django_push.hub.fetching import fetch
    from django_push.hub.models import HubSubscription, Ping

    if topic not in HubSubscription.objects.followed([topic]):
        # Nobody would receive it (the last lease ended since the ping): fetch nothing.
        logger.info("Not fetching %s: no active subscriber", topic)
        if ping_id is not None:
            Ping.objects.get(pk=ping_id).skip()
        return None
    fetched = fetch(topic, hub_url, ping_id)
    if fetched.retry_at is not None:
        enqueue(publish_task, topic, hub_url, ping_id, run_after=fetched.retry_at)
    if fetched.content is None:
        return None
    # This worker starts delivering at once, without a round trip through the queue (its
    # claim, its result) before the first POST.
    if fetched.content.owed:
        fanout_task.call(fetched.content.pk)
    return fetched.content.pk


def start_fanout(content_id: int | None = None) -> bool:
    """Enqueue a fan-out task (of the content ``content_id`` first, else of whatever work is
    due); True if enqueued. One is enough: a fan-out that claims a range leaving more of its
    content enqueues one more (:func:`spread_fanout`), so a large publish spreads over as many
    workers as are free, without first enqueuing a task per range."""
    return enqueue(fanout_task, content_id)


def spread_fanout(content_id: int | None) -> None:
    """Once the caller's transaction commits, enqueue one more fan-out task for another
    worker, at a low priority: it never stands before the next publish's tasks. Nothing if
    the backend runs tasks in the caller (the immediate one)."""
    configured = fanout_task.using(backend=conf.PUSH_TASK_BACKEND)
    if configured.get_backend().supports_defer:
        transaction.on_commit(lambda: enqueue(fanout_task, content_id, priority=SPREAD_PRIORITY))


# Below the default (0) of every other task of the hub.
SPREAD_PRIORITY = -10


@task()
@retry_locked
def fanout_task(content_id: int | None = None, token: str = "") -> list[int]:
    """Deliver the batch claimed under ``token`` (the sweeper's), then ranges of open
    contents (``content_id`` first) and due retries until none is left; returns
    ``[sent, delivered]``."""
    from django_push.hub.fanout import fanout
    from django_push.hub.models import Delivery

    sent, delivered = fanout(content_id, token, lambda: spread_fanout(content_id))
    if sent > delivered:
        retry_at = Delivery.objects.next_retry()
        if retry_at is not None:
            enqueue(fanout_task, None, run_after=retry_at)
    return [sent, delivered]


def stale_deliveries() -> DeliveryQuerySet:
    """Due deliveries that no queued task is known to cover (see ``DeliveryQuerySet.stale``)."""
    from django_push.hub.models import Delivery

    return Delivery.objects.stale()


def sweep() -> tuple[int, int]:
    """Expire ended leases, then enqueue stale work: verifications of intent, publish
    requests, ranges and deliveries whose worker died or whose task was lost. Returns
    ``(expired subscriptions, enqueued tasks)``."""
    from django_push.hub import upkeep

    work = upkeep.sweep()
    enqueued = 0
    for _ in range(work.verifications):
        enqueued += enqueue(verify_intent_task)
    for ping_id, topic, hub_url in work.pings:
        enqueued += enqueue(publish_task, topic, hub_url, ping_id)
    for token in work.batches:
        enqueued += enqueue(fanout_task, None, token)
    for content_id in work.contents:
        enqueued += enqueue(fanout_task, content_id)
    return work.expired, enqueued


@task()
def sweep_task(reschedule: bool = True) -> list[int]:
    """Run :func:`sweep` and prune old records, then again after ``PUSH_HUB_CLAIM_SECONDS``
    (if the backend can defer)."""
    from django_push.hub.upkeep import prune

    expired, enqueued = sweep()
    prune()
    if reschedule:
        delay = datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS)
        enqueue(sweep_task, True, run_after=timezone.now() + delay)
    return [expired, enqueued]


def start_heartbeat() -> bool:
    """Begin a new chain of heartbeats on ``PUSH_TASK_BACKEND`` (ending any other); True if
    the first beat was enqueued."""
    return enqueue(heartbeat_task, "")


@task()
def heartbeat_task(chain: str = "") -> bool:
    """Record a beat (``hub.heartbeat``), then enqueue the next one
    ``PUSH_HEARTBEAT_INTERVAL`` seconds on, if this task's chain goes on. Returns whether
    it does."""
    from django_push.hub.heartbeat import beat

    token = beat(chain)
    if not token:
        return False
    interval = datetime.timedelta(seconds=float(conf.PUSH_HEARTBEAT_INTERVAL or 0))
    if not enqueue(heartbeat_task, token, run_after=timezone.now() + interval):
        logger.warning(
            "Task backend %r cannot defer tasks: the heartbeat is not rescheduled",
            conf.PUSH_TASK_BACKEND,
        )
        return False
    return True


def start_publish(pings: list[Ping]) -> None:
    """Enqueue the fetch of each of ``pings`` (the endpoint's publish requests)."""
    for ping in pings:
        enqueue(publish_task, ping.topic, ping.hub_url, ping.pk)
