"""The subscriber side of the demo: keep each notification so the page can show it."""

from __future__ import annotations

from typing import Any

from defusedxml import ElementTree

from demo.models import Notification
from django_push import signatures
from django_push.subscriber.models import Subscription

ATOM = "{http://www.w3.org/2005/Atom}"


def record_notification(
    sender: Subscription, notification: bytes, request: Any, links: Any, **kwargs: Any
) -> None:
    polled = bool(kwargs.get("polled"))  # reconciliation fetched it: no hub, no signature
    header = "" if polled else request.headers.get("X-Hub-Signature", "")
    # The callback view has refused any delivery whose number is not a positive integer.
    sequence = None if polled else request.headers.get("Push-Sequence")
    try:
        root = ElementTree.fromstring(notification)
        titles = [entry.findtext(f"{ATOM}title", "") for entry in root.findall(f"{ATOM}entry")]
    except ElementTree.ParseError:
        titles = []
    Notification.objects.create(
        topic=sender.topic,
        content_type=request.headers.get("Content-Type", ""),
        signature=header.split("=", 1)[0] if header else "",
        # The view only sends `updated` for valid signatures; checked again here to show it.
        signature_valid=signatures.verify(sender.secret, notification, header)
        if sender.secret and not polled
        else None,
        titles=titles[:5],
        size=len(notification),
        polled=polled,
        sequence=int(sequence) if sequence else None,
    )
