"""Publisher: tell hubs that a topic changed.

``ping_hub()`` sends at once, like 1.1; ``publish_on_commit()`` defers the ping until the
current transaction commits and runs it as a background task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from asgiref.sync import async_to_sync
from django.db import transaction

from django_push import http, protocol
from django_push.exceptions import FetchError, PingError
from django_push.publisher.headers import hub_urls, or_push_hub

logger = logging.getLogger("django_push.publisher")

__all__ = ["PingError", "aping_hub", "ping_hub", "publish_on_commit"]


async def aping_hub(url: str, hub_url: str | None = None) -> http.Response:
    """Tell ``hub_url`` (default ``PUSH_HUB``) that ``url`` has new content.

    Sends ``hub.mode=publish`` with both ``hub.url`` and ``hub.topic`` (hubs differ on which
    they read). Returns the hub's response on any 2xx; raises :class:`PingError` otherwise,
    naming the hub, the status and the hub's reason.
    """
    hub = first_hub(hub_url)
    data = [
        (protocol.MODE, protocol.PUBLISH),
        (protocol.URL, url),
        (protocol.TOPIC, url),
    ]
    try:
        response = await http.post_form(hub, data)
    except FetchError as exc:
        logger.error("Ping of hub %s for %s failed: %s", hub, url, exc.reason)
        raise PingError(hub, None, exc.reason) from exc
    if not response.ok:
        reason = response.text.strip()[:500] or "(empty body)"
        logger.error("Hub %s refused the ping for %s: %s %s", hub, url, response.status, reason)
        raise PingError(hub, response.status, reason)
    logger.info("Pinged hub %s for %s (%s)", hub, url, response.status)
    return response


def hubs_to_ping(hub_url: str | Sequence[str] | None) -> list[str]:
    """The hubs a ping goes to: ``hub_url``'s, else ``PUSH_HUB``'s; ``ValueError`` if none."""
    hubs = hub_urls(or_push_hub(hub_url))
    if not hubs:
        raise ValueError("Specify hub_url or set the PUSH_HUB setting.")
    return hubs


def first_hub(hub_url: str | None) -> str:
    """The one hub :func:`aping_hub` pings (see :func:`hubs_to_ping`)."""
    return hubs_to_ping(hub_url)[0]


def ping_hub(url: str, hub_url: str | None = None) -> http.Response:
    """Synchronous :func:`aping_hub`, with 1.1's signature."""
    return async_to_sync(aping_hub)(url, hub_url)


def publish_on_commit(
    url: str, hub_url: str | Sequence[str] | None = None, *, using: str | None = None
) -> None:
    """Ping the hub from a background task once the current transaction commits.

    Call it from a model's ``publish()``: the hub never fetches a topic that does not yet
    show the new content, and a rolled-back transaction pings nobody. A topic that
    advertises several hubs passes them all: each gets its own task (WebSub 4: every
    advertised hub is to be notified), so one hub that is down delays no other.
    """
    hubs = hubs_to_ping(hub_url)

    def enqueue() -> None:
        from django_push.publisher.tasks import ping_hub_task
        from django_push.tasks import enqueue

        for hub in hubs:
            enqueue(ping_hub_task, url, hub)

    transaction.on_commit(enqueue, using=using)
