"""Send stored content again: to chosen subscriptions, or where the hub gave up.

Nothing here fetches a topic. Sent again to every active subscription, a content gets a new
fan-out plan (its ranges and delivery rows start over, its ``Push-Delivery-Id`` stays). Sent to
chosen subscriptions, one delivery row per (content, subscription) is kept: sending again
makes that row pending once more, or creates it. Either way a content's counts say how many
subscribers got it, never how many times.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models, transaction
from django.utils import timezone

from django_push.hub.models import (
    Content,
    Delivery,
    HubSubscription,
    Span,
    SubscriptionQuerySet,
    host_of,
)
from django_push.hub.tasks import start_fanout
from django_push.urlnorm import decode_unreserved


class ReplayError(ValueError):
    """What was asked cannot be sent again; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What sending ``content`` again to some subscriptions does, by subscription pk."""

    content: Content
    create: list[int] = field(default_factory=list)  # no delivery row of it yet
    reset: list[int] = field(default_factory=list)  # delivered or given up: pending again
    pending: list[int] = field(default_factory=list)  # owed already: left alone
    everyone: int = 0  # a new plan: the active subscriptions of the topic, by count

    @property
    def count(self) -> int:
        """How many deliveries this sends."""
        return self.everyone or len(self.create) + len(self.reset)

    def __str__(self) -> str:
        content = (
            f"content #{self.content.pk} of {self.content.topic} ({len(self.content.body)} "
            f"bytes, stored {self.content.fetched_at:%Y-%m-%d %H:%M:%S})"
        )
        if self.everyone:
            return f"{content} to every active subscription: {self.everyone}"
        return (
            f"{content} to {self.count} subscription(s): {len(self.create)} new, "
            f"{len(self.reset)} again, {len(self.pending)} already pending (left alone)"
        )


def content_to_send(topic: str | None = None, content_id: int | None = None) -> Content:
    """The content ``content_id``, checked to be of ``topic`` when both are given, else the
    latest content of ``topic``."""
    if content_id is not None:
        content = Content.objects.filter(pk=content_id).first()
        if content is None:
            raise ReplayError(f"No content #{content_id}: see the admin's published contents.")
        if topic and content.topic != decode_unreserved(topic):
            raise ReplayError(
                f"Content #{content_id} is of topic {content.topic}, not {topic}: "
                "drop one of them, or pick a content of that topic."
            )
        return content
    if not topic:
        raise ReplayError("Name a topic, or a content by its id.")
    topic = decode_unreserved(topic)  # as subscriptions store it (H-4)
    latest = Content.objects.latest_of(topic)
    if latest is None:
        raise ReplayError(
            f"Nothing stored for topic {topic}: check the URL (as subscribed), or publish it first."
        )
    return latest


def plan(
    content: Content,
    subscription_ids: Iterable[int] = (),
    callbacks: Iterable[str] = (),
) -> Plan:
    """Which subscriptions of the content's topic get it again: those named by id or callback,
    else every active one. A named subscription that is unknown, of another topic or no
    longer active raises ``ReplayError``."""
    ids, urls = list(subscription_ids), [decode_unreserved(url) for url in callbacks]
    chosen: SubscriptionQuerySet = HubSubscription.objects.filter(topic=content.topic)
    if not (ids or urls):
        everyone = chosen.active().count()
        if not everyone:
            raise ReplayError(f"Topic {content.topic} has no active subscription.")
        return Plan(content, everyone=everyone)
    chosen = chosen.filter(models.Q(pk__in=ids) | models.Q(callback__in=urls))
    _check_named(content, chosen, ids, urls)
    wanted = set(chosen.values_list("pk", flat=True))
    existing = dict(
        content.deliveries.filter(subscription_id__in=wanted).values_list(
            "subscription_id", "status"
        )
    )
    result = Plan(content)
    for pk in sorted(wanted):
        status = existing.get(pk)
        if status is None:
            result.create.append(pk)
        elif status == Delivery.Status.PENDING:
            result.pending.append(pk)
        else:
            result.reset.append(pk)
    return result


def _check_named(
    content: Content, chosen: SubscriptionQuerySet, ids: list[int], urls: list[str]
) -> None:
    found = {
        pk: (callback, expires)
        for pk, callback, expires in chosen.values_list("pk", "callback", "expires_at")
    }
    callbacks = {callback for callback, _ in found.values()}
    missing = [f"#{pk}" for pk in ids if pk not in found] + [u for u in urls if u not in callbacks]
    if missing:
        raise ReplayError(
            f"Not subscribed to {content.topic}: {', '.join(missing)} "
            "(unknown, or subscribed to another topic)."
        )
    now = timezone.now()
    ended = sorted(callback for callback, expires in found.values() if expires <= now)
    if ended:
        raise ReplayError(
            f"Subscription not active (lease ended): {', '.join(ended)}; it must subscribe again."
        )


def execute(plan: Plan) -> int:
    """Carry out ``plan`` and enqueue a fan-out task once committed; returns how many
    deliveries will be sent."""
    content = plan.content
    with transaction.atomic():
        # Two senders of one content at once would both create the missing rows: the
        # content's row lock makes the second see the first's.
        locked = Content.objects.select_for_update().get(pk=content.pk)
        count = _plan_again(locked) if plan.everyone else _send_to(content, plan)
        transaction.on_commit(lambda: start_fanout(content.pk))
    return count


def _plan_again(content: Content) -> int:
    """A new fan-out plan for ``content``: to its topic's active subscriptions as of now.
    Its ranges and delivery rows go (a pending retry is owed by the new plan)."""
    content.spans.all().delete()
    content.deliveries.all().delete()
    count = content.plan()
    content.save(update_fields=["owed", "upto", "cursor", "claimed_at", "finished_at"])
    return count


def _send_to(content: Content, plan: Plan) -> int:
    """Delivery rows for the chosen subscriptions: created, or made pending again. One that
    a decided range delivered to is counted once: its range counts one delivery less."""
    made = set(
        content.deliveries.filter(subscription_id__in=plan.create).values_list(
            "subscription_id", flat=True
        )
    )
    create = [pk for pk in plan.create if pk not in made]
    Delivery.objects.bulk_create(Delivery(content=content, subscription_id=pk) for pk in create)
    for pk in create:
        Span.objects.filter(
            content=content, status=Span.Status.DONE, first__lte=pk, last__gte=pk, delivered__gt=0
        ).update(delivered=models.F("delivered") - 1)
    reset = Delivery.objects.filter(content=content, subscription_id__in=plan.reset)
    return len(create) + reset.send_again()


def send_again(
    topic: str | None = None,
    content_id: int | None = None,
    subscription_ids: Iterable[int] = (),
    callbacks: Iterable[str] = (),
) -> Plan:
    """Send a topic's latest content (or the content ``content_id``) again to its active
    subscriptions, or to those named; returns the plan carried out. No fetch."""
    chosen = plan(content_to_send(topic, content_id), subscription_ids, callbacks)
    execute(chosen)
    return chosen


# Deliveries the hub gave up on ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFailures:
    """The given-up deliveries to one callback host."""

    host: str
    count: int
    last_error: str
    oldest: datetime.datetime  # first failure of the oldest
    newest: datetime.datetime  # last attempt of the newest
    callbacks: frozenset[str]


def gave_up_by_host() -> list[HostFailures]:
    """Given-up deliveries to active subscriptions, grouped by callback host, most first.

    One aggregate per callback in SQL, folded into hosts here: the work grows with the number
    of failing callbacks, not of failed deliveries.
    """
    rows = list(
        _retryable()
        .values_list("subscription__callback")
        .annotate(
            n=models.Count("pk"),
            oldest=models.Min("first_failure_at"),
            newest=models.Max("next_attempt_at"),
            last=models.Max("pk"),
        )
        .values_list("subscription__callback", "n", "oldest", "newest", "last")
    )
    errors = dict(
        Delivery.objects.filter(pk__in=[row[4] for row in rows]).values_list("pk", "last_error")
    )
    groups: dict[str, list[tuple[str, int, datetime.datetime, datetime.datetime, int]]] = {}
    for row in rows:
        groups.setdefault(host_of(row[0]), []).append(row)
    result = []
    for host, members in groups.items():
        latest = max(members, key=lambda row: row[3])
        result.append(
            HostFailures(
                host=host,
                count=sum(row[1] for row in members),
                last_error=errors.get(latest[4], ""),
                # A given-up delivery always has its first failure.
                oldest=min(row[2] for row in members),
                newest=latest[3],
                callbacks=frozenset(row[0] for row in members),
            )
        )
    return sorted(result, key=lambda group: (-group.count, group.host))


def retry_gave_up(host: str | None = None) -> int:
    """Make the given-up deliveries to active subscriptions (to ``host`` only, if given)
    pending with a fresh retry schedule, and enqueue fan-out tasks; returns how many."""
    rows = _retryable()
    if host is not None:
        groups = [group for group in gave_up_by_host() if group.host == host]
        callbacks = [callback for group in groups for callback in group.callbacks]
        rows = rows.filter(subscription__callback__in=callbacks)
    with transaction.atomic():
        count = Delivery.objects.filter(pk__in=list(rows.values_list("pk", flat=True))).send_again()
        if count:
            transaction.on_commit(start_fanout)
    return count


def _retryable() -> models.QuerySet[Delivery]:
    # A lease that ended gets nothing more (H-11): its deliveries stay given up until the
    # sweeper removes the subscription.
    return Delivery.objects.gave_up().filter(subscription__expires_at__gt=timezone.now())
