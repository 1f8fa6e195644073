"""The admin edits nothing the hub decides: the subscriber's add page subscribes, its change
page is read-only, and the hub's own tables offer no "Add"."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from django_push.subscriber.models import Subscription

pytestmark = pytest.mark.django_db(transaction=True)


def test_add_page_asks_for_hub_and_topic_and_subscribes(admin_client, server):
    url = reverse("admin:subscriber_subscription_add")
    page = admin_client.get(url).content.decode()
    assert 'name="hub"' in page and 'name="topic"' in page
    assert 'name="verified"' not in page and 'name="lease_expiration"' not in page
    response = admin_client.post(
        url,
        {"hub": server.url + "/hub", "topic": "http://example.com/feed", "verified": "on"},
        follow=True,
    )
    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.verified is False  # a checkbox cannot verify it
    # The request reached the hub (the immediate task backend sends it at commit).
    [request] = server.requests
    assert request.form["hub.mode"] == ["subscribe"]
    assert request.form["hub.topic"] == ["http://example.com/feed"]
    assert "the hub&#x27;s verification marks the subscription verified" in (
        response.content.decode()
    )


def test_change_page_edits_nothing_the_hub_decides(admin_client):
    lease = timezone.now() + datetime.timedelta(days=1)
    subscription = Subscription.objects.create(
        hub="http://hub.example/", topic="http://example.com/feed", lease_expiration=lease
    )
    url = reverse("admin:subscriber_subscription_change", args=[subscription.pk])
    page = admin_client.get(url).content.decode()
    for field in ("hub", "topic", "verified", "lease_expiration"):
        assert f'name="{field}"' not in page
    admin_client.post(url, {"hub": "http://evil.example/", "verified": "on"})
    subscription.refresh_from_db()
    assert (subscription.hub, subscription.verified) == ("http://hub.example/", False)
    assert subscription.lease_expiration == lease


@pytest.mark.parametrize("model", ["intent", "ping", "content", "delivery"])
def test_hub_managed_tables_offer_no_add(admin_client, model):
    changelist = admin_client.get(reverse(f"admin:push_hub_{model}_changelist"))
    assert changelist.status_code == 200
    add_url = reverse(f"admin:push_hub_{model}_add")
    assert add_url not in changelist.content.decode()
    assert admin_client.get(add_url).status_code == 403
