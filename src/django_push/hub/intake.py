"""The one entry that takes in a content, fetched or published directly, with every publish
rule written once: the topic policy, the size cap, nothing stored without subscribers, an
unchanged body skipped, and the plan of its fan-out.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import transaction

from django_push import metrics
from django_push.conf import conf
from django_push.http import Validators
from django_push.hub import feeddiff, signals
from django_push.hub.models import NO_SUBSCRIBER, Content, HubSubscription, Ping, TopicSequence
from django_push.hub.params import topic_allowed

logger = logging.getLogger("django_push.hub")


class PublishRefused(ValueError):
    """The content cannot be published; ``status`` is the HTTP answer that says so."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


def check(topic: str, body: bytes) -> None:
    """Raise ``PublishRefused`` for a topic outside ``PUSH_HUB_TOPICS`` or a body over
    ``PUSH_HUB_MAX_CONTENT_SIZE``."""
    if not topic_allowed(topic):
        raise PublishRefused(f"topic {topic} is not published through this hub")
    if len(body) > conf.PUSH_HUB_MAX_CONTENT_SIZE:
        raise PublishRefused(
            f"content is larger than PUSH_HUB_MAX_CONTENT_SIZE "
            f"({conf.PUSH_HUB_MAX_CONTENT_SIZE} bytes)",
            413,
        )


def accept(
    topic: str,
    body: bytes,
    content_type: str,
    hub_url: str,
    ping: Ping | None = None,
    validators: Validators | None = None,
) -> Content | None:
    """Store ``body`` as the new content of ``topic`` with the plan of its fan-out, and
    record the outcome on ``ping``; returns the content, or ``None`` when nobody subscribes
    or the body equals the content stored last. Raises ``PublishRefused`` (see :func:`check`).

    ``validators`` (a fetch's) are kept with the content, or replace those of the content
    stored last when the body is unchanged; a direct publish has none.

    The plan owes the content to the topic's active subscriptions up to the highest id at
    this moment: one aggregate, whatever their number. Fan-out tasks are the caller's.
    """
    check(topic, body)
    if topic not in HubSubscription.objects.followed([topic]):
        logger.info("Not storing content of %s: %s", topic, NO_SUBSCRIBER)
        if ping is not None:
            ping.skip()
        return None
    sha256 = hashlib.sha256(body).hexdigest()
    last = Content.objects.latest_of(topic)
    if last is not None and last.sha256 == sha256:
        logger.info("Content of %s unchanged: nothing delivered", topic)
        if validators is not None:
            keep_validators(last, validators)
        if ping is not None:
            ping.unchanged(last)
        metrics.count_publish("unchanged")
        return None
    diff = feeddiff.for_topic(topic, body, content_type)  # once per content, not per subscriber
    with transaction.atomic():
        content = Content(
            topic=topic,
            body=body,
            content_type=content_type,
            sha256=sha256,
            hub_url=hub_url,
            feed_diff=None if diff is None else diff.body,
            etag=validators.etag if validators else "",
            last_modified=validators.last_modified if validators else "",
        )
        # A feed diff with no new entry is stored (the next diff starts from it) but owed
        # to nobody.
        owed = content.plan(owe=diff is None or diff.new > 0)
        if owed and conf.PUSH_HUB_SEQUENCE_HEADER:  # a content owed to nobody takes no number
            content.sequence = TopicSequence.objects.bump(topic)
        content.save()
        if ping is not None:
            ping.fetched(content)
        signals.send_on_commit(
            signals.content_published, Content, {"content": content, "deliveries": owed}
        )
    metrics.count_publish("fetched")
    logger.info("Publishing %s to %s subscriber(s)", topic, owed)
    return content


def keep_validators(content: Content, validators: Validators) -> None:
    """Record the validators a fetch of ``content``'s unchanged body came with (a topic
    may send a new ``ETag`` for the same body); one UPDATE, only when they differ."""
    if (content.etag, content.last_modified) == (validators.etag, validators.last_modified):
        return
    content.etag, content.last_modified = validators.etag, validators.last_modified
    Content.objects.filter(pk=content.pk).update(
        etag=validators.etag, last_modified=validators.last_modified
    )
