"""Verification of intent (5.3) and denial (5.2): the hub's GETs to subscriber callbacks."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.utils import timezone

from django_push import http, protocol
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.hub import signals
from django_push.hub.distribution import remove
from django_push.hub.models import HubSubscription, Intent, lease_end
from django_push.hub.params import topic_allowed

if TYPE_CHECKING:
    import aiohttp

logger = logging.getLogger("django_push")


def grant_lease(asked: int | None) -> int:
    """The lease to grant: the default when none is asked, else clamped to [min, max] (H-11)."""
    low, default, high = conf.PUSH_HUB_LEASE_SECONDS
    return default if asked is None else max(low, min(asked, high))


def verify(intent: Intent) -> bool:
    """Verify ``intent`` with its callback and apply it on success. Returns the outcome."""
    return async_to_sync(averify)(intent)


async def averify(intent: Intent) -> bool:
    """:func:`verify`, async: the task's requests share one client session, and the
    database work runs through ``sync_to_async``."""
    if intent.status != Intent.Status.PENDING:
        return intent.status == Intent.Status.VERIFIED
    if not await sync_to_async(_claim)(intent.pk):
        return False  # another worker holds it, or it was decided meanwhile
    guard = http.guard_enabled()
    async with http.client_session(guard=guard) as session:
        if intent.mode == protocol.SUBSCRIBE and not await sync_to_async(topic_allowed)(
            intent.topic
        ):
            # Accepted before the policy changed: tell the callback (hub.mode=denied).
            await _deny(session, guard, intent, "This hub does not serve that topic.")
            return False
        challenge = secrets.token_urlsafe(32)  # H-9: fresh, random, single-use
        params = [
            (protocol.MODE, intent.mode),
            (protocol.TOPIC, intent.topic),
            (protocol.CHALLENGE, challenge),
        ]
        lease = grant_lease(intent.lease_seconds)
        if intent.mode == protocol.SUBSCRIBE:
            params.append((protocol.LEASE_SECONDS, str(lease)))
        try:
            response = await http.get(
                intent.callback, params=params, guard=guard, max_bytes=4096, session=session
            )
        except FetchError as exc:
            reason = f"callback unreachable: {exc.reason}"
            return await sync_to_async(_finish)(intent, Intent.Status.FAILED, reason)
    if not response.ok:
        reason = f"callback answered HTTP {response.status}"
    elif response.body != challenge.encode():  # H-10: exactly the challenge
        reason = "callback did not echo the challenge"
    else:
        return await sync_to_async(_apply)(intent, lease)
    return await sync_to_async(_finish)(intent, Intent.Status.FAILED, reason)


def _claim(pk: int) -> bool:
    return Intent.objects.claimable().claim_one(pk)


def _apply(intent: Intent, lease: int) -> bool:
    """The callback confirmed: activate or remove the subscription."""
    with transaction.atomic():
        if intent.mode == protocol.SUBSCRIBE:
            # H-6: a verified re-subscription replaces the secret and lease of the old one.
            subscription, created = HubSubscription.objects.update_or_create(
                topic=intent.topic,
                callback=intent.callback,
                defaults={
                    "secret": intent.secret,
                    "lease_seconds": lease,
                    "expires_at": lease_end(lease),
                    "verified_at": timezone.now(),
                    "failures": 0,
                },
            )
            activated = {"subscription": subscription, "created": created}
            signals.send_on_commit(signals.subscription_activated, HubSubscription, activated)
        else:
            remove(
                HubSubscription.objects.filter(topic=intent.topic, callback=intent.callback),
                "unsubscribed",
            )
        return _finish(intent, Intent.Status.VERIFIED, f"{intent.mode} verified")


async def _deny(session: aiohttp.ClientSession, guard: bool, intent: Intent, reason: str) -> None:
    """Tell the callback its subscription is refused (hub.mode=denied)."""
    params = [
        (protocol.MODE, protocol.DENIED),
        (protocol.TOPIC, intent.topic),
        (protocol.REASON, reason),
    ]
    try:
        await http.get(intent.callback, params=params, guard=guard, session=session)
    except FetchError as exc:
        logger.warning("Could not send the denial to %s: %s", intent.callback, exc.reason)
    await sync_to_async(_finish)(intent, Intent.Status.DENIED, reason)


def _finish(intent: Intent, status: str, reason: str) -> bool:
    intent.finish(status, reason)
    log = logger.info if status == Intent.Status.VERIFIED else logger.warning
    log("Hub %s of %s for %s: %s", intent.mode, intent.callback, intent.topic, reason)
    return status == Intent.Status.VERIFIED
