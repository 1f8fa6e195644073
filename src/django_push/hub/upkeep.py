"""The hub's upkeep: expire ended leases, find work no live worker covers, prune old records.

Nothing here enqueues: :func:`sweep` returns the work to hand to workers (``hub.tasks``
enqueues it).
"""

from __future__ import annotations

import datetime
import math
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from django_push.conf import conf
from django_push.hub import signals
from django_push.hub.breakers import HostBreaker
from django_push.hub.models import (
    Content,
    Delivery,
    HubSubscription,
    Intent,
    Ping,
    Span,
    SubscriptionQuerySet,
    UsedPublishSignature,
    claim_until,
)


@dataclass
class Work:
    """What the sweep found for workers."""

    expired: int = 0  # subscriptions removed
    verifications: int = 0  # verification tasks to enqueue (one per batch of intents)
    pings: list[tuple[int, str, str]] = field(default_factory=list)  # (pk, topic, hub URL)
    batches: list[str] = field(default_factory=list)  # claim tokens of ranges and retries
    contents: list[int] = field(default_factory=list)  # open fan-outs no worker moves


def sweep() -> Work:
    """Expire ended leases, then collect stale work: verifications, publish requests, ranges
    and deliveries whose worker died, open fan-outs whose task was lost. What is handed out
    is claimed (or marked) first, so the next sweep does not hand it out again while its
    task waits in a long queue."""
    work = Work(expired=expire_leases())
    stale_intents = Intent.objects.stale().count()
    work.verifications = math.ceil(stale_intents / conf.PUSH_HUB_BATCH_SIZE)
    work.pings = list(Ping.objects.stale().values_list("pk", "topic", "hub_url"))
    work.batches = hand_out_stale_ranges() + hand_out_stale_deliveries()
    # A fan-out handed out and decided whose end was not recorded (its last worker died
    # between the two) is finished here.
    handed_out = Content.objects.filter(finished_at__isnull=True, cursor__gte=F("upto"))
    for pk in handed_out.values_list("pk", flat=True):
        Content(pk=pk).finish_if_done()
    stale = list(Content.objects.stale().values_list("pk", flat=True))
    Content.objects.filter(pk__in=stale).update(claimed_at=timezone.now())
    work.contents = stale
    return work


def hand_out_stale_ranges() -> list[str]:
    """Claim again, under a new token each, the ranges whose claim expired (their worker
    died mid-range); returns the tokens. The whole range is sent again: at-least-once."""
    tokens = []
    for pk, old in Span.objects.stale().values_list("pk", "claim"):
        token = uuid.uuid4().hex
        taken = Span.objects.filter(pk=pk, claim=old, status=Span.Status.PENDING).update(
            claim=token, claimed_until=claim_until()
        )
        if taken:
            tokens.append(token)
    return tokens


def hand_out_stale_deliveries() -> list[str]:
    """Claim stale deliveries a batch at a time; returns the claim tokens. Should the task
    of one be lost too, its claim expires and a later sweep hands it out again."""
    tokens: list[str] = []
    while True:
        token = uuid.uuid4().hex
        with transaction.atomic():
            claimed = Delivery.objects.stale().claim(conf.PUSH_HUB_BATCH_SIZE, token)
        if not claimed:
            return tokens
        tokens.append(token)


def prune() -> tuple[int, int, int]:
    """Delete what is older than ``PUSH_HUB_RETENTION`` and finished: contents whose fan-out
    is over with no pending delivery (their ranges and deliveries go with them), then decided
    verifications, publish requests and spent signatures of direct publishes, then closed
    circuit breakers that counted nothing since: ``(contents, requests, breakers)``."""
    cutoff = timezone.now() - datetime.timedelta(seconds=conf.PUSH_HUB_RETENTION)
    old = (
        Content.objects.filter(fetched_at__lt=cutoff, finished_at__isnull=False)
        .exclude(deliveries__status=Delivery.Status.PENDING)
        .exclude(spans__status=Span.Status.PENDING)
    )
    contents = old.count()
    old.delete()
    intents, _ = Intent.objects.finished_before(cutoff).delete()
    pings, _ = Ping.objects.finished_before(cutoff).delete()
    signatures = UsedPublishSignature.objects.prune(cutoff)
    breakers, _ = HostBreaker.objects.idle_since(cutoff).delete()
    return contents, intents + pings + signatures, breakers


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
