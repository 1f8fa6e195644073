"""Task definitions of the hub; the work itself is in verification and distribution."""

from __future__ import annotations

import datetime
import logging
import math
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from django_push.conf import conf
from django_push.tasks import enqueue, task

if TYPE_CHECKING:
    from django_push.hub.models import DeliveryQuerySet

logger = logging.getLogger("django_push")


@task()
def verify_intent_task(intent_id: int) -> bool:
    from django_push.hub.models import Intent
    from django_push.hub.verification import verify

    intent = Intent.objects.filter(pk=intent_id).first()
    return False if intent is None else verify(intent)


@task()
def publish_task(topic: str, hub_url: str, ping_id: int | None = None) -> int | None:
    """Fetch ``topic`` once, then start enough fan-out tasks to cover its subscribers.

    With ``ping_id`` (the endpoint's publish requests), the ``Ping`` is claimed first: a ping
    already fetched, or held by a live worker, is left alone.
    """
    from django_push.hub.distribution import fetch
    from django_push.hub.models import HubSubscription, Ping, claim_row

    if ping_id is not None and not claim_row(Ping.objects.due(), ping_id):
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
    start_fanout(pending, content.pk)
    logger.info("Published %s to %s subscriber(s)", topic, pending)
    return content.pk


def start_fanout(count: int, content_id: int | None = None) -> int:
    """Enqueue one fan-out task per batch of ``count`` deliveries; returns how many."""
    tasks = math.ceil(count / conf.PUSH_HUB_BATCH_SIZE)
    for _ in range(tasks):
        enqueue(fanout_task, content_id)
    return tasks


@task()
def fanout_task(content_id: int | None = None) -> list[int]:
    """Deliver due deliveries until none is left; returns ``[sent, delivered]``."""
    from django_push.hub.distribution import fanout
    from django_push.hub.models import Delivery

    sent, delivered = fanout(content_id)
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
    """Due deliveries that no queued task is known to cover: expired claims (a worker died),
    retries, and work left unclaimed for longer than a claim lasts (a lost task)."""
    from django_push.hub.models import Delivery, forgotten_before

    return Delivery.objects.due().filter(
        Q(claimed_until__isnull=False)
        | Q(attempts__gt=0)
        | Q(next_attempt_at__lt=forgotten_before())
    )


def sweep() -> tuple[int, int]:
    """Expire ended leases, then re-enqueue stale work: deliveries, verifications of intent
    and publish requests whose worker died or whose task was lost. Returns
    ``(expired subscriptions, enqueued tasks)``."""
    from django_push.hub.distribution import expire_leases
    from django_push.hub.models import Intent, Ping

    expired = expire_leases()
    enqueued = 0
    for intent_id in Intent.objects.stale().values_list("pk", flat=True):
        enqueued += enqueue(verify_intent_task, intent_id)
    for ping_id, topic, hub_url in Ping.objects.stale().values_list("pk", "topic", "hub_url"):
        enqueued += enqueue(publish_task, topic, hub_url, ping_id)
    return expired, enqueued + start_fanout(stale_deliveries().count())


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
