"""The async twins (``asubscribe``, ``aunsubscribe``) from a running event loop."""

from __future__ import annotations

import asyncio

import pytest

from django_push.subscriber.models import Subscription
from tests.servers import Reply

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_connections"),
]


def test_asubscribe_and_aunsubscribe(server):
    server.default = Reply(202)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url)

    async def main():
        first = await sub.asubscribe(lease_seconds=60)
        second = await sub.aunsubscribe()
        return first.status, second.status

    assert asyncio.run(main()) == (202, 202)
    modes = [r.form["hub.mode"][0] for r in server.requests]
    assert modes == ["subscribe", "unsubscribe"]
    assert server.requests[0].form["hub.lease_seconds"] == ["60"]
    sub.refresh_from_db()
    assert sub.pending == "unsubscribe"


def test_manager_asubscribe_with_explicit_hub(server):
    server.default = Reply(202)
    sub = asyncio.run(Subscription.objects.asubscribe("http://example.com/f", hub=server.url))
    assert Subscription.objects.get().pk == sub.pk
    assert server.requests[0].form["hub.topic"] == ["http://example.com/f"]
