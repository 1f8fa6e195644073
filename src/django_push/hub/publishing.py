"""Direct publishing ("fat ping"): the publisher hands the hub the content itself.

The hub takes it in as if it had fetched it (``hub.intake``: the size cap, the topic policy,
nothing stored without subscribers, an unchanged body skipped).
Over HTTP (``PublishView``), it is off unless ``PUSH_HUB_DIRECT_PUBLISH`` is on, and every
request carries an HMAC-SHA256 under ``PUSH_HUB_DIRECT_PUBLISH_SECRET`` of a timestamp, the
topic, the Content-Type and the body.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import time

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils.crypto import constant_time_compare

from django_push.conf import conf
from django_push.hub.intake import PublishRefused, accept
from django_push.hub.models import SIGNED_PUBLISH_MAX_AGE, Content, UsedPublishSignature
from django_push.urlnorm import decode_unreserved

__all__ = [
    "MAX_AGE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "PublishRefused",
    "apublish_content",
    "check_signature",
    "prune_used_signatures",
    "publish_content",
    "publish_headers",
    "signed_message",
]

logger = logging.getLogger("django_push.hub")

TIMESTAMP_HEADER = "X-Hub-Publish-Timestamp"
SIGNATURE_HEADER = "X-Hub-Publish-Signature"
# Seconds a signed request stays valid, either side of the hub's clock; a signature is
# accepted once (UsedPublishSignature), and never after a later one of its topic.
MAX_AGE = SIGNED_PUBLISH_MAX_AGE


def publish_content(
    topic: str, body: bytes, content_type: str, hub_url: str | None = None
) -> Content | None:
    """Store ``body`` as the new content of ``topic`` and fan it out to its active
    subscriptions, without fetching the topic; returns the stored content, or ``None`` when
    nobody subscribes or the body equals the content stored last.

    ``hub_url`` (default ``PUSH_HUB_URL``) is sent as ``rel="hub"``. Raises
    ``PublishRefused`` for a topic outside ``PUSH_HUB_TOPICS`` or a body over
    ``PUSH_HUB_MAX_CONTENT_SIZE``. The fan-out task is enqueued once the transaction commits.
    """
    from django_push.hub.tasks import start_fanout

    topic = decode_unreserved(topic)  # as subscriptions store it (H-4)
    hub_url = hub_url or conf.PUSH_HUB_URL
    if not hub_url:
        raise PublishRefused("this hub does not know its public URL (PUSH_HUB_URL)", 503)
    with transaction.atomic():
        content = accept(topic, body, content_type, hub_url)
        if content is not None and content.owed:
            transaction.on_commit(lambda: start_fanout(content.pk))
    return content


async def apublish_content(
    topic: str, body: bytes, content_type: str, hub_url: str | None = None
) -> Content | None:
    """Async twin of :func:`publish_content`."""
    return await sync_to_async(publish_content)(topic, body, content_type, hub_url)


def signed_message(timestamp: str, topic: str, content_type: str, body: bytes) -> bytes:
    """What the signature covers: a captured request cannot be replayed for another topic
    or type, nor after ``MAX_AGE``."""
    return f"{timestamp}\n{topic}\n{content_type}\n".encode() + body


def publish_headers(
    secret: str, topic: str, body: bytes, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers a publisher sends with a direct publish to the hub sharing ``secret``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(
        secret.encode(), signed_message(stamp, topic, content_type, body), hashlib.sha256
    ).hexdigest()
    return {
        "Content-Type": content_type,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: f"sha256={digest}",
    }


def check_signature(
    secret: str, timestamp: str, signature: str, topic: str, content_type: str, body: bytes
) -> None:
    """Raise ``PublishRefused`` unless the request is authentic, fresh and first seen: 400
    for a malformed timestamp, 403 for anything an attacker could try."""
    if not timestamp or not signature:
        raise PublishRefused(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required", 403)
    # Parsed once, strictly: int() would also take spaces, underscores and other scripts' digits.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 20):
        raise PublishRefused(f"{TIMESTAMP_HEADER} must be Unix seconds")
    stamp = int(timestamp)
    if abs(time.time() - stamp) > MAX_AGE:
        raise PublishRefused(
            f"{TIMESTAMP_HEADER} is more than {MAX_AGE} seconds away from the hub's clock", 403
        )
    expected = publish_headers(secret, topic, body, content_type, stamp)
    if not constant_time_compare(expected[SIGNATURE_HEADER], signature):
        raise PublishRefused("wrong signature", 403)
    spend(expected[SIGNATURE_HEADER].removeprefix("sha256="), topic, stamp)


def spend(signature: str, topic: str, stamp: int) -> None:
    """Record the signature in the database, which every process of the hub sees: a second
    use, or a request signed before the newest one of its topic, is refused."""
    topic = decode_unreserved(topic)
    signed_at = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
    try:
        with transaction.atomic():
            if UsedPublishSignature.objects.newer_than(topic, signed_at).exists():
                later = "a direct publish of this topic signed later was received"
                raise PublishRefused(later, 409)
            UsedPublishSignature.objects.create(
                signature=signature, topic=topic, signed_at=signed_at
            )
    except IntegrityError:
        raise PublishRefused("this request was received already", 403) from None


def prune_used_signatures(cutoff: datetime.datetime) -> int:
    """Forget the signatures of direct publishes signed before ``cutoff``; returns how many
    (the sweep does it: ``UsedPublishSignature.objects.prune``)."""
    return UsedPublishSignature.objects.prune(cutoff)
