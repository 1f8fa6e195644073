from __future__ import annotations

from django.dispatch import Signal

from django_push.dispatch import name_signals

#: Content arrived for a verified subscription. sender: the Subscription;
#: notification: the raw body (bytes); request: the HttpRequest;
#: links: the parsed Link header (list of dicts with "url" and "rel"), or None.
#: Sent at once, in the request (as in 1.1). Hubs deliver at least once: see the docs for
#: dropping repeats. Content found by reconciliation (PUSH_SUBSCRIBER_RECONCILE) comes with
#: polled=True, and a request whose headers and body are the topic's answer: take ``**kwargs``.
updated = Signal()

# The lifecycle of a subscription: what the background request to the hub led to. Each is
# sent once the change is committed (at once outside a transaction), with send_robust (see
# django_push.dispatch); sender is the Subscription class.

#: The hub verified our subscription (or its renewal). subscription: the Subscription;
#: lease_seconds: int, the lease granted, as clamped by PUSH_SUBSCRIBER_LEASE_RANGE.
subscription_verified = Signal()

#: The hub refused the subscription (hub.mode=denied). subscription: the Subscription;
#: reason: str, the hub's hub.reason ("" if none).
subscription_denied = Signal()

#: A request to the hub failed. subscription: the Subscription; mode: "subscribe" or
#: "unsubscribe"; status: int, the hub's HTTP status, or None when it could not be reached;
#: text: str, the hub's answer (or the network error).
subscription_failed = Signal()

#: The row was deleted because the hub verified our unsubscription. subscription: the
#: Subscription, already deleted (its pk is kept); reason: "unsubscribed".
subscription_removed = Signal()

name_signals(
    subscription_verified=subscription_verified,
    subscription_denied=subscription_denied,
    subscription_failed=subscription_failed,
    subscriber_subscription_removed=subscription_removed,
)
