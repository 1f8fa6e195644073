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


# Moving 1.1 rows to capability URLs now --------------------------------------------------


def test_renew_command_legacy_moves_every_11_row(server):
    server.default = Reply(202)
    far = timezone.now() + datetime.timedelta(days=20)
    legacy = Subscription.objects.create(
        topic="http://example.com/legacy",
        hub=server.url,
        verified=True,
        lease_expiration=far,
        callback_token=None,
    )
    dormant = Subscription.objects.create(
        topic="http://example.com/dormant", hub=server.url, callback_token=None
    )
    Subscription.objects.create(  # already on a capability URL, lease far away: untouched
        topic="http://example.com/new", hub=server.url, verified=True, lease_expiration=far
    )
    old_url = legacy.callback_url
    call_command("renew_subscriptions", stdout=io.StringIO())
    assert server.requests == []  # a plain run leaves a far lease alone

    out = io.StringIO()
    call_command("renew_subscriptions", "--legacy", stdout=out)
    assert "1 subscription(s) to renew." in out.getvalue()
    assert "1 unverified 1.1 subscription(s) given a token." in out.getvalue()
    [request] = server.requests
    legacy.refresh_from_db()
    assert request.form["hub.callback"] == [legacy.callback_url]
    assert "?token=" in legacy.callback_url
    # The hub still has the old URL until the new one is verified; then it is unsubscribed.
    assert (legacy.legacy_callback, legacy.legacy_moved_at) == (old_url, None)
    dormant.refresh_from_db()
    assert dormant.callback_token
    assert not Subscription.objects.legacy().exists()


def test_renew_command_legacy_moves_unverified_rows_as_the_migration_leaves_them(
    server, live_domain
):
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    def get(url, **params):
        try:
            with urllib.request.urlopen(f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"):
                return 200
        except urllib.error.HTTPError as error:
            return error.code

    server.default = Reply(202)
    # Migration 0003 marks 1.1's unverified rows as awaiting a subscribe verification.
    pending = Subscription.objects.create(
        topic="http://example.com/pending", hub=server.url, pending="subscribe", callback_token=None
    )
    asked = Subscription.objects.create(  # unsubscribed by 2.0 before the move
        topic="http://example.com/asked", hub=server.url, pending="unsubscribe", callback_token=None
    )
    old_url = pending.callback_url
    out = io.StringIO()
    call_command("renew_subscriptions", "--legacy", stdout=out)
    assert "1 subscription(s) to renew." in out.getvalue()
    assert "1 unverified 1.1 subscription(s) given a token." in out.getvalue()
    assert not Subscription.objects.legacy().exists()
    pending.refresh_from_db()
    asked.refresh_from_db()
    assert asked.callback_token
    [request] = server.requests
    assert request.form["hub.callback"] == [pending.callback_url] != [old_url]

    verification = {"hub.mode": "subscribe", "hub.topic": pending.topic, "hub.challenge": "c"}
    assert get(old_url, **verification, **{"hub.lease_seconds": "60"}) == 404
    assert get(pending.callback_url, **verification, **{"hub.lease_seconds": "86400"}) == 200
    pending.refresh_from_db()
    assert pending.verified and pending.lease_seconds == 86400


def test_unsubscribing_a_row_in_the_middle_of_its_move_drops_both_urls(server):
    server.default = Reply(202)
    moving = Subscription.objects.create(
        topic="http://example.com/f",
        hub=server.url,
        verified=True,
        pending="subscribe",
        legacy_callback="http://testserver.com/subscriber/1/",
    )
    moving.unsubscribe()
    assert [r.form["hub.callback"] for r in server.requests] == [
        ["http://testserver.com/subscriber/1/"],
        [moving.callback_url],
    ]
    assert all(r.form["hub.mode"] == ["unsubscribe"] for r in server.requests)
    moving.refresh_from_db()
    assert moving.legacy_moved_at is not None  # its unsubscription is now expected


def test_legacy_url_refuses_everything_but_its_unsubscription(client):
    moving = Subscription.objects.create(
        topic="http://example.com/f",
        hub="http://hub.example/",
        verified=True,
        lease_expiration=timezone.now() + datetime.timedelta(days=1),
        pending="subscribe",
        legacy_callback="http://testserver.com/subscriber/1/",
    )
    url = reverse("subscriber_callback", args=[moving.pk])
    base = {"hub.topic": moving.topic, "hub.challenge": "c", "hub.lease_seconds": "60"}
    # Before the new URL is verified: content still arrives there, verifications do not.
    assert client.post(url, data=b"x", content_type="text/plain").status_code == 200
    for mode in ("subscribe", "unsubscribe", "denied"):
        assert client.get(url, {**base, "hub.mode": mode}).status_code == 404
    moving.refresh_from_db()
    assert moving.pending == "subscribe" and moving.verified and moving.denied_at is None
    # Once the unsubscription of the old URL is ours, its verification is answered.
    Subscription.objects.filter(pk=moving.pk).update(legacy_moved_at=timezone.now())
    response = client.get(url, {**base, "hub.mode": "unsubscribe"})
    assert (response.status_code, response.content) == (200, b"c")
    moving.refresh_from_db()
    assert moving.legacy_callback == "" and moving.verified  # the row stays
    assert client.get(url, {**base, "hub.mode": "unsubscribe"}).status_code == 404


def test_legacy_unsubscription_task_and_a_legacy_hubs_204(server):
    from django_push.subscriber.tasks import unsubscribe_legacy_task

    server.default = Reply(204)
    moved = Subscription.objects.create(
        topic="http://example.com/f",
        hub=server.url,
        verified=True,
        legacy_callback="http://testserver.com/subscriber/1/",
        legacy_moved_at=timezone.now(),
    )
    unsubscribe_legacy_task.call(moved.pk)
    moved.refresh_from_db()
    assert moved.legacy_callback == ""
    unsubscribe_legacy_task.call(987654)  # a vanished row is no error


@pytest.mark.parametrize("reply", [Reply(500, b"down"), None])
def test_legacy_unsubscription_failure_is_kept_for_the_next_renewal(
    server, reply, caplog, unused_tcp_port
):
    hub = server.url if reply else f"http://127.0.0.1:{unused_tcp_port}/"
    if reply:
        server.default = reply
    moved = Subscription.objects.create(
        topic="http://example.com/f",
        hub=hub,
        verified=True,
        legacy_callback="http://testserver.com/subscriber/1/",
        legacy_moved_at=timezone.now(),
    )
    moved.unsubscribe_legacy()
    moved.refresh_from_db()
    assert moved.legacy_callback
    assert "1.1 callback" in caplog.text


def test_a_failed_legacy_move_stays_listed_and_the_next_run_moves_it(server, live_domain, settings):
    """Issue 16, upgrade 2 and 3: the token used to be saved before the request, so a move
    the hub did not accept hid the row from ``legacy()`` and from every later run, and its
    1.1 URL kept accepting unsigned content. Over real HTTP: the hub is down (503, then a
    refused connection), then up; the command is run again each time, as a schedule would."""
    import socket
    import urllib.request

    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = 0  # give up at once: no back-off in a test
    far = timezone.now() + datetime.timedelta(days=20)
    verified = Subscription.objects.create(
        topic="http://example.com/verified",
        hub=server.url,
        verified=True,
        lease_expiration=far,
        callback_token=None,
    )
    pending = Subscription.objects.create(
        topic="http://example.com/pending", hub=server.url, pending="subscribe", callback_token=None
    )
    old_urls = {verified.pk: verified.callback_url, pending.pk: pending.callback_url}

    def legacy_rows():
        return sorted(Subscription.objects.legacy().values_list("pk", "pending", "legacy_callback"))

    def run_legacy():
        call_command("renew_subscriptions", "--legacy", stdout=io.StringIO(), stderr=io.StringIO())

    expected = sorted([(verified.pk, "", ""), (pending.pk, "subscribe", "")])
    server.default = Reply(503)  # restarting
    for _ in range(2):  # a scheduled run, then the next: nothing hidden, nothing doubled
        with pytest.raises(CommandError, match="2 of 2 renewal"):
            run_legacy()
        assert legacy_rows() == expected
    assert len(server.requests) == 4
    # The 1.1 URL of the verified row still takes the hub's content, as before the run.
    request = urllib.request.Request(old_urls[verified.pk], data=b"news", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    with socket.socket() as closed:  # a hub that is not listening at all
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    Subscription.objects.filter(pk=pending.pk).update(hub=down)
    with pytest.raises(CommandError):
        run_legacy()
    assert legacy_rows() == expected

    Subscription.objects.filter(pk=pending.pk).update(hub=server.url)
    server.default = Reply(202)  # up again
    out = io.StringIO()
    call_command("renew_subscriptions", "--legacy", stdout=out)
    assert "2 subscription(s) to renew." in out.getvalue()
    assert not Subscription.objects.legacy().exists()
    for row in Subscription.objects.all():
        assert "?token=" in row.callback_url
    callbacks = {r.form["hub.callback"][0] for r in server.requests[-2:]}
    assert callbacks == {row.callback_url for row in Subscription.objects.all()}
    verified.refresh_from_db()
    assert verified.legacy_callback == old_urls[verified.pk]  # unsubscribed once verified
    # Moved: another run sends nothing more.
    call_command("renew_subscriptions", "--legacy", stdout=(out := io.StringIO()))
    assert "0 subscription(s) to renew." in out.getvalue()
