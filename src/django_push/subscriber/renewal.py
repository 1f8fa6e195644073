"""The one loop that sends requests for many subscriptions: the renewal task, the
``renew_subscriptions`` command and the admin's actions all go through :func:`send_each`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django_push import protocol
from django_push.exceptions import PushError
from django_push.subscriber.capability import new_callback_token
from django_push.subscriber.models import Subscription

# Called after each request: the subscription, and the error if the request failed.
Report = Callable[[Subscription, PushError | None], None]


def send_each(
    subscriptions: Iterable[Subscription],
    mode: protocol.Mode = protocol.SUBSCRIBE,
    report: Report | None = None,
) -> tuple[int, int]:
    """Send a ``mode`` request for each subscription in turn; returns ``(sent, failed)``.

    A failure is reported, counted and kept in ``last_error``, never raised, so one bad hub
    does not stop the others.
    """
    sent = failed = 0
    for subscription in subscriptions:
        error: PushError | None = None
        try:
            if mode == protocol.SUBSCRIBE:
                subscription.subscribe()
            else:
                subscription.unsubscribe()
        except PushError as exc:
            error = exc
            failed += 1
        else:
            sent += 1
        if report is not None:
            report(subscription, error)
    return sent, failed


def to_renew(within: float | None = None, *, legacy: bool = False) -> list[Subscription]:
    """Subscriptions whose lease must be renewed, soonest first; with ``legacy``, every
    verified row still on a 1.1 callback URL too (its renewal moves it)."""
    expiring = Subscription.objects.expiring(within)
    if legacy:
        expiring = expiring | Subscription.objects.legacy().verified()
    return list(expiring.order_by("lease_expiration", "pk"))


def renew_expiring(within: float | None = None, report: Report | None = None) -> tuple[int, int]:
    """Renew every verified subscription whose lease ends within ``within`` seconds."""
    return send_each(to_renew(within), protocol.SUBSCRIBE, report)


def give_tokens_to_unverified_legacy_rows() -> int:
    """Unverified 1.1 rows receive nothing: they get a token without asking any hub."""
    rows = list(Subscription.objects.legacy().filter(verified=False, pending=""))
    for row in rows:
        row.callback_token = new_callback_token()
        row.save(update_fields=["callback_token"])
    return len(rows)
