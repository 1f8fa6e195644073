"""Admin, the renewal command and the renewal task."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from django_push.subscriber.models import Subscription
from django_push.subscriber.tasks import renew_leases_task, subscribe_task, unsubscribe_task
from tests.servers import Reply

pytestmark = pytest.mark.django_db


def expiring(hub, topic="http://example.com/f", hours=2):
    return Subscription.objects.create(
        topic=topic,
        hub=hub,
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(hours=hours),
    )


# Admin -------------------------------------------------------------------------------


def test_admin_changelist_filters_and_add_page(admin_client, server):
    expiring(server.url)
    Subscription.objects.create(
        topic="http://example.com/old",
        hub=server.url,
        verified=True,
        lease_expiration=timezone.now() - datetime.timedelta(days=1),
    )
    url = reverse("admin:subscriber_subscription_changelist")
    assert admin_client.get(url).status_code == 200
    expired = admin_client.get(url, {"expired": "true"})
    assert b"http://example.com/old" in expired.content
    assert b"http://example.com/f<" not in expired.content
    assert admin_client.get(url, {"expired": "false"}).status_code == 200
    # 1.1's add page crashed on callback_url of an unsaved row (PR #14).
    assert admin_client.get(reverse("admin:subscriber_subscription_add")).status_code == 200
    sub = Subscription.objects.first()
    change = admin_client.get(reverse("admin:subscriber_subscription_change", args=[sub.pk]))
    assert sub.callback_url.encode() in change.content


@pytest.mark.parametrize(
    ("action", "mode"), [("renew", "subscribe"), ("unsubscribe", "unsubscribe")]
)
def test_admin_actions_reach_the_hub(admin_client, server, action, mode):
    server.default = Reply(202)
    sub = expiring(server.url)
    response = admin_client.post(
        reverse("admin:subscriber_subscription_changelist"),
        {"action": action, "_selected_action": [sub.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert server.requests[0].form["hub.mode"] == [mode]
    assert b"1 subscription" in response.content


def test_admin_action_hub_error_is_a_message_not_a_500(admin_client, server):
    server.default = Reply(401, b"bad credentials")
    sub = expiring(server.url)
    response = admin_client.post(
        reverse("admin:subscriber_subscription_changelist"),
        {"action": "unsubscribe", "_selected_action": [sub.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"bad credentials" in response.content


# The renew_subscriptions command -----------------------------------------------------


def test_renew_command_renews_only_expiring_with_progress(server):
    server.default = Reply(202)
    soon = expiring(server.url, "http://example.com/soon", hours=2)
    expiring(server.url, "http://example.com/later", hours=100)
    out = io.StringIO()
    call_command("renew_subscriptions", stdout=out)
    text = out.getvalue()
    assert "1 subscription(s) to renew." in text
    assert f"[1/1] {soon.topic} via {server.url}: requested" in text
    assert [r.form["hub.topic"] for r in server.requests] == [[soon.topic]]


def test_renew_command_within_and_dry_run(server):
    expiring(server.url, "http://example.com/later", hours=100)
    out = io.StringIO()
    call_command("renew_subscriptions", "--within", str(200 * 3600), "--dry-run", stdout=out)
    assert "would renew" in out.getvalue()
    assert server.requests == []


def test_renew_command_failure_names_what_failed(server):
    server.default = Reply(500, b"hub is down")
    expiring(server.url)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 renewal"):
        call_command("renew_subscriptions", stdout=io.StringIO(), stderr=err)
    assert "hub is down" in err.getvalue()


# Tasks -------------------------------------------------------------------------------


def test_renew_task_reschedules_itself_with_a_deferring_backend(server, settings):
    server.default = Reply(202)
    expiring(server.url)
    settings.TASKS = {"default": {"BACKEND": _dummy_backend()}}
    from django_push.tasks import task_backends

    result = renew_leases_task.call()
    assert result == [1, 0]
    backend = task_backends["default"]
    [scheduled] = backend.results
    assert scheduled.task.name == renew_leases_task.name
    assert scheduled.task.run_after > timezone.now() + datetime.timedelta(minutes=59)


def test_renew_task_warns_when_backend_cannot_defer(server, caplog):
    server.default = Reply(500)
    expiring(server.url)
    assert renew_leases_task.call() == [0, 1]
    assert "cannot defer" in caplog.text


def test_tasks_tolerate_a_vanished_row():
    assert subscribe_task.call(987654) is None
    assert unsubscribe_task.call(987654) is None


def test_unsubscribe_task(server):
    server.default = Reply(202)
    sub = expiring(server.url)
    assert unsubscribe_task.call(sub.pk) == 202


def _dummy_backend():
    from importlib.util import find_spec

    if find_spec("django.tasks"):
        return "django.tasks.backends.dummy.DummyBackend"
    return "django_tasks.backends.dummy.DummyBackend"
