"""Verification of intent (5.3) and denial (5.2): the hub's GETs to subscriber callbacks.

Like the fan-out, verification works a batch at a time: claim up to
``PUSH_HUB_BATCH_SIZE`` pending intents, send their GETs concurrently over one client
session (at most ``PUSH_HUB_CONCURRENCY`` at once), and write the outcomes back in a
handful of statements whatever the batch size; then the next batch, until none is left.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from dataclasses import dataclass
from itertools import groupby

import aiohttp
from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction

from django_push import http, metrics, protocol
from django_push.conf import conf
from django_push.exceptions import FetchError
from django_push.hub import signals
from django_push.hub.models import Delivery, Grant, HubSubscription, Intent
from django_push.hub.params import topic_allowed
from django_push.hub.upkeep import remove

logger = logging.getLogger("django_push.hub")

DENIED_TOPIC = "This hub does not serve that topic."


def grant_lease(asked: int | None) -> int:
    """The lease to grant: the default when none is asked, else clamped to [min, max] (H-11)."""
    low, default, high = conf.PUSH_HUB_LEASE_SECONDS
    return default if asked is None else max(low, min(asked, high))


def verify_timeout() -> float:
    """Seconds a verification or denial GET may take: an echo needs a few, and a callback
    that holds the connection holds a place under the caps on pending verifications."""
    return min(float(conf.PUSH_HUB_VERIFY_TIMEOUT), conf.timeout)


@dataclass(frozen=True, slots=True)
class Check:
    """One claimed verification, as plain values: no model instances on the hot path."""

    pk: int
    mode: str
    topic: str
    callback: str
    secret: str
    lease: int  # granted, not asked
    allowed: bool  # False: a subscribe to a topic this hub no longer serves


@dataclass(frozen=True, slots=True)
class Verdict:
    check: Check
    status: str
    reason: str


def verify(intent: Intent) -> bool:
    """Verify ``intent`` alone and apply it on success. Returns the outcome."""
    if intent.status != Intent.Status.PENDING:
        return intent.status == Intent.Status.VERIFIED
    verify_pending(intent.pk)
    intent.refresh_from_db(fields=["status", "reason", "finished_at", "claimed_until", "claim"])
    return intent.status == Intent.Status.VERIFIED


async def averify_pending(pk: int | None = None, gather: float = 0.0) -> int:
    """Verify claimable intents batch after batch until none is left (only ``pk``, if
    given); returns how many were decided. One client session serves every batch; the
    database work goes through ``sync_to_async``.

    With ``gather``, wait that many seconds after a batch that was not full before claiming
    the next: requests that trickle in are then verified a batch at a time, not each in a
    round of its own (a round costs the same few queries whatever its size).
    """
    db_claim, db_record = sync_to_async(claim), sync_to_async(record)
    size, limit = conf.PUSH_HUB_BATCH_SIZE, conf.PUSH_HUB_CONCURRENCY
    guard = http.guard_enabled()
    semaphore = asyncio.Semaphore(limit)
    decided = 0
    async with http.client_session(guard=guard, limit=limit) as session:
        while True:
            token, checks = await db_claim(size, pk)
            if not checks:
                return decided
            verdicts = await asyncio.gather(
                *(_verify_one(session, semaphore, guard, check) for check in checks)
            )
            decided += await db_record(token, verdicts)
            if pk is not None:
                return decided
            if gather and len(checks) < size:
                await asyncio.sleep(gather)


def verify_pending(pk: int | None = None, gather: float = 0.0) -> int:
    """:func:`averify_pending` for sync callers (the verification task)."""
    return async_to_sync(averify_pending)(pk, gather)


def claim(limit: int, pk: int | None = None) -> tuple[str, list[Check]]:
    """Claim up to ``limit`` claimable intents (or only ``pk``) for this worker until the
    claim expires; returns the claim's token and the claimed intents."""
    token = uuid.uuid4().hex
    claimable = Intent.objects.all() if pk is None else Intent.objects.filter(pk=pk)
    with transaction.atomic():
        claimable.claim(limit, token)
    rows = (
        Intent.objects.claimed(token)
        .order_by("pk")
        .values_list("pk", "mode", "topic", "callback", "secret", "lease_seconds")
    )
    return token, [
        Check(
            pk,
            mode,
            topic,
            callback,
            secret,
            grant_lease(asked),
            # Accepted before the policy changed? Then the callback is told (hub.mode=denied).
            mode != protocol.SUBSCRIBE or topic_allowed(topic),
        )
        for pk, mode, topic, callback, secret, asked in rows
    ]


async def _verify_one(
    session: aiohttp.ClientSession, semaphore: asyncio.Semaphore, guard: bool, check: Check
) -> Verdict:
    async with semaphore:
        if not check.allowed:
            await _deny(session, guard, check, DENIED_TOPIC)
            return Verdict(check, Intent.Status.DENIED, DENIED_TOPIC)
        challenge = secrets.token_urlsafe(32)  # H-9: fresh, random, single-use
        params = [
            (protocol.MODE, check.mode),
            (protocol.TOPIC, check.topic),
            (protocol.CHALLENGE, challenge),
        ]
        if check.mode == protocol.SUBSCRIBE:
            params.append((protocol.LEASE_SECONDS, str(check.lease)))
        try:
            response = await http.get(
                check.callback,
                params=params,
                guard=guard,
                max_bytes=4096,
                session=session,
                timeout=verify_timeout(),
            )
        except FetchError as exc:
            return Verdict(check, Intent.Status.FAILED, f"callback unreachable: {exc.reason}")
    if not response.ok:
        reason = f"callback answered HTTP {response.status}"
    elif response.body != challenge.encode():  # H-10: exactly the challenge
        reason = "callback did not echo the challenge"
    else:
        return Verdict(check, Intent.Status.VERIFIED, f"{check.mode} verified")
    return Verdict(check, Intent.Status.FAILED, reason)


async def _deny(session: aiohttp.ClientSession, guard: bool, check: Check, reason: str) -> None:
    """Tell the callback its subscription is refused (hub.mode=denied)."""
    params = [
        (protocol.MODE, protocol.DENIED),
        (protocol.TOPIC, check.topic),
        (protocol.REASON, reason),
    ]
    try:
        await http.get(
            check.callback, params=params, guard=guard, session=session, timeout=verify_timeout()
        )
    except FetchError as exc:
        logger.warning("Could not send the denial to %s: %s", check.callback, exc.reason)


def record(token: str, verdicts: list[Verdict]) -> int:
    """Write back the verdicts of the batch claimed under ``token``: apply the verified ones
    and decide every intent, in one transaction; returns how many were decided.

    An intent whose claim expired and was taken over by another worker is left to it: that
    worker sends its own challenge and records its own outcome. A failed verification
    changes nothing but its intent (H-10).
    """
    with transaction.atomic():
        ours = set(Intent.objects.claimed(token).select_for_update().values_list("pk", flat=True))
        verdicts = [verdict for verdict in verdicts if verdict.check.pk in ours]
        _apply([v.check for v in verdicts if v.status == Intent.Status.VERIFIED])
        by_status = sorted(verdicts, key=lambda verdict: verdict.status)
        for status, decided in groupby(by_status, key=lambda verdict: verdict.status):
            reasons = {verdict.check.pk: verdict.reason for verdict in decided}
            Intent.objects.decide(status, reasons)
    metrics.count_verifications(verdict.status for verdict in verdicts)
    for verdict in verdicts:
        check = verdict.check
        log = logger.info if verdict.status == Intent.Status.VERIFIED else logger.warning
        log("Hub %s of %s for %s: %s", check.mode, check.callback, check.topic, verdict.reason)
    return len(verdicts)


def _apply(verified: list[Check]) -> None:
    """The callbacks confirmed: activate or remove their subscriptions.

    State is keyed by (topic, callback), and of two verified intents for one pair the later
    one decides, as if they had been verified one after the other (H-6).
    """
    last = {(check.topic, check.callback): check for check in sorted(verified, key=_pk)}
    subscribes = [check for check in last.values() if check.mode == protocol.SUBSCRIBE]
    leaving = [pair for pair, check in last.items() if check.mode == protocol.UNSUBSCRIBE]
    if subscribes:
        grants = [Grant(c.topic, c.callback, c.secret, c.lease) for c in subscribes]
        latest = conf.PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE
        listened = signals.subscription_activated.has_listeners(HubSubscription)
        activated = HubSubscription.objects.activate(grants, with_rows=listened or latest)
        if latest:  # a renewal has had it already
            Delivery.objects.owe_latest(row for row, created in activated if created)
        each = [{"subscription": row, "created": created} for row, created in activated]
        if listened:
            signals.send_on_commit(signals.subscription_activated, HubSubscription, *each)
    if leaving:
        remove(HubSubscription.objects.of_pairs(leaving), "unsubscribed")


def _pk(check: Check) -> int:
    return check.pk
