"""Direct publishing ("fat ping"): give the hub the content itself, so it fetches nothing."""

from __future__ import annotations

import urllib.parse
import urllib.request

from django_push.hub.publishing import publish_content, publish_headers


def publish_from_the_hub_site(topic: str, body: bytes) -> None:
    """In the hub's own project: store and fan out, as if the hub had fetched it."""
    publish_content(topic, body, "application/atom+xml")


def publish_from_elsewhere(hub: str, secret: str, topic: str, body: bytes) -> int:
    """From another site sharing PUSH_HUB_DIRECT_PUBLISH_SECRET: a signed POST."""
    url = f"{hub}publish/?{urllib.parse.urlencode({'hub.topic': topic})}"
    headers = publish_headers(secret, topic, body, "application/atom+xml")
    # Your own hub's http(s) URL, never a user's.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        status: int = response.status
    return status  # 202: stored and fanned out; 200: unchanged or nobody subscribed
