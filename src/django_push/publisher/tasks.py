"""Background work of the publisher."""

from __future__ import annotations

from django_push.tasks import task


@task()
def ping_hub_task(url: str, hub_url: str) -> int:
    """Ping ``hub_url`` for ``url``; a refused ping fails the task (and is logged)."""
    from django_push.publisher import ping_hub

    return ping_hub(url, hub_url).status
