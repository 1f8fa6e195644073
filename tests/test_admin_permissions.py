"""Admin actions need the permission they act with (issue 16, Medium 3).

A staff user with the view permission alone posts each action to its changelist, as the
admin's own form would: nothing changes, nothing is sent to the servers on 127.0.0.1.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_push.hub.models import Content, Delivery, HubSubscription
from django_push.hub.tasks import publish_task
from django_push.subscriber.models import Subscription
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import subscribe
from tests.servers import Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_queue")]


def staff(name, *codenames):
    user = User.objects.create_user(name, password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def act(client, model, action, pks):
    return client.post(
        reverse(f"admin:{model}_changelist"),
        {"action": action, "_selected_action": pks},
        follow=True,
    )


def posts(server, path):
    return [r for r in server.requests if r.method == "POST" and r.path.split("?")[0] == path]


@pytest.fixture
def failed(server, settings):
    """One delivered content and one delivery the hub gave up on."""
    settings.PUSH_HUB_RETRY_BASE = 10
    settings.PUSH_HUB_RETRY_HORIZON = 5  # the first failure gives up
    server.replies["/topic"] = Reply(200, b"news", {"Content-Type": "text/plain"})
    server.replies["/down"] = Reply(503)
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    subscribe(server.url + "/down", topic)
    publish_task.call(topic, "https://hub.example/hub/")
    run_queued()
    server.replies["/down"] = Reply(204)
    assert Delivery.objects.gave_up().count() == 1
    return server


HUB_ACTIONS = [
    ("push_hub_hubsubscription", "send_latest_again", "view_hubsubscription", "change"),
    ("push_hub_content", "send_again", "view_content", "change"),
    ("push_hub_delivery", "retry_now", "view_delivery", "change"),
    ("push_hub_delivery", "drop", "view_delivery", "delete"),
]


def pks(model):
    rows = {"hubsubscription": HubSubscription, "content": Content, "delivery": Delivery}
    return list(rows[model.removeprefix("push_hub_")].objects.values_list("pk", flat=True))


def state(server):
    return len(posts(server, "/cb")), len(posts(server, "/down")), Delivery.objects.count()


@pytest.mark.parametrize(("model", "action", "view", "needed"), HUB_ACTIONS)
def test_hub_actions_refuse_a_viewer(failed, model, action, view, needed):
    before = state(failed)
    client = staff("viewer", view)
    page = client.get(reverse(f"admin:{model}_changelist"))
    assert page.status_code == 200
    assert f'value="{action}"'.encode() not in page.content
    act(client, model, action, pks(model))
    run_queued()
    assert state(failed) == before
    assert Delivery.objects.gave_up().count() == 1

    # The permission the action acts with is enough.
    editor = staff("editor", view, f"{needed}_{model.removeprefix('push_hub_')}")
    assert act(editor, model, action, pks(model)).status_code == 200
    run_queued()
    assert state(failed) != before


@pytest.mark.parametrize("action", ["renew", "unsubscribe"])
def test_subscriber_actions_refuse_a_viewer(server, action):
    server.default = Reply(202)
    sub = Subscription.objects.create(
        topic="http://example.com/f",
        hub=server.url,
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(hours=2),
    )
    client = staff("viewer", "view_subscription")
    page = client.get(reverse("admin:subscriber_subscription_changelist"))
    assert page.status_code == 200
    assert f'value="{action}"'.encode() not in page.content
    act(client, "subscriber_subscription", action, [sub.pk])
    assert server.requests == []
    sub.refresh_from_db()
    assert sub.pending == ""

    allowed = staff("editor", "view_subscription", "change_subscription")
    act(allowed, "subscriber_subscription", action, [sub.pk])
    assert [r.form["hub.mode"] for r in server.requests] == [[action.replace("renew", "subscribe")]]
