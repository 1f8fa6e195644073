"""Rows the hub's tests start from."""

from __future__ import annotations

import datetime

from django.utils import timezone

from django_push.hub import health, intake
from django_push.hub.models import Content, HubSubscription

HUB = "https://hub.example/hub/"


def subscribe(callback: str, topic: str, secret: str = "", lease: int = 3600) -> HubSubscription:
    """An active subscription of ``callback`` to ``topic``, as a verification leaves it."""
    return HubSubscription.objects.create(
        topic=topic,
        callback=callback,
        secret=secret,
        lease_seconds=lease,
        expires_at=timezone.now() + datetime.timedelta(seconds=lease),
    )


def store(topic: str, body: bytes, content_type: str = "text/plain", hub_url: str = HUB) -> Content:
    """A content of ``topic`` taken in as a publish would (its plan included), not sent."""
    content = intake.accept(topic, body, content_type, hub_url)
    assert content is not None, "nobody subscribes, or the body is unchanged"
    return content


def counts(content: Content) -> dict[str, int]:
    """Deliveries of ``content`` by status, as the admin and ``hub_stats`` count them."""
    return health.delivery_counts(Content.objects.filter(pk=content.pk))
