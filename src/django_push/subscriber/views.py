"""The callback view: answers the hub's verification GETs and receives content POSTs.

Each request goes through three steps: find the subscription the URL names (its token
included), check the request against it, then apply it. A refusal at any step is an
:class:`Answer`; a wrong or missing token gets the same 404 as an unknown subscription, after
one indexed query and no write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.crypto import constant_time_compare
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_push import metrics, protocol, signatures
from django_push.conf import conf
from django_push.links import parse_links
from django_push.responses import plain_text
from django_push.subscriber import duplicates
from django_push.subscriber.capability import TOKEN_PARAM
from django_push.subscriber.models import Callback, Subscription
from django_push.subscriber.signals import updated
from django_push.urlnorm import same_url

logger = logging.getLogger("django_push.subscriber")

# WebSub H-9 challenges are short; refuse anything absurd rather than echo it.
MAX_CHALLENGE_LENGTH = 1024
# The largest lease the lease_seconds column holds (68 years): longer ones are stored as this
# before PUSH_SUBSCRIBER_LEASE_RANGE clamps them.
MAX_LEASE = 2**31 - 1
# Larger primary keys cannot be in the table (and SQLite cannot even look them up).
MAX_PK = 2**63 - 1

# The columns each kind of request reads, and nothing else.
CONTENT_FIELDS = (
    "hub",
    "topic",
    "verified",
    "lease_expiration",
    "secret",
    "callback_token",
    "legacy_callback",
    "legacy_moved_at",
    "last_notification_at",
    "reconcile_seconds",
    "content_hash",
    "last_sequence",
)
VERIFICATION_FIELDS = (
    "hub",
    "topic",
    "verified",
    "pending",
    "verify_token",
    "pending_secret",
    "callback_token",
    "legacy_callback",
    "legacy_moved_at",
)


class Answer(Exception):
    """Stop handling the request and answer this (a refusal, or a silent 2xx drop).

    Strangers can send refused requests at will, so Django's own warning for each 4xx
    ("Not Found: ...") is left out: it would let them fill the logs. The view logs what an
    operator needs itself.
    """

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(status, message)
        self.response = plain_text(status, message)
        self.response._has_been_logged = True  # type: ignore[attr-defined]  # django.utils.log


def unknown() -> Answer:
    logger.debug("Refused a request to an unknown callback or with a wrong token")
    return Answer(404, "Unknown subscription")


class BodyLimit(NamedTuple):
    """The body size that applies, and the setting it comes from, for the 413's reason."""

    size: int
    setting: str

    @classmethod
    def current(cls) -> BodyLimit:
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE: when that is the
        # lower one, it is the limit to name.
        django_limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if django_limit is not None and django_limit < conf.PUSH_MAX_BODY_SIZE:
            return cls(django_limit, "DATA_UPLOAD_MAX_MEMORY_SIZE")
        return cls(conf.PUSH_MAX_BODY_SIZE, "PUSH_MAX_BODY_SIZE")

    def too_big(self) -> Answer:
        return Answer(413, f"Body over {self.size} bytes ({self.setting})")


@dataclass(frozen=True)
class Verification:
    """The parameters of a verification (5.3) or denial (5.2) GET."""

    mode: str
    topic: str
    challenge: str
    params: QueryDict

    @classmethod
    def read(cls, params: QueryDict) -> Verification:
        missing = [name for name in (protocol.MODE, protocol.TOPIC) if not params.get(name)]
        if missing:
            raise Answer(400, f"Missing parameters: {', '.join(missing)}")
        mode = params.get(protocol.MODE, "")
        if mode not in (protocol.SUBSCRIBE, protocol.UNSUBSCRIBE, protocol.DENIED):
            raise Answer(404, "Unrecognized hub.mode parameter")
        challenge = params.get(protocol.CHALLENGE, "")
        if mode != protocol.DENIED:  # a denial has nothing to echo
            if not challenge:
                raise Answer(400, "Missing parameters: hub.challenge")
            if len(challenge) > MAX_CHALLENGE_LENGTH:
                raise Answer(400, "hub.challenge is too long")
            if not challenge.isprintable():  # S-13: echo text, never binary data
                raise Answer(400, "hub.challenge must be printable text")
        return cls(mode, params.get(protocol.TOPIC, ""), challenge, params)

    def lease(self) -> int:
        raw = self.params.get(protocol.LEASE_SECONDS)
        if raw is None:
            raise Answer(400, "Missing hub.lease_seconds parameter")
        seconds = protocol.parse_lease(raw, MAX_LEASE)
        if seconds is None:
            raise Answer(400, "hub.lease_seconds must be an integer")
        return seconds

    def reason(self) -> str:
        # NUL: PostgreSQL cannot store it, and no reason needs it.
        return self.params.get(protocol.REASON, "").replace("\x00", "")[:1000]


@method_decorator([csrf_exempt, login_not_required], name="dispatch")
class CallbackView(View):
    """Subclass and override :meth:`handle_subscription` to process content.

    In ``handle_subscription()``, ``self.request``, ``self.subscription`` and ``self.links``
    are set. Route it with the name ``subscriber_callback`` and an integer ``pk``; the
    capability token arrives in the query string, whatever the route.
    """

    http_method_names = ["get", "post"]
    subscription: Subscription
    links: list[dict[str, str]] | None = None

    # ``*args, **kwargs``: a site's own route may pass more URL arguments than ``pk``, as
    # 1.1 allowed; they are in ``self.args`` and ``self.kwargs``.
    def get(self, request: HttpRequest, pk: int | str, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            subscription, callback = self.find_subscription(request, pk, VERIFICATION_FIELDS)
            verification = Verification.read(request.GET)
            self.check_verification(subscription, callback, verification)
            return self.apply_verification(subscription, callback, verification)
        except Answer as answer:
            return answer.response

    def post(self, request: HttpRequest, pk: int | str, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            limit = BodyLimit.current()
            self.check_declared_length(request, limit)
            subscription, callback = self.find_content_target(request, pk)
            body = self.read_body(request, limit)
            self.check_content(request, subscription, callback, body)
            self.check_sequence(subscription, self.read_sequence(request))
            remembered = self.check_repeat(request, subscription, body)
            previous = subscription.content_hash
            digest = self.check_known_content(subscription, body)
        except Answer as answer:
            metrics.count_refusal(answer.response.status_code)
            return answer.response
        try:
            self.accept_content(request, subscription, body)
        except BaseException:
            remembered.forget()  # not processed: the hub's retry must not be dropped
            if digest:
                subscription.forget_content(digest, previous)
            raise
        metrics.count_notification("accepted")
        return plain_text(200)

    def handle_subscription(self) -> Any:
        """Hook for subclasses; called after the ``updated`` signal for valid content."""

    # Find the subscription ---------------------------------------------------------------

    def find_subscription(
        self, request: HttpRequest, pk: int | str, fields: tuple[str, ...]
    ) -> tuple[Subscription, Callback]:
        """The subscription the URL names, and which of its callbacks was reached; a wrong
        or missing token is as unknown as a wrong ``pk``."""
        try:
            key = int(pk)
        except (TypeError, ValueError):
            raise unknown() from None
        if not 0 < key <= MAX_PK:
            raise unknown()
        subscription = Subscription.objects.for_callback(key, fields)
        if subscription is None:
            raise unknown()
        callback = subscription.callback_for(request.GET.get(TOKEN_PARAM))
        if callback is None:
            raise unknown()
        return subscription, callback

    def find_content_target(
        self, request: HttpRequest, pk: int | str
    ) -> tuple[Subscription, Callback]:
        """:meth:`find_subscription` for content: a URL without a token that reaches no row
        gets 410, not 404. Only a hub still holding a 1.1 URL delivers there (a row merged
        away by migration 0003, or moved and since dropped), and 410 makes it stop."""
        try:
            return self.find_subscription(request, pk, CONTENT_FIELDS)
        except Answer:
            if TOKEN_PARAM in request.GET:
                raise
            logger.info("Answered 410 to content for the 1.1 callback URL of %s", pk)
            raise Answer(410, "No subscription at this URL") from None

    # Verifications of intent (5.3) and denials (5.2) ---------------------------------------

    def check_verification(
        self, subscription: Subscription, callback: Callback, verification: Verification
    ) -> None:
        """Refuse whatever does not answer a request of ours (S-12, C-4)."""
        mode = verification.mode
        if not same_url(verification.topic, subscription.topic):  # hubs decode escapes (H-4)
            raise Answer(404, "Mismatching topic URL")
        if callback == "legacy":
            # The 1.1 URL of a moved row: only the unsubscription we asked for is answered.
            if mode != protocol.UNSUBSCRIBE or subscription.legacy_moved_at is None:
                raise unknown()
            return
        if mode == protocol.DENIED:
            if subscription.callback_token is None:
                logger.warning(
                    "Ignored a denial of %s on a guessable 1.1 callback URL; "
                    "renew the subscription to move it to a capability URL",
                    subscription.topic,
                )
                raise unknown()
            return
        if mode == protocol.SUBSCRIBE and subscription.callback_token is None:
            # Anyone can name a guessable 1.1 URL at their own hub; every subscription we ask
            # for is made on a tokened URL (a 1.1 row gets its token before the request).
            logger.info("Refused a subscribe verification on the 1.1 URL of %s", subscription.pk)
            raise unknown()
        token = verification.params.get(protocol.VERIFY_TOKEN)
        if (
            subscription.verify_token
            and token is not None
            and not constant_time_compare(token, subscription.verify_token)
        ):
            raise Answer(404, "Mismatching hub.verify_token")
        if not subscription.expects(mode):
            # INFO, not WARNING: whoever knows the URL can send these, as often as they like.
            logger.info("Refused an unrequested %s verification for %s", mode, subscription.topic)
            raise Answer(404, f"No pending {mode} request for this topic")

    def apply_verification(
        self, subscription: Subscription, callback: Callback, verification: Verification
    ) -> HttpResponse:
        mode, topic = verification.mode, subscription.topic
        if mode == protocol.DENIED:
            reason = verification.reason()
            subscription.deny(reason)
            logger.warning(
                "Hub %s denied the subscription to %s: %s", subscription.hub, topic, reason
            )
            return plain_text(200)
        if callback == "legacy":
            if not subscription.confirm_legacy_unsubscription():
                raise unknown()
            logger.info("The 1.1 callback of %s is unsubscribed from %s", topic, subscription.hub)
        elif mode == protocol.SUBSCRIBE:
            if not subscription.confirm_subscription(verification.lease()):
                raise Answer(404, f"No pending {mode} request for this topic")
            logger.info(
                "Verified subscription to %s via %s (lease %s s)",
                topic,
                subscription.hub,
                subscription.lease_seconds,
            )
        else:
            if not subscription.confirm_unsubscription():
                raise Answer(404, f"No pending {mode} request for this topic")
            logger.info("Verified unsubscription from %s via %s", topic, subscription.hub)
        return plain_text(200, verification.challenge)

    # Content distribution (7) ---------------------------------------------------------------

    def check_declared_length(self, request: HttpRequest, limit: BodyLimit) -> None:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Answer(400, "Invalid Content-Length") from None
        if declared > limit.size:
            raise limit.too_big()

    def read_body(self, request: HttpRequest, limit: BodyLimit) -> bytes:
        try:
            body = request.body
        except RequestDataTooBig:
            raise limit.too_big() from None
        if len(body) > limit.size:
            raise limit.too_big()
        return body

    def check_content(
        self, request: HttpRequest, subscription: Subscription, callback: Callback, body: bytes
    ) -> None:
        if callback == "legacy" and subscription.legacy_moved_at is not None:
            # The hub also delivers this to the new URL until it drops the 1.1 one.
            logger.info("Dropped a duplicate on the 1.1 callback of %s", subscription.topic)
            metrics.count_notification("duplicate")
            raise Answer(200)
        if not subscription.is_active:
            logger.info("Dropped a notification for inactive subscription %s", subscription.pk)
            raise Answer(410, "Subscription is not active")
        if not subscription.secret:
            return
        header = request.headers.get(protocol.SIGNATURE_HEADER)
        if not header:
            logger.warning("Dropped a notification without signature for %s", subscription.topic)
            raise Answer(400, "Missing X-Hub-Signature")
        if not signatures.verify(subscription.secret, body, header):
            # S-20: drop it but answer 2xx, so probing teaches nothing.
            logger.warning("Dropped a notification with a bad signature for %s", subscription.topic)
            metrics.count_notification("bad_signature")
            raise Answer(200)

    def read_sequence(self, request: HttpRequest) -> int | None:
        """The delivery's ``Push-Sequence`` (a hub's number of the content), if any."""
        raw = request.headers.get(protocol.SEQUENCE_HEADER)
        if raw is None:
            return None
        # ASCII digits only: int() would take spaces, underscores and other scripts' digits.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18 and int(raw) > 0):
            raise Answer(400, f"{protocol.SEQUENCE_HEADER} must be a positive integer")
        return int(raw)

    def check_sequence(self, subscription: Subscription, sequence: int | None) -> None:
        """A number skipped since the last delivery is content the hub did not bring: count
        it and poll the topic now (``Subscription.poll_now``). Recorded before the checks for
        repeats, so a delivery dropped as known still counts as seen."""
        if sequence is None:
            return
        skipped = subscription.record_sequence(sequence)
        if not skipped:
            return
        metrics.count_gap()
        polling = subscription.poll_now()
        logger.warning(
            "Deliveries of %s skipped %s sequence number(s) before %s%s",
            subscription.topic,
            skipped,
            sequence,
            ": polling the topic" if polling else "",
        )

    def check_repeat(
        self, request: HttpRequest, subscription: Subscription, body: bytes
    ) -> duplicates.Remembered:
        """With ``PUSH_SUBSCRIBER_DUPLICATE_WINDOW``, drop a delivery already received for
        this subscription within the window; answered 2xx, so the hub stops retrying it.
        Checked after the signature, so only the hub's own deliveries are remembered."""
        header = request.headers.get(protocol.DELIVERY_ID_HEADER)
        remembered = duplicates.remember(subscription.pk, header, body)
        if remembered is None:
            _count_duplicate(subscription)
            raise Answer(200)
        return remembered

    def check_known_content(self, subscription: Subscription, body: bytes) -> str:
        """For a subscription reconciliation polls, record the body's hash, and drop a body
        already received (a poll found it first): ``updated`` is sent once per content.
        Returns the hash recorded, ``""`` when the subscription is not polled."""
        if subscription.poll_interval is None:
            return ""
        digest = duplicates.body_digest(body)
        # Known from the row already read: no write. New: one conditional UPDATE.
        if digest == subscription.content_hash or not subscription.receive_content(digest):
            _count_duplicate(subscription)
            raise Answer(200)
        return digest

    def accept_content(self, request: HttpRequest, subscription: Subscription, body: bytes) -> None:
        link_header = request.headers.get("Link")
        self.links = parse_links(link_header) if link_header else None
        self.subscription = subscription
        subscription.record_notification()
        updated.send(sender=subscription, notification=body, request=request, links=self.links)
        self.handle_subscription()


def _count_duplicate(subscription: Subscription) -> None:
    """One repeated delivery dropped."""
    logger.debug("Dropped a repeated delivery for %s", subscription.topic)
    metrics.count_notification("duplicate")


callback = CallbackView.as_view()
