"""Verification of intent and denial, as subscribers see them (H-6 .. H-12)."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_push import http
from django_push.conf import conf
from django_push.hub import verification
from django_push.hub.models import HubSubscription, Intent
from django_push.hub.tasks import verify_intent_task
from django_push.hub.verification import grant_lease, verify
from tests.hub_queue import MODE, hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
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
    assert verify_intent_task.call(123456) == 0


# Verification in batches (issue 10) ---------------------------------------------------------


def hold_tasks(settings):
    """Enqueue on a real queue that nothing runs here (the leg's own, else the database
    queue): what a busy worker leaves queued. Returns a count of the tasks waiting there."""
    if MODE == "rq":
        import django_rq

        queue = django_rq.get_queue("default")
        return lambda: queue.count
    from django_tasks_db.models import DBTaskResult

    settings.PUSH_TASK_BACKEND = "default" if MODE == "db" else "queue"
    return DBTaskResult.objects.filter(backend_name=settings.PUSH_TASK_BACKEND).count


@pytest.fixture
def sessions(monkeypatch):
    """The client sessions opened (the real ones, counted)."""
    opened = []

    def counting(**kwargs):
        session = real(**kwargs)
        opened.append(session)
        return session

    real = http.client_session
    monkeypatch.setattr(http, "client_session", counting)
    return opened


@pytest.mark.usefixtures("hub_queue")
def test_fifty_subscribe_requests_are_verified_by_one_task_over_one_session(
    client, server, settings, sessions, django_capture_on_commit_callbacks
):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    settings.PUSH_HUB_CONCURRENCY = 4  # the test server accepts 5 connections at a time
    server.replies["/cb"] = echo
    held = hold_tasks(settings)
    for n in range(50):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/hub/",
                {
                    "hub.mode": "subscribe",
                    "hub.topic": "http://testserver/feed",
                    "hub.callback": f"{server.url}/cb?n={n}",
                    "hub.secret": f"s{n}",
                },
            )
        assert response.status_code == 202
    assert held() == 1  # the first request's task covers the 49 that follow
    with CaptureQueriesContext(connection) as queries:
        verify_intent_task.call()
    assert len(sessions) == 1
    assert set(Intent.objects.values_list("reason", flat=True)) == {"subscribe verified"}
    assert len(server.requests) == 50
    assert Intent.objects.filter(status=Intent.Status.VERIFIED).count() == 50
    subscriptions = HubSubscription.objects.order_by("pk")
    assert [s.secret for s in subscriptions] == [f"s{n}" for n in range(50)]
    assert len(queries) <= 15, [q["sql"][:80] for q in queries.captured_queries]


@pytest.mark.usefixtures("hub_queue")
def test_one_task_is_queued_at_a_time_and_a_started_one_leaves_room_for_the_next(
    client, server, settings, django_capture_on_commit_callbacks
):
    # A task that has started may already have made its last claim: a request from then on
    # enqueues another one, and only one, however fast the worker keeps up.
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    server.replies["/cb"] = echo
    held = hold_tasks(settings)
    form = {"hub.mode": "subscribe", "hub.topic": "http://testserver/feed"}

    def subscribe(n):
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/hub/", {**form, "hub.callback": f"{server.url}/cb?n={n}"})

    subscribe(0)
    subscribe(1)
    assert held() == 1
    assert verify_intent_task.call() == 2  # the worker runs it: both verified
    subscribe(2)
    assert held() == 2
    verification.claim(10)  # a task running on another worker takes the new intent
    subscribe(3)  # the queued task has not started: it will take this one
    assert held() == 2
    assert verify_intent_task.call() == 1
    assert Intent.objects.filter(status=Intent.Status.PENDING).count() == 1  # claimed, held


def test_a_lost_task_holds_back_no_later_request_for_longer_than_a_claim(
    client, server, settings, django_capture_on_commit_callbacks
):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    held = hold_tasks(settings)
    form = {"hub.mode": "subscribe", "hub.topic": "http://testserver/feed"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/hub/", {**form, "hub.callback": f"{server.url}/cb?n=0"})
    old = timezone.now() - datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS + 1)
    Intent.objects.update(queued_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/hub/", {**form, "hub.callback": f"{server.url}/cb?n=1"})
    assert held() == 2


def test_mixed_outcomes_in_one_batch_are_each_recorded(server, settings, sessions):
    settings.PUSH_TIMEOUT = 0.5
    settings.PUSH_HUB_CONCURRENCY = 4  # the test server accepts 5 connections at a time
    settings.PUSH_HUB_TOPICS = ["http://testserver/"]
    topic = "http://testserver/feed"
    server.replies["/ok"] = echo
    server.replies["/wrong"] = Reply(200, b"not the challenge")
    server.replies["/missing"] = Reply(404)
    server.replies["/slow"] = Reply(200, b"late", delay=2)
    server.replies["/gone"] = Reply(410)
    server.replies["/leaving"] = echo
    server.replies["/denied"] = Reply(200)
    later = timezone.now() + datetime.timedelta(hours=1)
    for path in ["/wrong", "/leaving"]:  # subscribed already
        HubSubscription.objects.create(
            topic=topic,
            callback=server.url + path,
            secret="old",
            lease_seconds=3600,
            expires_at=later,
        )
    made = {
        path: Intent.objects.create(
            mode="subscribe", topic=topic, callback=server.url + path, secret="new"
        )
        for path in ["/ok", "/wrong", "/missing", "/slow", "/gone"]
    }
    made["/leaving"] = Intent.objects.create(
        mode="unsubscribe", topic=topic, callback=server.url + "/leaving"
    )
    made["/denied"] = Intent.objects.create(
        mode="subscribe", topic="http://elsewhere.example/feed", callback=server.url + "/denied"
    )
    assert verify_intent_task.call() == 7
    assert len(sessions) == 1
    outcomes = {
        path: Intent.objects.values_list("status", "reason").get(pk=row.pk)
        for path, row in made.items()
    }
    assert outcomes == {
        "/ok": ("verified", "subscribe verified"),
        "/wrong": ("failed", "callback did not echo the challenge"),
        "/missing": ("failed", "callback answered HTTP 404"),
        "/slow": ("failed", "callback unreachable: no answer within 0.5 seconds"),
        "/gone": ("failed", "callback answered HTTP 410"),
        "/leaving": ("verified", "unsubscribe verified"),
        "/denied": ("denied", "This hub does not serve that topic."),
    }
    assert dict(HubSubscription.objects.values_list("callback", "secret")) == {
        server.url + "/ok": "new",
        server.url + "/wrong": "old",  # a failed verification changes nothing (H-10)
    }
    denial = next(r for r in server.requests if r.path.startswith("/denied"))
    assert denial.query["hub.mode"] == ["denied"]


def test_the_last_of_two_verified_intents_for_one_pair_wins(server):
    # H-6, in one batch: state is keyed by (topic, callback) and the later request decides.
    server.replies["/cb"] = echo
    pair = {"topic": "http://testserver/feed", "callback": server.url + "/cb"}
    Intent.objects.create(mode="subscribe", secret="first", **pair)
    Intent.objects.create(mode="subscribe", secret="second", lease_seconds=7200, **pair)
    assert verify_intent_task.call() == 2
    [kept] = HubSubscription.objects.all()
    assert (kept.secret, kept.lease_seconds) == ("second", 7200)
    Intent.objects.create(mode="subscribe", secret="third", **pair)
    Intent.objects.create(mode="unsubscribe", **pair)
    assert verify_intent_task.call() == 2
    assert not HubSubscription.objects.exists()


def test_a_batch_whose_claim_was_taken_over_records_nothing(server, settings):
    # The claim expired mid-batch and another worker took the row: its outcome is the
    # other worker's to record.
    server.replies["/cb"] = echo
    row = intent(server)
    token, checks = verification.claim(10)
    Intent.objects.filter(pk=row.pk).update(claim="another-worker")
    verdicts = [
        verification.Verdict(check, Intent.Status.VERIFIED, "subscribe verified")
        for check in checks
    ]
    assert verification.record(token, verdicts) == 0
    assert Intent.objects.get().status == Intent.Status.PENDING
    assert not HubSubscription.objects.exists()
