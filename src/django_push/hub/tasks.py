"""Task definitions of the hub; the work itself is in verification and distribution."""

from __future__ import annotations

import datetime
import logging
import math
import uuid
from typing import TYPE_CHECKING

from django.utils import timezone

from django_push.conf import conf
from django_push.tasks import enqueue, task

if TYPE_CHECKING:
    from django_push.hub.models import DeliveryQuerySet

logger = logging.getLogger("django_push.hub")


# Seconds a verification task on a worker waits after a batch that was not full, to let
# a trickle of subscribe requests gather into the next batch.
GATHER_SECONDS = 0.2


@task()
def verify_intent_task(intent_id: int | None = None, gather: float = 0.0) -> int:
    """Verify pending intents a batch at a time until none is claimable, waiting ``gather``
    seconds after a batch that was not full; returns how many were decided. (``intent_id``
    is not needed: tasks enqueued by 2.0 still carry it.)"""
    from django_push.hub.models import Intent
    from django_push.hub.verification import verify_pending

    Intent.objects.task_started()  # first: requests from now on enqueue another task
    return verify_pending(gather=gather)


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
    """Fetch ``topic`` once, then deliver it from here; a second batch of subscribers makes
    the fan-out enqueue a task for another worker.

    With ``ping_id`` (the endpoint's publish requests), the ``Ping`` is claimed first: a ping
    already fetched, or held by a live worker, is left alone.
    """
    from django_push.hub.distribution import fetch
    from django_push.hub.models import HubSubscription, Ping

    if ping_id is not None and not Ping.objects.due().claim_one(ping_id):
        return None
    if not HubSubscription.objects.active().filter(topic=topic).exists():
        # Nobody would receive it (the last lease ended since the ping): fetch nothing.
        logger.info("Not fetching %s: no active subscriber", topic)
        if ping_id is not None:
            Ping.objects.get(pk=ping_id).skip()
        return None
    content = fetch(topic, hub_url, ping_id)
    if content is None:
        return None
    pending = content.deliveries.count()
    logger.info("Publishing %s to %s subscriber(s)", topic, pending)
    # This worker starts delivering at once, without a round trip through the queue (its
    # claim, its result) before the first POST; a second batch makes the fan-out enqueue a
    # task for another worker (spread_fanout).
    if pending:
        fanout_task.call(content.pk)
    return content.pk


def start_fanout(count: int, content_id: int | None = None) -> int:
    """Enqueue a fan-out task for ``count`` deliveries (none for none); returns how many.

    One is enough: a fan-out task that finds a second batch waiting enqueues one more
    (:func:`spread_fanout`), so a large publish spreads over as many workers as are free
    (with one task to spare), without first enqueuing a task per batch, each costing the
    queue's work and most finding nothing left.
    """
    if count <= 0:
        return 0
    enqueue(fanout_task, content_id)
    return 1


def spread_fanout(content_id: int | None) -> bool:
    """Enqueue one more fan-out task, for another worker, if the backend runs tasks on
    workers (an immediate backend would run it here, inside the caller's). True if enqueued."""
    configured = fanout_task.using(backend=conf.PUSH_TASK_BACKEND)
    return configured.get_backend().supports_defer and enqueue(fanout_task, content_id)


@task()
def fanout_task(content_id: int | None = None, token: str = "") -> list[int]:
    """Deliver the batch claimed under ``token`` (the sweeper's), then due deliveries until
    none is left; returns ``[sent, delivered]``."""
    from django_push.hub.distribution import fanout
    from django_push.hub.models import Delivery

    sent, delivered = fanout(content_id, token)
    if sent > delivered:
        retry_at = (
            Delivery.objects.filter(status=Delivery.Status.PENDING, attempts__gt=0)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if retry_at is not None:
            enqueue(fanout_task, None, run_after=retry_at)
    return [sent, delivered]


def stale_deliveries() -> DeliveryQuerySet:
    """Due deliveries that no queued task is known to cover (see ``DeliveryQuerySet.stale``)."""
    from django_push.hub.models import Delivery

    return Delivery.objects.stale()


def sweep() -> tuple[int, int]:
    """Expire ended leases, then re-enqueue stale work: deliveries, verifications of intent
    and publish requests whose worker died or whose task was lost. Returns
    ``(expired subscriptions, enqueued tasks)``."""
    from django_push.hub.distribution import expire_leases
    from django_push.hub.models import Intent, Ping

    expired = expire_leases()
    enqueued = 0
    stale_intents = Intent.objects.stale().count()
    for _ in range(math.ceil(stale_intents / conf.PUSH_HUB_BATCH_SIZE)):
        enqueued += enqueue(verify_intent_task)
    for ping_id, topic, hub_url in Ping.objects.stale().values_list("pk", "topic", "hub_url"):
        enqueued += enqueue(publish_task, topic, hub_url, ping_id)
    return expired, enqueued + hand_out_stale_deliveries()


def hand_out_stale_deliveries() -> int:
    """Claim stale deliveries a batch at a time and enqueue one fan-out task for each batch,
    which sends that batch first; returns how many tasks.

    Claimed, the rows are no longer stale: the next sweep does not enqueue them again while
    their task waits in a long queue, and running fan-outs leave them to it. Should that task
    be lost too, the claim expires and a later sweep hands them out again.
    """
    from django.db import transaction

    from django_push.hub.models import Delivery

    tasks = 0
    while True:
        token = uuid.uuid4().hex
        with transaction.atomic():
            claimed = Delivery.objects.stale().claim(conf.PUSH_HUB_BATCH_SIZE, token)
        if not claimed:
            return tasks
        tasks += enqueue(fanout_task, None, token)


@task()
def sweep_task(reschedule: bool = True) -> list[int]:
    """Run :func:`sweep` and prune old records, then again after ``PUSH_HUB_CLAIM_SECONDS``
    (if the backend can defer)."""
    from django_push.hub.distribution import prune

    expired, enqueued = sweep()
    prune()
    if reschedule:
        delay = datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS)
        enqueue(sweep_task, True, run_after=timezone.now() + delay)
    return [expired, enqueued]
