"""Rows the hub's tests start from."""

from __future__ import annotations

import datetime

from django.utils import timezone

from django_push.hub.models import HubSubscription


def subscribe(callback: str, topic: str, secret: str = "", lease: int = 3600) -> HubSubscription:
    """An active subscription of ``callback`` to ``topic``, as a verification leaves it."""
    return HubSubscription.objects.create(
        topic=topic,
        callback=callback,
        secret=secret,
        lease_seconds=lease,
        expires_at=timezone.now() + datetime.timedelta(seconds=lease),
    )
