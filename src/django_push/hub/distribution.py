"""Publish: fetch a topic once, store it once, and deliver it to every active subscription."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from django_push import http, protocol, signatures
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.hub import retry
from django_push.hub.models import Content, Delivery, HubSubscription
from django_push.links import format_links

logger = logging.getLogger("django_push")


def fetch(topic: str, hub_url: str) -> Content | None:
    """Fetch ``topic`` and store it as one ``Content`` row; ``None`` when the fetch fails."""
    try:
        response = async_to_sync(http.get)(
            topic,
            follow_redirects=True,
            max_bytes=conf.PUSH_HUB_MAX_CONTENT_SIZE,
            guard=http.guard_enabled(),
        )
    except FetchError as exc:
        logger.error("Hub could not fetch %s: %s", topic, exc.reason)
        return None
    if not response.ok:
        logger.error("Hub could not fetch %s: HTTP %s", topic, response.status)
        return None
    return store(topic, response.body, response.content_type, hub_url)


def store(topic: str, body: bytes, content_type: str, hub_url: str) -> Content:
    """Store one version of ``topic`` and a pending delivery for each active subscription."""
    with transaction.atomic():
        content = Content.objects.create(
            topic=topic,
            body=body,
            content_type=content_type,
            sha256=hashlib.sha256(body).hexdigest(),
            hub_url=hub_url,
        )
        ids = HubSubscription.objects.active().filter(topic=topic).values_list("pk", flat=True)
        Delivery.objects.bulk_create(
            (Delivery(content=content, subscription_id=pk) for pk in ids.iterator()),
            batch_size=1000,
        )
    return content


def claim(limit: int, content_id: int | None = None) -> list[Delivery]:
    """Claim up to ``limit`` due deliveries for this worker until the claim expires."""
    until = timezone.now() + datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS)
    with transaction.atomic():
        due = Delivery.objects.due()
        if content_id is not None:
            due = due.filter(content_id=content_id)
        ids = list(
            due.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        Delivery.objects.filter(pk__in=ids).update(claimed_until=until)
    return list(Delivery.objects.filter(pk__in=ids).select_related("subscription", "content"))


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    status: int | None
    error: str = ""


def deliver(deliveries: list[Delivery]) -> list[Outcome]:
    """Send a batch concurrently over one session and record every outcome."""
    if not deliveries:
        return []
    outcomes = async_to_sync(_send_all)(deliveries)
    record(outcomes)
    return outcomes


async def _send_all(deliveries: list[Delivery]) -> list[Outcome]:
    guard = http.guard_enabled()
    limit = conf.PUSH_HUB_CONCURRENCY
    semaphore = asyncio.Semaphore(limit)
    contents: dict[int, tuple[bytes, dict[str, str]]] = {}
    for delivery in deliveries:
        content = delivery.content
        if content.pk not in contents:
            headers = {
                "Content-Type": content.content_type or "application/octet-stream",
                "Link": format_links([(content.hub_url, "hub"), (content.topic, "self")]),
            }
            contents[content.pk] = (bytes(content.body), headers)

    async with http.client_session(guard=guard, limit=limit) as session:

        async def send(delivery: Delivery) -> Outcome:
            body, headers = contents[delivery.content_id]
            secret = delivery.subscription.secret
            if secret:  # H-16: signed only when the subscriber gave a secret
                algorithm = conf.PUSH_HUB_SIGNATURE_ALGORITHM
                headers = {
                    **headers,
                    protocol.SIGNATURE_HEADER: signatures.sign(secret, body, algorithm),
                }
            async with semaphore:
                try:
                    status = await http.deliver(
                        session, delivery.subscription.callback, body, headers, guard=guard
                    )
                except FetchError as exc:
                    return Outcome(delivery, None, exc.reason)
            return Outcome(delivery, status)

        return await asyncio.gather(*(send(delivery) for delivery in deliveries))


def record(outcomes: list[Outcome]) -> None:
    """Write back what happened: delivered, retry later, give up, or subscription gone."""
    now = timezone.now()
    delivered = [o.delivery.pk for o in outcomes if o.status is not None and 200 <= o.status < 300]
    gone = [o.delivery.subscription_id for o in outcomes if o.status == 410]
    if delivered:
        Delivery.objects.filter(pk__in=delivered).update(
            status=Delivery.Status.DELIVERED,
            delivered_at=now,
            claimed_until=None,
            attempts=F("attempts") + 1,
            last_status=200,
        )
        subscriptions = [
            o.delivery.subscription_id for o in outcomes if o.delivery.pk in set(delivered)
        ]
        HubSubscription.objects.filter(pk__in=subscriptions).update(
            last_delivery_at=now, failures=0
        )
    if gone:
        # H-17: 410 Gone ends the subscription (its deliveries go with it).
        logger.info("Subscriptions %s answered 410 Gone and were removed", gone)
        HubSubscription.objects.filter(pk__in=gone).delete()
    for outcome in outcomes:
        if outcome.delivery.pk in delivered or outcome.status == 410:
            continue
        _schedule_retry(outcome, now)


def _schedule_retry(outcome: Outcome, now: datetime.datetime) -> None:
    delivery = outcome.delivery
    delivery.attempts += 1
    delivery.first_failure_at = delivery.first_failure_at or now
    delivery.last_status = outcome.status
    delivery.last_error = outcome.error or f"HTTP {outcome.status}"
    delivery.claimed_until = None
    retry_at = now + datetime.timedelta(
        seconds=retry.backoff(delivery.attempts, conf.PUSH_HUB_RETRY_BASE)
    )
    if retry.gives_up(delivery.first_failure_at, retry_at, conf.PUSH_HUB_RETRY_HORIZON):
        delivery.status = Delivery.Status.FAILED
        logger.error(
            "Gave up delivering %s to %s: %s",
            delivery.content.topic,
            delivery.subscription.callback,
            delivery.last_error,
        )
    else:
        delivery.next_attempt_at = retry_at
        logger.warning(
            "Delivery to %s failed (%s); retry %s at %s",
            delivery.subscription.callback,
            delivery.last_error,
            delivery.attempts,
            retry_at,
        )
    delivery.save(
        update_fields=[
            "attempts",
            "first_failure_at",
            "last_status",
            "last_error",
            "claimed_until",
            "status",
            "next_attempt_at",
        ]
    )
    HubSubscription.objects.filter(pk=delivery.subscription_id).update(failures=F("failures") + 1)


def expire_leases() -> int:
    """Delete subscriptions whose lease has ended (H-11); returns how many."""
    count, _ = HubSubscription.objects.expired().delete()
    return count
