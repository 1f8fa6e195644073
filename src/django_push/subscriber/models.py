"""The ``Subscription`` model: one row per (hub, topic), with its verification state."""

from __future__ import annotations

import datetime
import logging
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync, sync_to_async
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_push import http, protocol
from django_push.conf import conf
from django_push.exceptions import FetchError, HubError
from django_push.subscriber.utils import (
    generate_random_string,
    get_domain,
    get_hub_credentials,
)

logger = logging.getLogger("django_push")


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
        self.args = (message,)

    def __str__(self) -> str:
        return self.reason


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def verified(self) -> SubscriptionQuerySet:
        return self.filter(verified=True)

    def active(self) -> SubscriptionQuerySet:
        """Verified and within their lease: the ones content is accepted for."""
        return self.verified().filter(
            models.Q(lease_expiration__isnull=True) | models.Q(lease_expiration__gt=timezone.now())
        )

    def expiring(self, within: float | None = None) -> SubscriptionQuerySet:
        """Verified subscriptions whose lease ends within ``within`` seconds (or has ended)."""
        seconds = conf.PUSH_RENEW_BEFORE if within is None else within
        limit = timezone.now() + datetime.timedelta(seconds=seconds)
        return self.verified().filter(lease_expiration__lte=limit)


class SubscriptionManager(models.Manager["Subscription"]):
    def get_queryset(self) -> SubscriptionQuerySet:
        return SubscriptionQuerySet(self.model, using=self._db)

    def verified(self) -> SubscriptionQuerySet:
        return self.get_queryset().verified()

    def active(self) -> SubscriptionQuerySet:
        return self.get_queryset().active()

    def expiring(self, within: float | None = None) -> SubscriptionQuerySet:
        return self.get_queryset().expiring(within)

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

        def enqueue() -> None:
            from django_push.subscriber.tasks import subscribe_task
            from django_push.tasks import enqueue

            enqueue(subscribe_task, subscription.pk, lease_seconds)

        transaction.on_commit(enqueue, using=self.db)
        return subscription

    async def asubscribe(
        self, topic: str, hub: str | None = None, lease_seconds: int | None = None
    ) -> Subscription:
        return await sync_to_async(self.subscribe)(topic, hub, lease_seconds)


class Subscription(models.Model):
    """A subscription of this site to a topic at a hub.

    ``verified`` is True once the hub has confirmed it; ``pending`` names the request
    (subscribe or unsubscribe) that waits for the hub's verification.
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

    objects = SubscriptionManager()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["hub", "topic"], name="subscriber_unique_hub_topic"),
        ]

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

    @property
    def callback_url(self) -> str:
        """The URL the hub calls back; empty until the row is saved."""
        if self._state.adding:
            return ""
        scheme = "https" if conf.PUSH_SSL_CALLBACK else "http"
        return f"{scheme}://{get_domain()}{reverse('subscriber_callback', args=[self.pk])}"

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

    async def asubscribe(self, lease_seconds: int | None = None) -> http.Response:
        return await self.asend_request(protocol.SUBSCRIBE, lease_seconds)

    async def aunsubscribe(self) -> http.Response:
        return await self.asend_request(protocol.UNSUBSCRIBE)

    def send_request(self, mode: protocol.Mode, lease_seconds: int | None = None) -> http.Response:
        return async_to_sync(self.asend_request)(mode, lease_seconds)

    async def asend_request(
        self, mode: protocol.Mode, lease_seconds: int | None = None
    ) -> http.Response:
        """Send a subscription request (WebSub 5.1) and record what the hub said."""
        if mode == protocol.SUBSCRIBE:
            if not self.may_send_secret():
                self.secret = ""
            elif not self.secret:
                self.secret = generate_random_string()
        self.pending = mode
        self.requested_at = timezone.now()
        await self.asave(update_fields=["secret", "pending", "requested_at"])
        callback_url = await sync_to_async(lambda: self.callback_url)()
        credentials = await sync_to_async(get_hub_credentials)(self.hub)

        data = [
            (protocol.CALLBACK, callback_url),
            (protocol.MODE, mode),
            (protocol.TOPIC, self.topic),
        ]
        if mode == protocol.SUBSCRIBE:
            lease = lease_seconds or conf.PUSH_LEASE_SECONDS
            if lease:
                data.append((protocol.LEASE_SECONDS, str(lease)))
            if self.secret:
                data.append((protocol.SECRET, self.secret))

        try:
            response = await http.post_form(self.hub, data, auth=credentials)
        except FetchError as exc:
            await self._arecord_failure(f"Could not reach hub {self.hub}: {exc.reason}")
            raise SubscriptionError(
                f"Error during request to hub {self.hub} for topic {self.topic}: {exc.reason}",
                self,
            ) from exc

        if response.status == 204:
            # PubSubHubbub 0.3 hubs answer 204 when they verified synchronously.
            await self._aconfirm(mode, lease_seconds=None)
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
            await self._arecord_failure(f"HTTP {response.status}: {text}")
            raise SubscriptionError(
                f"Error during request to hub {self.hub} for topic {self.topic}: {text}",
                self,
                response,
            )
        return response

    async def _arecord_failure(self, message: str) -> None:
        logger.error("%s request for %s failed: %s", self.pending or "Hub", self.topic, message)
        self.pending = self.Pending.NONE
        self.last_error = message
        await self.asave(update_fields=["pending", "last_error"])

    async def _aconfirm(self, mode: str, lease_seconds: int | None) -> None:
        if mode == protocol.UNSUBSCRIBE:
            await self.adelete()
            return
        self.verified = True
        self.pending = self.Pending.NONE
        self.last_error = ""
        await self.asave(update_fields=["verified", "pending", "last_error"])

    # Called by the callback view ------------------------------------------------------

    def confirm_subscription(self, lease_seconds: int) -> None:
        """The hub verified (or re-verified) the subscription with this lease."""
        self.verified = True
        self.pending = self.Pending.NONE
        self.lease_seconds = lease_seconds
        self.set_expiration(lease_seconds)
        self.denied_at = None
        self.denied_reason = ""
        self.last_error = ""
        self.save(
            update_fields=[
                "verified",
                "pending",
                "lease_seconds",
                "lease_expiration",
                "denied_at",
                "denied_reason",
                "last_error",
            ]
        )

    def deny(self, reason: str) -> None:
        """The hub refused the subscription (WebSub 5.2)."""
        self.verified = False
        self.pending = self.Pending.NONE
        self.denied_at = timezone.now()
        self.denied_reason = reason
        self.save(update_fields=["verified", "pending", "denied_at", "denied_reason"])

    def expects(self, mode: str) -> bool:
        """Whether a verification of ``mode`` answers a request of ours (S-12, C-4)."""
        if mode == protocol.UNSUBSCRIBE:
            return self.pending == self.Pending.UNSUBSCRIBE
        if mode == protocol.SUBSCRIBE:
            return self.pending == self.Pending.SUBSCRIBE or (
                self.verified and self.pending == self.Pending.NONE
            )
        return False
