"""The hub endpoint: validate synchronously, answer 202, do the work in tasks (H-2)."""

from __future__ import annotations

import logging

from django.apps import apps
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig, TooManyFieldsSent
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_push import protocol
from django_push.conf import conf
from django_push.hub import params
from django_push.hub.intake import PublishRefused
from django_push.hub.models import HubSubscription, Intent, Ping
from django_push.hub.tasks import start_publish, start_verification
from django_push.responses import plain_text

logger = logging.getLogger("django_push.hub")

# Seconds a subscriber is asked to wait when too many verifications are pending (429).
RETRY_AFTER = 60


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class HubView(View):
    """POST ``hub.mode=subscribe|unsubscribe|publish``; everything else is refused with a reason."""

    http_method_names = ["post", "get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return plain_text(405, "This is a WebSub hub: send a form-encoded POST with hub.mode.")

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            parsed = params.parse(request.POST)
        except params.InvalidRequest as exc:
            logger.info("Refused hub request: %s", exc)
            return plain_text(400, str(exc))
        except RequestDataTooBig:
            return plain_text(413, "Request body too large")
        except TooManyFieldsSent:
            return plain_text(400, "Too many fields")

        if isinstance(parsed, params.PublishRequest):
            return self.publish_request(request, parsed)
        return self.subscription_request(parsed)

    def publish_request(self, request: HttpRequest, parsed: params.PublishRequest) -> HttpResponse:
        """Record the publish request before answering, so a lost task is found again by the
        sweeper; only topics someone follows, and not already waiting, get a fetch task."""
        hub_url = self.hub_url(request)
        if hub_url is None:
            logger.error("Publish refused: set PUSH_HUB_URL, this hub's public URL")
            return plain_text(503, "This hub does not know its public URL (PUSH_HUB_URL)")
        pings = Ping.objects.receive(parsed.topics, hub_url)

        transaction.on_commit(lambda: start_publish(pings))
        return plain_text(202, f"Publishing {len(parsed.topics)} topic(s)")

    def subscription_request(self, parsed: params.SubscriptionRequest) -> HttpResponse:
        """Store the request for verification, unless it would only aim traffic at its callback."""
        if parsed.mode == protocol.UNSUBSCRIBE and Intent.objects.unsubscribes_nothing(
            parsed.topic, parsed.callback
        ):
            logger.info("Unsubscribe of %s from %s: not subscribed", parsed.callback, parsed.topic)
            return plain_text(202, "unsubscribe request accepted; nothing to verify")
        pair = {"topic": parsed.topic, "callback": parsed.callback}
        crowding = Intent.objects.crowding(
            parsed.callback, lambda: HubSubscription.objects.active().filter(**pair).exists()
        )
        if crowding:
            logger.warning("Deferred %s of %s: %s", parsed.mode, parsed.callback, crowding)
            response = plain_text(429, f"Try again later: {crowding}")
            response["Retry-After"] = str(RETRY_AFTER)
            return response
        intent = Intent.objects.create(
            mode=parsed.mode,
            topic=parsed.topic,
            callback=parsed.callback,
            secret=parsed.secret,
            lease_seconds=parsed.lease_seconds,
        )
        transaction.on_commit(lambda: start_verification(intent.pk))
        return plain_text(202, f"{parsed.mode} request accepted; verification follows")

    def hub_url(self, request: HttpRequest, path: str | None = None) -> str | None:
        """The hub's public URL, sent as rel="hub" with deliveries (H-15); ``None`` when no
        trustworthy one is known.

        Without ``PUSH_HUB_URL``, the Host header is used only when it names a host listed
        as such in ``ALLOWED_HOSTS``: one matched by ``*`` or a ``.domain`` pattern may be
        anything the sender chose. Its port is kept only when it is the port the request reached
        (the development server's).
        Next comes the current ``django.contrib.sites`` Site.
        """
        if conf.PUSH_HUB_URL:
            return conf.PUSH_HUB_URL
        path = request.path if path is None else path
        domain, port = split_domain_port(request.get_host())
        # A port in Host is kept only when it is the port the request reached (the
        # development server's): any other one is the sender's choice.
        if domain in listed_hosts() and (not port or port == str(request.get_port())):
            return request.build_absolute_uri(path)
        if apps.is_installed("django.contrib.sites"):
            from django.contrib.sites.models import Site

            try:
                site = Site.objects.get_current(request)
            except (Site.DoesNotExist, ImproperlyConfigured):
                return None
            return f"{request.scheme}://{site.domain}{path}"
        return None


def listed_hosts() -> set[str]:
    """The host names ``ALLOWED_HOSTS`` names literally (no ``*``, no ``.domain`` pattern),
    with Django's own list when it is empty under ``DEBUG``."""
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return {host.lower() for host in allowed if host != "*" and not host.startswith(".")}


hub = HubView.as_view()


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class PublishView(View):
    """POST content to ``?hub.topic=<topic>`` to publish it without a fetch ("fat ping").

    Off unless ``PUSH_HUB_DIRECT_PUBLISH``; each request is signed with the shared secret
    (see :mod:`django_push.hub.publishing`). Checked in order: switched on, size, signature,
    topic; then the content is stored and fanned out.
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        from django_push.checks import MIN_PUBLISH_SECRET
        from django_push.hub import publishing

        if not conf.PUSH_HUB_DIRECT_PUBLISH:
            return plain_text(404, "Direct publishing is off on this hub")
        secret = conf.PUSH_HUB_DIRECT_PUBLISH_SECRET
        if not isinstance(secret, str) or len(secret) < MIN_PUBLISH_SECRET:  # type: ignore[redundant-expr]
            logger.error("Direct publish refused: PUSH_HUB_DIRECT_PUBLISH_SECRET is too short")
            return plain_text(503, "Direct publishing is not configured on this hub")
        limit = conf.PUSH_HUB_MAX_CONTENT_SIZE
        try:
            declared = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            return plain_text(400, "Content-Length must be a number")
        # Refused from Content-Length before reading; the read is capped all the same.
        if declared > limit or len(body := request.read(limit + 1)) > limit:
            return plain_text(413, f"Content is larger than {limit} bytes")
        topic = request.GET.get(protocol.TOPIC, "")
        content_type = request.headers.get("Content-Type", "")
        try:
            publishing.check_signature(
                secret,
                request.headers.get(publishing.TIMESTAMP_HEADER, ""),
                request.headers.get(publishing.SIGNATURE_HEADER, ""),
                topic,
                content_type,
                body,
            )
        except PublishRefused as exc:
            logger.warning("Direct publish to %r refused: %s", topic, exc)
            return plain_text(exc.status, str(exc))
        try:
            params.check_public_url(topic, protocol.TOPIC)
            # The hub endpoint is this URL's parent, as both come from django_push.hub.urls.
            hub_path = request.path.removesuffix("publish/")
            hub_url = HubView().hub_url(request, hub_path)
            if hub_url is None:
                return plain_text(503, "This hub does not know its public URL (PUSH_HUB_URL)")
            content = publishing.publish_content(topic, body, content_type, hub_url)
        except params.InvalidRequest as exc:
            return plain_text(400, str(exc))
        except PublishRefused as exc:
            return plain_text(exc.status, str(exc))
        if content is None:
            return plain_text(200, "Nothing to deliver: no active subscriber, or unchanged")
        return plain_text(202, f"Publishing content #{content.pk}")


publish = PublishView.as_view()
