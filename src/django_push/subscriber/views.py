"""The callback view: answers the hub's verification GETs and receives content POSTs."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_push import protocol, signatures
from django_push.conf import conf
from django_push.links import parse_links
from django_push.responses import plain_text
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated
from django_push.urlnorm import same_url

logger = logging.getLogger("django_push")

# WebSub H-9 challenges are short; refuse anything absurd rather than echo it.
MAX_CHALLENGE_LENGTH = 1024
# The largest lease the lease_seconds column holds (68 years): longer ones are stored as this.
MAX_LEASE = 2**31 - 1


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class CallbackView(View):
    """Subclass and override :meth:`handle_subscription` to process content.

    In ``handle_subscription()``, ``self.request``, ``self.subscription`` and ``self.links``
    are set. Route it with the name ``subscriber_callback`` and an integer ``pk``.
    """

    http_method_names = ["get", "post"]
    subscription: Subscription
    links: list[dict[str, str]] | None = None

    def get(self, request: HttpRequest, pk: int | str) -> HttpResponse:
        subscription = Subscription.objects.filter(pk=pk).first()
        if subscription is None:
            return plain_text(404, "Unknown subscription")
        params = request.GET
        missing = [name for name in (protocol.MODE, protocol.TOPIC) if not params.get(name)]
        if missing:
            return plain_text(400, f"Missing parameters: {', '.join(missing)}")
        mode, topic = params[protocol.MODE], params[protocol.TOPIC]
        if not same_url(topic, subscription.topic):  # hubs decode unreserved escapes (H-4)
            return plain_text(404, "Mismatching topic URL")

        if mode == protocol.DENIED:
            # NUL: PostgreSQL cannot store it, and no reason needs it.
            reason = params.get(protocol.REASON, "").replace("\x00", "")[:1000]
            subscription.deny(reason)
            logger.warning(
                "Hub %s denied the subscription to %s: %s",
                subscription.hub,
                topic,
                reason,
            )
            return plain_text(200)
        if mode not in (protocol.SUBSCRIBE, protocol.UNSUBSCRIBE):
            return plain_text(404, "Unrecognized hub.mode parameter")

        challenge = params.get(protocol.CHALLENGE, "")
        if not challenge:
            return plain_text(400, "Missing parameters: hub.challenge")
        if len(challenge) > MAX_CHALLENGE_LENGTH:
            return plain_text(400, "hub.challenge is too long")
        if not challenge.isprintable():  # S-13: echo text, never binary data
            return plain_text(400, "hub.challenge must be printable text")
        token = params.get(protocol.VERIFY_TOKEN)
        if subscription.verify_token and token is not None and token != subscription.verify_token:
            return plain_text(404, "Mismatching hub.verify_token")
        if not subscription.expects(mode):
            logger.warning("Refused an unrequested %s verification for %s", mode, topic)
            return plain_text(404, f"No pending {mode} request for this topic")

        if mode == protocol.SUBSCRIBE:
            lease = params.get(protocol.LEASE_SECONDS)
            if lease is None:
                return plain_text(400, "Missing hub.lease_seconds parameter")
            seconds = protocol.parse_lease(lease, MAX_LEASE)
            if seconds is None:
                return plain_text(400, "hub.lease_seconds must be an integer")
            subscription.confirm_subscription(seconds)
            logger.info(
                "Verified subscription to %s via %s (lease %s s)",
                topic,
                subscription.hub,
                lease,
            )
        else:
            subscription.delete()
            logger.info("Verified unsubscription from %s via %s", topic, subscription.hub)
        return plain_text(200, challenge)

    def post(self, request: HttpRequest, pk: int | str) -> HttpResponse:
        subscription = Subscription.objects.filter(pk=pk).first()
        if subscription is None:
            return plain_text(404, "Unknown subscription")
        limit = conf.PUSH_MAX_BODY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return plain_text(400, "Invalid Content-Length")
        if declared > limit:
            return plain_text(413, f"Body over {limit} bytes")
        try:
            body = request.body
        except RequestDataTooBig:
            return plain_text(413, f"Body over {limit} bytes")
        if len(body) > limit:
            return plain_text(413, f"Body over {limit} bytes")

        if not subscription.is_active:
            logger.info("Dropped a notification for inactive subscription %s", subscription.pk)
            return plain_text(410, "Subscription is not active")
        if subscription.secret:
            header = request.headers.get(protocol.SIGNATURE_HEADER)
            if not header:
                logger.warning(
                    "Dropped a notification without signature for %s",
                    subscription.topic,
                )
                return plain_text(400, "Missing X-Hub-Signature")
            if not signatures.verify(subscription.secret, body, header):
                # S-20: drop it but answer 2xx, so probing teaches nothing.
                logger.warning(
                    "Dropped a notification with a bad signature for %s",
                    subscription.topic,
                )
                return plain_text(200)

        link_header = request.headers.get("Link")
        self.links = parse_links(link_header) if link_header else None
        self.subscription = subscription
        Subscription.objects.filter(pk=subscription.pk).update(last_notification_at=timezone.now())
        updated.send(sender=subscription, notification=body, request=request, links=self.links)
        self.handle_subscription()
        return plain_text(200)

    def handle_subscription(self) -> Any:
        """Hook for subclasses; called after the ``updated`` signal for valid content."""


callback = CallbackView.as_view()
