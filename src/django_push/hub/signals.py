"""Signals of the hub, for metrics, audit logs or cache purges: never one per delivery."""

from __future__ import annotations

from django.dispatch import Signal

from django_push.dispatch import name_signals, send_on_commit

__all__ = [
    "content_published",
    "delivery_failed",
    "send_on_commit",
    "subscription_activated",
    "subscription_removed",
]

# Every signal is sent once the hub's own change is committed (at once outside a
# transaction), with send_robust (see django_push.dispatch). Receivers run in the worker
# that did the work: keep them quick, or enqueue a task.

# A verification of intent for subscribe succeeded. sender: the HubSubscription class;
# subscription: the HubSubscription, as saved; created: True for a new subscription,
# False for a renewal of an existing one (same topic and callback).
subscription_activated = Signal()

# A subscription was removed. sender: the HubSubscription class; subscription: the
# HubSubscription, already deleted (its pk is kept); reason: "unsubscribed" (a verified
# unsubscribe), "gone" (the callback answered 410 Gone) or "expired" (the lease ended and
# the sweeper removed it; one signal per row).
subscription_removed = Signal()

# A topic was fetched and stored. sender: the Content class; content: the Content;
# deliveries: the number of deliveries created (one per active subscription of the topic).
content_published = Signal()

# The hub gave up on a delivery: its next retry would fall past PUSH_HUB_RETRY_HORIZON.
# Not sent for a failure that will be retried. sender: the Delivery class;
# subscription_id, content_id: ints; attempts: int, the attempts made; reason: str, the
# last error ("HTTP 503", "timeout", ...).
delivery_failed = Signal()


name_signals(
    subscription_activated=subscription_activated,
    subscription_removed=subscription_removed,
    content_published=content_published,
    delivery_failed=delivery_failed,
)
