"""The ``Subscription`` model: one row per (hub, topic), with its verification state."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import urlencode, urlsplit

from asgiref.sync import async_to_sync, sync_to_async
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push import diagnostics, http, protocol
from django_push.conf import conf
from django_push.dispatch import send_on_commit
from django_push.exceptions import FetchError, HubError
from django_push.subscriber import queue, signals
from django_push.subscriber.capability import (
    MAX_TOKEN_LENGTH,
    TOKEN_PARAM,
    new_callback_token,
    token_matches,
)
from django_push.subscriber.utils import (
    generate_random_string,
    get_domain,
    get_hub_credentials,
)

if TYPE_CHECKING:
    from aiohttp import ClientSession as Session

logger = logging.getLogger("django_push.subscriber")

# A hub that answers these may answer otherwise a little later: busy, or restarting.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Seconds before the first retry without Retry-After; doubled after each.
RETRY_FIRST_DELAY = 0.5


def retry_after(response: http.Response) -> float | None:
    """The wait ``Retry-After`` asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isascii() and value.isdigit():
        return float(value[:9])
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


class SubscriptionError(HubError):
    """The hub refused a subscription request, or could not be reached.

    ``subscription`` and ``response`` are kept, as in 1.1; ``response`` is ``None`` when
    the hub did not answer.
    """

    def __init__(
        self,
        message: str,
        subscription: Subscription,
        response: http.Response | None = None,
    ) -> None:
        self.subscription = subscription
        self.response = response
        super().__init__(subscription.hub, response.status if response else None, message)
        self.args = (message, subscription, response)  # as 1.1 raised it

    def __str__(self) -> str:
        return self.reason


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def verified(self) -> SubscriptionQuerySet:
        """Subscriptions the hub has confirmed (their lease may have ended)."""
        return self.filter(verified=True)

    def active(self) -> SubscriptionQuerySet:
        """Verified and within their lease: the ones content is accepted for."""
        return self.verified().filter(
            models.Q(lease_expiration__isnull=True) | models.Q(lease_expiration__gt=timezone.now())
        )

    def expiring(self, within: float | None = None) -> SubscriptionQuerySet:
        """Verified subscriptions to renew now: their lease ends within ``within`` seconds
        (or has ended), ends later than ``PUSH_SUBSCRIBER_LEASE_RANGE`` allows (stored
        before the clamp, e.g. by 1.1), or is unknown."""
        seconds = conf.PUSH_RENEW_BEFORE if within is None else within
        now = timezone.now()
        longest = datetime.timedelta(seconds=conf.PUSH_SUBSCRIBER_LEASE_RANGE[1])
        return self.verified().filter(
            models.Q(lease_expiration__lte=now + datetime.timedelta(seconds=seconds))
            | models.Q(lease_expiration__gt=now + longest)
            | models.Q(lease_expiration__isnull=True)
        )

    def legacy(self) -> SubscriptionQuerySet:
        """Rows from django-push 1.1 that still have a guessable callback (no token)."""
        return self.filter(callback_token__isnull=True)

    def reconciled(self) -> SubscriptionQuerySet:
        """Active subscriptions that reconciliation polls: those with an interval of their
        own, and, when ``PUSH_SUBSCRIBER_RECONCILE`` is set, those without one."""
        polled = models.Q(reconcile_seconds__gt=0)
        if conf.PUSH_SUBSCRIBER_RECONCILE:
            polled |= models.Q(reconcile_seconds__isnull=True)
        return self.active().filter(polled)

    def due(self, now: datetime.datetime | None = None) -> SubscriptionQuerySet:
        """Reconciled subscriptions whose next poll is due (or was never planned)."""
        now = now or timezone.now()
        return self.reconciled().filter(
            models.Q(next_poll_at__isnull=True) | models.Q(next_poll_at__lte=now)
        )


# The compiled SQL of Subscription.objects.for_callback(), by (database alias, fields).
_CALLBACK_SQL: dict[tuple[str, tuple[str, ...]], str] = {}


class SubscriptionManager(models.Manager["Subscription"]):
    def get_queryset(self) -> SubscriptionQuerySet:
        return SubscriptionQuerySet(self.model, using=self._db)

    def verified(self) -> SubscriptionQuerySet:
        return self.get_queryset().verified()

    def active(self) -> SubscriptionQuerySet:
        return self.get_queryset().active()

    def expiring(self, within: float | None = None) -> SubscriptionQuerySet:
        return self.get_queryset().expiring(within)

    def legacy(self) -> SubscriptionQuerySet:
        return self.get_queryset().legacy()

    def reconciled(self) -> SubscriptionQuerySet:
        return self.get_queryset().reconciled()

    def due(self, now: datetime.datetime | None = None) -> SubscriptionQuerySet:
        return self.get_queryset().due(now)

    def for_callback(self, pk: int, fields: tuple[str, ...]) -> Subscription | None:
        """Row ``pk`` with only ``fields`` loaded, or ``None``: the one read of a callback
        request. Its SQL is compiled once per database and field list, then reused as a raw
        query (the values still go through the fields' converters): compiling it on every
        request took a fifth of the callback's time."""
        key = (self.db, fields)
        sql = _CALLBACK_SQL.get(key)
        if sql is None:
            pk_name = self.model._meta.pk.attname
            query = self.filter(pk=0).values_list(pk_name, *fields)[:1].query
            sql, params = query.get_compiler(using=self.db).as_sql()
            if list(params) != [0]:  # pragma: no cover - a Django change would show here
                raise RuntimeError(f"unexpected parameters in the callback lookup: {params}")
            _CALLBACK_SQL[key] = sql
        found = list(self.raw(sql, [pk]))
        return found[0] if found else None

    def subscribe(
        self, topic: str, hub: str | None = None, lease_seconds: int | None = None
    ) -> Subscription:
        """Subscribe to ``topic`` at ``hub``, or renew the existing subscription.

        Without ``hub``, the topic URL is fetched and its hub and canonical ``self`` URL
        are discovered first. The row is saved now; the request goes to the hub from a
        background task once the current transaction commits.
        """
        if hub is None:
            from django_push.discovery import discover

            found = discover(topic)
            topic, hub = found.topic, found.hub
        with transaction.atomic(using=self.db):
            subscription, _created = self.select_for_update().get_or_create(hub=hub, topic=topic)
        queue.on_commit(queue.SUBSCRIBE, subscription.pk, lease_seconds, using=self.db)
        return subscription

    async def asubscribe(
        self, topic: str, hub: str | None = None, lease_seconds: int | None = None
    ) -> Subscription:
        """The async twin of :meth:`subscribe`."""
        return await sync_to_async(self.subscribe)(topic, hub, lease_seconds)


def clamp_lease(seconds: int) -> int:
    """A lease granted by a hub, within ``PUSH_SUBSCRIBER_LEASE_RANGE``: a lease of 0 would
    stop content at once, and one of 68 years would stop renewals."""
    shortest, longest = conf.PUSH_SUBSCRIBER_LEASE_RANGE
    return max(shortest, min(seconds, longest))


# Which of a row's callback URLs a request reached: the one the hub has now, or the 1.1 URL
# (no token) a moved row still has to unsubscribe.
Callback = Literal["current", "legacy"]

# last_notification_at is written at most this often per subscription: a write per
# notification would cost most of the callback's time.
NOTIFICATION_STAMP_INTERVAL = datetime.timedelta(minutes=1)


class Subscription(models.Model):
    """A subscription of this site to a topic at a hub.

    ``verified`` is True once the hub has confirmed it; ``pending`` names the request
    (subscribe or unsubscribe) that waits for the hub's verification. Rows from 1.1 have
    no ``callback_token`` until their next renewal moves them to a capability URL; until the
    hub has dropped their old URL, ``legacy_callback`` holds it.
    """

    class Pending(models.TextChoices):
        NONE = "", _("nothing")
        SUBSCRIBE = "subscribe", _("subscription")
        UNSUBSCRIBE = "unsubscribe", _("unsubscription")

    hub = models.URLField(_("Hub"), max_length=1023)
    topic = models.URLField(_("Topic"), max_length=1023)
    verified = models.BooleanField(_("Verified"), default=False)
    verify_token = models.CharField(_("Verify Token"), max_length=255, blank=True)
    lease_expiration = models.DateTimeField(_("Lease expiration"), null=True, blank=True)
    secret = models.CharField(_("Secret"), max_length=255, blank=True)
    # A new secret goes here until the hub verifies the request that carried it: until
    # then the hub signs (or not) with ``secret``, and content is checked against that.
    pending_secret = models.CharField(
        _("secret awaiting verification"), max_length=255, blank=True, editable=False
    )
    # Added in 2.0.
    pending = models.CharField(
        _("awaiting verification of"),
        max_length=12,
        blank=True,
        default="",
        choices=Pending.choices,
    )
    lease_seconds = models.PositiveIntegerField(_("lease granted (seconds)"), null=True, blank=True)
    requested_at = models.DateTimeField(_("last request to the hub"), null=True, blank=True)
    denied_at = models.DateTimeField(_("denied at"), null=True, blank=True)
    denied_reason = models.TextField(_("reason of denial"), blank=True)
    last_error = models.TextField(_("last hub error"), blank=True)
    last_notification_at = models.DateTimeField(_("last notification"), null=True, blank=True)
    # NULL, not "": a row from 1.1 has no token at all (see callback_for()).
    callback_token = models.CharField(  # noqa: DJ001
        _("callback token"),
        max_length=MAX_TOKEN_LENGTH,
        null=True,  # rows from 1.1, until their next renewal
        blank=True,
        default=new_callback_token,
        editable=False,
    )
    legacy_callback = models.URLField(
        _("1.1 callback to unsubscribe"), max_length=1023, blank=True, editable=False
    )
    legacy_moved_at = models.DateTimeField(
        _("moved off the 1.1 callback"), null=True, blank=True, editable=False
    )
    # Reconciliation (PUSH_SUBSCRIBER_RECONCILE): polls of the topic, in case the hub missed.
    reconcile_seconds = models.PositiveIntegerField(
        _("poll the topic every (seconds)"),
        null=True,
        blank=True,
        help_text=_("Empty: PUSH_SUBSCRIBER_RECONCILE. 0: never."),
    )
    content_hash = models.CharField(
        _("SHA-256 of the last content"), max_length=64, blank=True, editable=False
    )
    etag = models.CharField(_("ETag of the topic"), max_length=255, blank=True, editable=False)
    last_modified = models.CharField(
        _("Last-Modified of the topic"), max_length=64, blank=True, editable=False
    )
    last_poll_at = models.DateTimeField(_("last poll"), null=True, blank=True, editable=False)
    next_poll_at = models.DateTimeField(_("next poll"), null=True, blank=True, editable=False)
    last_poll_error = models.TextField(_("last poll error"), blank=True, editable=False)
    # The highest Push-Sequence a delivery carried; a higher one than the next is a gap.
    last_sequence = models.PositiveBigIntegerField(
        _("last sequence number"), null=True, blank=True, editable=False
    )

    objects = SubscriptionManager()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["hub", "topic"], name="subscriber_unique_hub_topic"),
        ]
        indexes = [models.Index(fields=["next_poll_at"], name="subscriber_next_poll")]

    def __str__(self) -> str:
        return f"{self.topic}: {self.hub}"

    def set_expiration(self, seconds: int) -> None:
        """Set ``lease_expiration`` to ``seconds`` from now (not saved)."""
        self.lease_expiration = timezone.now() + datetime.timedelta(seconds=seconds)

    def has_expired(self) -> bool:
        if self.lease_expiration is None:
            return False
        return timezone.now() > self.lease_expiration

    @property
    def is_active(self) -> bool:
        """Verified and within its lease: content for it is accepted."""
        return self.verified and not self.has_expired()

    def truncated_topic(self) -> str:
        return self.topic if len(self.topic) <= 50 else f"{self.topic[:49]}…"

    # Callback URLs ------------------------------------------------------------------------

    def tokenless_callback_url(self) -> str:
        """The URL of 1.1: guessable, so only rows from 1.1 are reached there."""
        scheme = "https" if conf.PUSH_SSL_CALLBACK else "http"
        return f"{scheme}://{get_domain()}{reverse('subscriber_callback', args=[self.pk])}"

    @property
    def callback_url(self) -> str:
        """The URL the hub calls back, with its token; empty until the row is saved."""
        if self._state.adding:
            return ""
        url = self.tokenless_callback_url()
        if self.callback_token is None:
            return url
        return f"{url}?{urlencode({TOKEN_PARAM: self.callback_token})}"

    def callback_for(self, token: str | None) -> Callback | None:
        """Which callback of this row a request carrying ``token`` reached; ``None`` for a
        wrong or missing token (a guess)."""
        if self.callback_token is None:  # a 1.1 row: its only URL has no token
            return "current" if token is None else None
        if token is None:
            return "legacy" if self.legacy_callback else None
        return "current" if token_matches(token, self.callback_token) else None

    def diagnostics_url(self) -> str | None:
        """This subscription's diagnostics page on a django-push hub (``PUSH_HUB_DIAGNOSTICS``),
        reachable with its secret only; ``None`` without a secret or before it is saved."""
        if self._state.adding:
            return None
        return diagnostics.page_url(self.hub, self.topic, self.callback_url, self.secret)

    @property
    def poll_interval(self) -> int | None:
        """Seconds between reconciliation polls of this topic; ``None`` when not polled."""
        if self.reconcile_seconds is not None:
            return self.reconcile_seconds or None
        return conf.PUSH_SUBSCRIBER_RECONCILE or None

    def may_send_secret(self) -> bool:
        """WebSub sends secrets only to HTTPS hubs (S-6); ``PUSH_INSECURE_SECRETS`` overrides."""
        return urlsplit(self.hub).scheme == "https" or conf.PUSH_INSECURE_SECRETS

    # Requests to the hub ------------------------------------------------------------

    def subscribe(self, lease_seconds: int | None = None) -> http.Response:
        """Ask the hub for (or to renew) this subscription; raises ``SubscriptionError``."""
        return async_to_sync(self.asubscribe)(lease_seconds)

    def unsubscribe(self) -> http.Response:
        """Ask the hub to end this subscription; the row goes once the hub verifies it."""
        return async_to_sync(self.aunsubscribe)()

    async def asubscribe(
        self, lease_seconds: int | None = None, *, session: Session | None = None
    ) -> http.Response:
        """The async twin of :meth:`subscribe`; ``session`` (from
        :func:`django_push.http.client_session`) is shared by the requests of a run."""
        return await self.asend_request(protocol.SUBSCRIBE, lease_seconds, session=session)

    async def aunsubscribe(self, *, session: Session | None = None) -> http.Response:
        """The async twin of :meth:`unsubscribe`."""
        # The 1.1 URL first: once the main unsubscription is verified the row is gone.
        await self.aunsubscribe_legacy(session=session)
        return await self.asend_request(protocol.UNSUBSCRIBE, session=session)

    def send_request(self, mode: protocol.Mode, lease_seconds: int | None = None) -> http.Response:
        return async_to_sync(self.asend_request)(mode, lease_seconds)

    async def asend_request(
        self,
        mode: protocol.Mode,
        lease_seconds: int | None = None,
        *,
        session: Session | None = None,
    ) -> http.Response:
        """Send a subscription request (WebSub 5.1) and record what the hub said."""
        before_move = await self._aprepare(mode)
        callback_url = await sync_to_async(lambda: self.callback_url)()
        data = self._request_data(mode, callback_url, lease_seconds)
        try:
            response = await self._apost(mode, data, session)
            await self._arecord_answer(mode, response, lease_seconds)
        except SubscriptionError:
            if before_move is not None:
                await self._aundo_move(before_move)
            raise
        return response

    async def _aprepare(self, mode: protocol.Mode) -> dict[str, Any] | None:
        """Mark the request pending (so the hub's verification is recognised) and, for a
        subscription, choose the secret and move a 1.1 row to a capability URL. Returns
        what a move changed, as it was (``None`` when nothing moved): the token is saved
        before the request, as a hub may verify it before it answers."""
        fields = ["pending", "requested_at"]
        before_move: dict[str, Any] | None = None
        if mode == protocol.SUBSCRIBE:
            if not self.may_send_secret():
                self.secret = self.pending_secret = ""
            elif not self.secret and not self.pending_secret:
                # Kept aside until the hub verifies it (confirm_subscription()): a hub
                # still holding the subscription without one signs nothing meanwhile.
                self.pending_secret = generate_random_string()
            fields += ["secret", "pending_secret"]
            if self.callback_token is None:
                before_move = {
                    "pending": self.pending,
                    "legacy_callback": self.legacy_callback,
                    "legacy_moved_at": self.legacy_moved_at,
                }
                if self.verified:  # the hub delivers there: drop it once the new URL works
                    self.legacy_callback = await sync_to_async(self.tokenless_callback_url)()
                    self.legacy_moved_at = None
                self.callback_token = new_callback_token()
                fields += ["callback_token", "legacy_callback", "legacy_moved_at"]
        self.pending = mode
        self.requested_at = timezone.now()
        await self.asave(update_fields=fields)
        return before_move

    async def _aundo_move(self, before: dict[str, Any]) -> None:
        """The hub did not accept the request that moved this 1.1 row: back to its 1.1 URL,
        so ``legacy()`` lists it and the next ``renew_subscriptions --legacy`` moves it again
        (a tokenless URL never answers a subscribe verification, so waiting is safe). Not
        when the new URL got verified meanwhile (a hub that verified, then answered 5xx)."""
        unconfirmed = models.Q(verified=False)
        if self.legacy_callback:  # a verified row: confirmed once legacy_moved_at is set
            unconfirmed = models.Q(legacy_moved_at__isnull=True)
        undone = await Subscription.objects.filter(
            unconfirmed, pk=self.pk, callback_token=self.callback_token
        ).aupdate(callback_token=None, **before)
        if undone:
            self.callback_token = None
            for name, value in before.items():
                setattr(self, name, value)
            logger.warning("Moving %s off its 1.1 URL failed: it stays listed", self.topic)

    def _request_data(
        self, mode: protocol.Mode, callback_url: str, lease_seconds: int | None
    ) -> list[tuple[str, str]]:
        data = [
            (protocol.CALLBACK, callback_url),
            (protocol.MODE, mode),
            (protocol.TOPIC, self.topic),
        ]
        if mode == protocol.SUBSCRIBE:
            lease = lease_seconds or conf.PUSH_LEASE_SECONDS
            if lease:
                data.append((protocol.LEASE_SECONDS, str(lease)))
            secret = self.pending_secret or self.secret
            if secret:
                data.append((protocol.SECRET, secret))
        return data

    async def _apost(
        self, mode: protocol.Mode, data: list[tuple[str, str]], session: Session | None = None
    ) -> http.Response:
        """POST the request; a busy or restarting hub (429, 5xx, a timeout, a refused
        connection) is asked again with back-off, honouring ``Retry-After``, until
        ``PUSH_SUBSCRIBER_RETRY_HORIZON`` has passed. The last answer is returned."""
        credentials = await sync_to_async(get_hub_credentials)(self.hub)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + conf.PUSH_SUBSCRIBER_RETRY_HORIZON
        delay = RETRY_FIRST_DELAY
        while True:
            error: FetchError | None = None
            try:
                response = await http.post_form(self.hub, data, auth=credentials, session=session)
            except FetchError as exc:
                if not http.is_transient(exc):
                    await self._afail_unreachable(mode, exc)
                wait, error, why = delay, exc, exc.reason
            else:
                if response.status not in RETRYABLE_STATUSES:
                    return response
                wait, error, why = retry_after(response) or delay, None, f"HTTP {response.status}"
            if loop.time() + wait > give_up_at:
                if error is not None:
                    await self._afail_unreachable(mode, error)
                return response
            logger.info(
                "Hub %s is busy for the %s of %s (%s); asking again in %.1f s",
                self.hub,
                mode,
                self.topic,
                why,
                wait,
            )
            await asyncio.sleep(wait)
            delay *= 2

    async def _afail_unreachable(self, mode: protocol.Mode, exc: FetchError) -> NoReturn:
        await self._arecord_failure(mode, None, f"Could not reach hub {self.hub}: {exc.reason}")
        raise SubscriptionError(
            f"Error during request to hub {self.hub} for topic {self.topic}: {exc.reason}",
            self,
        ) from exc

    async def _arecord_answer(
        self, mode: protocol.Mode, response: http.Response, lease_seconds: int | None
    ) -> None:
        if response.status == 204:
            # PubSubHubbub 0.3 hubs answer 204 when they verified synchronously.
            await self._aconfirm(mode, lease_seconds)
        elif response.ok:
            logger.info(
                "Hub %s accepted the %s request for %s (%s)",
                self.hub,
                mode,
                self.topic,
                response.status,
            )
            if self.last_error:
                self.last_error = ""
                await self.asave(update_fields=["last_error"])
        else:
            text = response.text.strip()[:1000] or "(empty body)"
            await self._arecord_failure(mode, response.status, f"HTTP {response.status}: {text}")
            raise SubscriptionError(
                f"Error during request to hub {self.hub} for topic {self.topic}: {text}",
                self,
                response,
            )

    async def _arecord_failure(self, mode: str, status: int | None, message: str) -> None:
        logger.error("%s request for %s failed: %s", mode, self.topic, message)
        self.pending = self.Pending.NONE
        self.last_error = message
        await self.asave(update_fields=["pending", "last_error"])
        failed = {"subscription": self, "mode": mode, "status": status, "text": message}
        await sync_to_async(send_on_commit)(signals.subscription_failed, Subscription, failed)

    async def _aconfirm(self, mode: str, lease_seconds: int | None) -> None:
        """A 0.3 hub's 204: the request is verified already."""
        if mode == protocol.UNSUBSCRIBE:
            await sync_to_async(self.confirm_unsubscription)()
        else:
            asked = lease_seconds or conf.PUSH_LEASE_SECONDS or conf.PUSH_SUBSCRIBER_LEASE_RANGE[1]
            await sync_to_async(self.confirm_subscription)(asked)

    async def aunsubscribe_legacy(self, *, session: Session | None = None) -> None:
        """Ask the hub to drop the 1.1 URL this row moved away from.

        Failures are logged, not raised: until the hub drops it, content arriving there is
        dropped as a duplicate, and the next verified renewal asks again.
        """
        if not self.legacy_callback:
            return
        if self.legacy_moved_at is None:
            self.legacy_moved_at = timezone.now()
            await self.asave(update_fields=["legacy_moved_at"])
        data = self._request_data(protocol.UNSUBSCRIBE, self.legacy_callback, None)
        credentials = await sync_to_async(get_hub_credentials)(self.hub)
        try:
            response = await http.post_form(self.hub, data, auth=credentials, session=session)
        except FetchError as exc:
            logger.warning("Could not unsubscribe 1.1 callback of %s: %s", self.topic, exc.reason)
            return
        if response.status == 204:
            await sync_to_async(self.confirm_legacy_unsubscription)()
        elif not response.ok:
            logger.warning(
                "Hub %s refused to unsubscribe the 1.1 callback of %s: HTTP %s",
                self.hub,
                self.topic,
                response.status,
            )

    def unsubscribe_legacy(self) -> None:
        async_to_sync(self.aunsubscribe_legacy)()

    # Verifications from the hub, called by the callback view --------------------------------

    def expects(self, mode: str) -> bool:
        """Whether a verification of ``mode`` answers a pending request of ours (S-12).

        A hub-initiated re-verification of an active subscription is refused too (C-4):
        answering it would let anyone re-subscribe our callback with their own secret.
        """
        return mode in (protocol.SUBSCRIBE, protocol.UNSUBSCRIBE) and self.pending == mode

    def confirm_subscription(self, lease_seconds: int) -> bool:
        """The hub verified our pending subscription with this lease (clamped).

        One conditional UPDATE: False, and nothing changed, if the request was no longer
        pending (a concurrent verification got there first). A pending secret becomes the
        secret: the hub has it now.
        """
        seconds = clamp_lease(lease_seconds)
        now = timezone.now()
        changes: dict[str, Any] = {
            "verified": True,
            "pending": self.Pending.NONE,
            "lease_seconds": seconds,
            "lease_expiration": now + datetime.timedelta(seconds=seconds),
            "denied_at": None,
            "denied_reason": "",
            "last_error": "",
        }
        if self.pending_secret:
            changes.update(secret=self.pending_secret, pending_secret="")
        if self.legacy_callback and self.legacy_moved_at is None:
            changes["legacy_moved_at"] = now  # from now on the 1.1 URL gets duplicates
        rows = Subscription.objects.filter(
            pk=self.pk,
            pending=self.Pending.SUBSCRIBE,
            callback_token=self.callback_token,
            pending_secret=self.pending_secret,
        ).update(**changes)
        if not rows:
            return False
        for name, value in changes.items():
            setattr(self, name, value)
        verified = {"subscription": self, "lease_seconds": seconds}
        send_on_commit(signals.subscription_verified, Subscription, verified)
        if self.legacy_callback:
            queue.on_commit(queue.UNSUBSCRIBE_LEGACY, self.pk)
        return True

    def confirm_unsubscription(self) -> bool:
        """The hub verified our pending unsubscription: the row goes (one DELETE)."""
        deleted, _ = Subscription.objects.filter(
            pk=self.pk, pending=self.Pending.UNSUBSCRIBE
        ).delete()
        if not deleted:
            return False
        removed = {"subscription": self, "reason": "unsubscribed"}
        send_on_commit(signals.subscription_removed, Subscription, removed)
        return True

    def confirm_legacy_unsubscription(self) -> bool:
        """The hub verified the unsubscription of the 1.1 URL this row moved away from."""
        rows = (
            Subscription.objects.filter(pk=self.pk, legacy_moved_at__isnull=False)
            .exclude(legacy_callback="")
            .update(legacy_callback="")
        )
        self.legacy_callback = ""
        return bool(rows)

    def deny(self, reason: str) -> None:
        """The hub refused the subscription (WebSub 5.2); may come at any time."""
        changes: dict[str, Any] = {
            "verified": False,
            "pending": self.Pending.NONE,
            "denied_at": timezone.now(),
            "denied_reason": reason,
        }
        Subscription.objects.filter(pk=self.pk).update(**changes)
        for name, value in changes.items():
            setattr(self, name, value)
        denied = {"subscription": self, "reason": reason}
        send_on_commit(signals.subscription_denied, Subscription, denied)

    # Content from the hub ---------------------------------------------------------------

    def record_notification(self) -> None:
        """Stamp ``last_notification_at``, at most once a minute: decided from the value read
        with the row, so most notifications write nothing."""
        now = timezone.now()
        last = self.last_notification_at
        if last is not None and now - last < NOTIFICATION_STAMP_INTERVAL:
            return
        Subscription.objects.filter(pk=self.pk).update(last_notification_at=now)
        self.last_notification_at = now

    def receive_content(self, digest: str) -> bool:
        """Record ``digest`` (see ``duplicates.body_digest``) as the last content received;
        False when it already was. One conditional UPDATE, so of a push and a poll bringing
        the same body at once, one passes."""
        rows = (
            Subscription.objects.filter(pk=self.pk)
            .exclude(content_hash=digest)
            .update(content_hash=digest)
        )
        self.content_hash = digest
        return bool(rows)

    def record_sequence(self, sequence: int) -> int:
        """Record the ``Push-Sequence`` of a delivery; returns how many numbers it skipped
        since the last one recorded (0 for the first, a retry, or an older content sent
        late, which never lowers it). One conditional UPDATE, none for an older number."""
        last = self.last_sequence
        if last is not None and sequence <= last:
            return 0
        newer = models.Q(last_sequence__isnull=True) | models.Q(last_sequence__lt=sequence)
        rows = Subscription.objects.filter(newer, pk=self.pk).update(last_sequence=sequence)
        self.last_sequence = sequence
        return sequence - last - 1 if rows and last is not None else 0

    def poll_now(self) -> bool:
        """Queue a reconciliation poll of the topic after a gap, unless it is not polled or
        was polled less than ``PUSH_SUBSCRIBER_GAP_POLL_INTERVAL`` seconds ago; True if
        queued. The stamp is taken by one conditional UPDATE: of two gaps at once, one polls."""
        interval = conf.PUSH_SUBSCRIBER_GAP_POLL_INTERVAL
        if interval is None or self.poll_interval is None:
            return False
        now = timezone.now()
        recent = models.Q(last_poll_at__gt=now - datetime.timedelta(seconds=interval))
        if not Subscription.objects.filter(pk=self.pk).exclude(recent).update(last_poll_at=now):
            return False
        queue.on_commit(queue.POLL_NOW, self.pk)
        return True

    def forget_content(self, digest: str, previous: str) -> None:
        """Undo :meth:`receive_content` for content that was not processed after all, so the
        hub's retry, or the next poll, brings it again."""
        Subscription.objects.filter(pk=self.pk, content_hash=digest).update(content_hash=previous)
        self.content_hash = previous


# The renewal beat's model lives with the rest of the beat; Django finds models here.
from django_push.subscriber.heartbeat import RenewalBeat  # noqa: E402, F401
