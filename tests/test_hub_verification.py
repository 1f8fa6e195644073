"""Verification of intent and denial, as subscribers see them (H-6 .. H-12)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from django_push.hub.models import HubSubscription, Intent
from django_push.hub.verification import grant_lease, verify
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.servers import Reply

pytestmark = pytest.mark.django_db


def intent(server, mode="subscribe", **fields):
    defaults = {
        "topic": "http://testserver/feed",
        "callback": server.url + "/cb?id=7",
        "mode": mode,
    }
    return Intent.objects.create(**{**defaults, **fields})


def echo(received):
    return Reply(200, received.query["hub.challenge"][0].encode())


def test_verification_get_and_activation(server):
    server.replies["/cb"] = echo
    assert verify(intent(server, secret="abc", lease_seconds=7200))
    [get] = server.requests
    assert get.method == "GET"
    assert get.path.startswith("/cb?id=7&hub.mode=subscribe&")  # H-8: appended with &
    query = get.query
    assert query["hub.topic"] == ["http://testserver/feed"]
    assert query["hub.lease_seconds"] == ["7200"]
    challenge = query["hub.challenge"][0]
    assert len(challenge) >= 32
    assert set(challenge) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    )  # H-9
    sub = HubSubscription.objects.get()
    assert (sub.secret, sub.lease_seconds) == ("abc", 7200)
    assert Intent.objects.get().status == Intent.Status.VERIFIED


def test_challenges_are_single_use(server):
    server.replies["/cb"] = echo
    verify(intent(server))
    verify(intent(server))
    first, second = (r.query["hub.challenge"][0] for r in server.requests)
    assert first != second


def hub_request(client, capture, **data):
    """POST to the hub endpoint, then run the verification task (on a real queue with
    PUSH_TEST_TASKS=rq|db)."""
    with capture(execute=True):
        response = client.post("/hub/", {k.replace("_", ".", 1): v for k, v in data.items()})
    assert response.status_code == 202, response.content
    run_queued()


def echo_or_ok(received):
    """Echo verifications; answer denials (which carry no challenge) with 200."""
    return echo(received) if "hub.challenge" in received.query else Reply(200)


def modes(server):
    return [r.query["hub.mode"][0] for r in server.requests]


@pytest.mark.usefixtures("hub_queue")
def test_verified_resubscription_replaces_secret_and_lease(
    client, server, settings, django_capture_on_commit_callbacks
):
    # H-6: state is keyed by (topic, callback); a verified re-subscription of an active
    # subscription overrides its secret and lease, and may drop the secret.
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    server.replies["/cb"] = echo
    request = {"hub_topic": "http://testserver/feed", "hub_callback": server.url + "/cb?id=7"}
    subscribe = {"hub_mode": "subscribe", **request}
    capture = django_capture_on_commit_callbacks

    hub_request(client, capture, **subscribe, hub_secret="old", hub_lease_seconds="7200")
    first = HubSubscription.objects.get()
    assert (first.secret, first.lease_seconds) == ("old", 7200)
    assert first.is_active

    hub_request(client, capture, **subscribe, hub_secret="new", hub_lease_seconds="86400")
    assert [i.status for i in Intent.objects.order_by("pk")] == [Intent.Status.VERIFIED] * 2
    assert server.requests[-1].query["hub.lease_seconds"] == ["86400"]
    [renewed] = HubSubscription.objects.filter(
        topic="http://testserver/feed", callback=server.url + "/cb?id=7"
    )
    assert HubSubscription.objects.count() == 1
    assert renewed.pk == first.pk
    assert (renewed.secret, renewed.lease_seconds) == ("new", 86400)
    left = (renewed.expires_at - timezone.now()).total_seconds()
    assert 86400 - 60 < left <= 86400

    hub_request(client, capture, **subscribe)  # no hub.secret, no hub.lease_seconds
    [dropped] = HubSubscription.objects.all()
    assert dropped.pk == first.pk
    assert dropped.secret == ""  # the secret is dropped, so deliveries go unsigned
    assert dropped.lease_seconds == grant_lease(None)
    assert modes(server) == ["subscribe"] * 3


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(200, b"wrong"), "did not echo the challenge"),
        (Reply(404), "HTTP 404"),
        (Reply(302, headers={"Location": "/elsewhere"}), "HTTP 302"),
        (Reply(307, headers={"Location": "/elsewhere"}), "HTTP 307"),
    ],
)
def test_failed_verification_changes_nothing(server, reply, reason):
    # H-10, websub.rocks hub 103: a failed re-subscription keeps the old state.
    existing = HubSubscription.objects.create(
        topic="http://testserver/feed",
        callback=server.url + "/cb?id=7",
        secret="old",
        lease_seconds=60,
        expires_at=__import__("django.utils.timezone", fromlist=["now"]).now(),
    )
    server.replies["/cb"] = reply
    assert not verify(intent(server, secret="new"))
    existing.refresh_from_db()
    assert existing.secret == "old"
    assert reason in Intent.objects.get().reason


def test_unreachable_callback_fails(unused_tcp_port, server):
    item = Intent.objects.create(
        mode="subscribe",
        topic="http://testserver/f",
        callback=f"http://127.0.0.1:{unused_tcp_port}/",
    )
    assert not verify(item)
    assert "unreachable" in Intent.objects.get().reason


def test_unsubscribe_verification_removes_the_subscription(server):
    server.replies["/cb"] = echo
    verify(intent(server))
    assert HubSubscription.objects.count() == 1
    assert verify(intent(server, mode="unsubscribe"))
    assert "hub.lease_seconds" not in server.requests[-1].query
    assert not HubSubscription.objects.exists()


def test_topic_outside_allow_list_is_denied(server, settings):
    settings.PUSH_HUB_TOPICS = ["https://only.example/"]
    server.replies["/cb"] = Reply(200)
    assert not verify(intent(server))
    [get] = server.requests
    assert get.query["hub.mode"] == ["denied"]
    assert get.query["hub.topic"] == ["http://testserver/feed"]
    assert get.query["hub.reason"]
    assert Intent.objects.get().status == Intent.Status.DENIED
    assert not HubSubscription.objects.exists()


@pytest.mark.usefixtures("hub_queue")
def test_unsubscribe_outside_allow_list_is_verified_but_subscribe_is_refused(
    client, server, settings, django_capture_on_commit_callbacks
):
    # H-12: no validation for unsubscribe: a topic this hub no longer serves can still be
    # left (verified with hub.mode=unsubscribe, never denied); subscribing to it is refused.
    settings.PUSH_HUB_TOPICS = ["https://only.example/"]
    server.replies["/cb"] = echo_or_ok
    topic, callback = "https://gone.example/feed", server.url + "/cb"
    HubSubscription.objects.create(
        topic=topic,
        callback=callback,
        lease_seconds=3600,
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    capture = django_capture_on_commit_callbacks

    hub_request(client, capture, hub_mode="unsubscribe", hub_topic=topic, hub_callback=callback)
    assert modes(server) == ["unsubscribe"]
    assert server.requests[0].query["hub.topic"] == [topic]
    assert Intent.objects.get().status == Intent.Status.VERIFIED
    assert not HubSubscription.objects.exists()

    # Issue 9: refused at once with a 400, so no denial GET goes to the callback.
    with capture(execute=True):
        response = client.post(
            "/hub/", {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback}
        )
    run_queued()
    assert response.status_code == 400
    assert modes(server) == ["unsubscribe"]
    assert Intent.objects.count() == 1
    assert not HubSubscription.objects.exists()


def test_denial_to_unreachable_callback_is_logged(settings, unused_tcp_port, caplog):
    settings.PUSH_HUB_TOPICS = []
    item = Intent.objects.create(
        mode="subscribe", topic="http://t/f", callback=f"http://127.0.0.1:{unused_tcp_port}/"
    )
    assert not verify(item)
    assert "Could not send the denial" in caplog.text


def test_finished_intents_are_not_verified_twice(server):
    item = intent(server, status=Intent.Status.FAILED)
    assert not verify(item)
    assert server.requests == []


@pytest.mark.parametrize(
    ("asked", "granted"), [(None, 864000), (10, 3600), (7200, 7200), (10**9, 2592000)]
)
def test_lease_is_clamped(asked, granted):
    assert grant_lease(asked) == granted  # H-11: never perpetual


def test_verify_task_with_vanished_intent():
    from django_push.hub.tasks import verify_intent_task

    assert verify_intent_task.call(123456) is False
