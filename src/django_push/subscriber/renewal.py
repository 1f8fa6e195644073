"""The one loop that sends requests for many subscriptions: the renewal task, the
``renew_subscriptions`` command and the admin's actions all go through :func:`send_each`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from asgiref.sync import async_to_sync, sync_to_async

from django_push import http, protocol
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
    """Send a ``mode`` request for each subscription in turn, over one client session;
    returns ``(sent, failed)``.

    A failure is reported, counted and kept in ``last_error``, never raised, so one bad hub
    does not stop the others.
    """
    return async_to_sync(_asend_each)(list(subscriptions), mode, report)


async def _asend_each(
    subscriptions: list[Subscription], mode: protocol.Mode, report: Report | None
) -> tuple[int, int]:
    sent = failed = 0
    async with http.client_session() as session:
        for subscription in subscriptions:
            error: PushError | None = None
            try:
                if mode == protocol.SUBSCRIBE:
                    await subscription.asubscribe(session=session)
                else:
                    await subscription.aunsubscribe(session=session)
            except PushError as exc:
                error = exc
                failed += 1
            else:
                sent += 1
            if report is not None:
                await sync_to_async(report)(subscription, error)
    return sent, failed


def to_renew(within: float | None = None, *, legacy: bool = False) -> list[Subscription]:
    """Subscriptions whose lease must be renewed, soonest first; with ``legacy``, every
    row still on a 1.1 callback URL that is verified or awaits a subscribe verification
    too (the request moves it: its old URL no longer answers subscribe verifications)."""
    expiring = Subscription.objects.expiring(within)
    if legacy:
        old = Subscription.objects.legacy()
        expiring = expiring | old.verified() | old.filter(pending=Subscription.Pending.SUBSCRIBE)
    return list(expiring.order_by("lease_expiration", "pk"))


def renew_expiring(within: float | None = None, report: Report | None = None) -> tuple[int, int]:
    """Renew every verified subscription whose lease ends within ``within`` seconds."""
    return send_each(to_renew(within), protocol.SUBSCRIBE, report)


def give_tokens_to_unverified_legacy_rows() -> int:
    """Every unverified 1.1 row left receives nothing: it gets a token without asking any
    hub, so no URL of it is guessable. Not a row awaiting a subscribe whose move failed: it
    stays on its 1.1 URL (which answers no subscribe verification), listed for the next run."""

    pending = Subscription.Pending.SUBSCRIBE
    rows = list(Subscription.objects.legacy().filter(verified=False).exclude(pending=pending))
    for row in rows:
        row.callback_token = new_callback_token()
        row.save(update_fields=["callback_token"])
    return len(rows)
