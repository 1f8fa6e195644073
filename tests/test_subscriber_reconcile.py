"""Reconciliation (PUSH_SUBSCRIBER_RECONCILE): the subscriber polls its topics over real HTTP
(a topic server on 127.0.0.1) and sends ``updated(polled=True)`` for what push did not bring."""

from __future__ import annotations

import datetime
import hashlib
import logging
import urllib.error
import urllib.request

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_push import signatures
from django_push.subscriber import reconcile
from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated
from django_push.subscriber.tasks import reconcile_task
from tests.receiving import receiving
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)

ATOM = "application/atom+xml; charset=utf-8"


class Topic:
    """A topic on the test server: its body, with an ETag, answering 304 when unchanged."""

    def __init__(self, server, path="/topic", body=b"<feed>v1</feed>", content_type=ATOM):
        self.body, self.content_type = body, content_type
        self.url = server.url + path
        self.path = path
        self.server = server
        server.replies[path] = self.answer

    def answer(self, received):
        etag = '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'
        if received.headers.get("If-None-Match") == etag:
            return Reply(304, headers={"ETag": etag})
        return Reply(200, self.body, {"Content-Type": self.content_type, "ETag": etag})

    @property
    def gets(self):
        return [
            r
            for r in self.server.requests
            if r.path.split("?")[0] == self.path and r.method == "GET"
        ]


@pytest.fixture
def notifications():
    with receiving(
        lambda sender, notification, polled=False, **_: (sender.pk, notification, polled)
    ) as received:
        yield received


@pytest.fixture
def reconciling(settings):
    settings.PUSH_SUBSCRIBER_RECONCILE = 60
    return settings


def subscription(topic, secret="", **fields):
    defaults = {
        "hub": "http://hub.example/",
        "verified": True,
        "lease_expiration": timezone.now() + datetime.timedelta(hours=1),
    }
    return Subscription.objects.create(topic=topic, secret=secret, **{**defaults, **fields})


def post(url, body, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# Off by default ------------------------------------------------------------------------------


def test_off_by_default(server, notifications):
    topic = Topic(server)
    subscription(topic.url)
    assert not Subscription.objects.reconciled().exists()
    assert reconcile.reconcile_due().polled == 0
    assert reconcile.next_run() is None
    with pytest.raises(CommandError, match="PUSH_SUBSCRIBER_RECONCILE"):
        call_command("reconcile_subscriptions")
    assert topic.gets == [] and notifications == []


def test_a_subscription_of_its_own_is_polled_when_the_default_is_off(server, notifications):
    own = subscription(Topic(server).url, reconcile_seconds=30)
    assert reconcile.reconcile_due().counts == {"missed": 1}
    assert notifications == [(own.pk, b"<feed>v1</feed>", True)]


# Polling -----------------------------------------------------------------------------------


def test_a_poll_sends_new_content_once_and_asks_conditionally(reconciling, server, notifications):
    topic = Topic(server)
    row = subscription(topic.url)
    assert reconcile.reconcile_due().counts == {"missed": 1}
    assert notifications == [(row.pk, b"<feed>v1</feed>", True)]
    row.refresh_from_db()
    assert row.etag and row.content_hash == hashlib.sha256(b"<feed>v1</feed>").hexdigest()
    assert row.next_poll_at - row.last_poll_at == datetime.timedelta(seconds=60)

    assert reconcile.reconcile_due().polled == 0  # not due for a minute
    Subscription.objects.update(next_poll_at=timezone.now())
    assert reconcile.reconcile_due().counts == {"not_modified": 1}
    assert topic.gets[-1].headers["If-None-Match"] == row.etag

    topic.body = b"<feed>v2</feed>"
    Subscription.objects.update(next_poll_at=timezone.now())
    assert reconcile.reconcile_due().counts == {"missed": 1}
    assert [body for _, body, _ in notifications] == [b"<feed>v1</feed>", b"<feed>v2</feed>"]


def test_same_body_without_validators_is_not_sent_again(reconciling, server, notifications):
    server.replies["/plain"] = Reply(200, b"same", {"Content-Type": "text/plain"})
    subscription(server.url + "/plain")
    assert reconcile.reconcile_due().counts == {"missed": 1}
    Subscription.objects.update(next_poll_at=None)
    assert reconcile.reconcile_due().counts == {"unchanged": 1}
    assert len(notifications) == 1


def test_last_modified_is_sent_back(reconciling, server):
    stamp = "Sat, 05 Dec 2026 07:00:00 GMT"
    server.replies["/dated"] = Reply(200, b"x", {"Last-Modified": stamp})
    subscription(server.url + "/dated")
    reconcile.reconcile_due()
    Subscription.objects.update(next_poll_at=None)
    reconcile.reconcile_due()
    assert server.requests[-1].headers["If-Modified-Since"] == stamp


def test_links_and_request_as_for_a_push(reconciling, server):
    link = '<http://hub.example/>; rel="hub", <http://t.example/>; rel="self"'
    server.replies["/linked"] = Reply(200, b"x", {"Link": link, "Content-Type": "text/plain"})
    subscription(server.url + "/linked")
    seen = []

    def receiver(sender, links, request, polled, **kwargs):
        seen.append((links, request, polled))

    updated.connect(receiver)
    try:
        reconcile.reconcile_due()
    finally:
        updated.disconnect(receiver)
    [(links, request, polled)] = seen
    assert {(link["rel"], link["url"]) for link in links} == {
        ("hub", "http://hub.example/"),
        ("self", "http://t.example/"),
    }
    assert polled is True
    assert request.method == "GET" and request.path == "/linked"
    assert request.headers["Link"] == link and request.body == b"x"
    assert request.headers["Content-Type"] == "text/plain"
    assert request.headers["Content-Length"] == "1"


def test_intervals_of_their_own(reconciling, server):
    topic = Topic(server)
    default = subscription(topic.url)
    never = subscription(topic.url + "?never", reconcile_seconds=0)
    fast = subscription(topic.url + "?fast", reconcile_seconds=5)
    assert set(Subscription.objects.reconciled()) == {default, fast}
    reconcile.reconcile_due()
    assert len(topic.gets) == 2
    default.refresh_from_db()
    fast.refresh_from_db()
    assert fast.next_poll_at - fast.last_poll_at == datetime.timedelta(seconds=5)
    assert default.next_poll_at - default.last_poll_at == datetime.timedelta(seconds=60)
    never.refresh_from_db()
    assert never.last_poll_at is None


def test_inactive_subscriptions_are_not_polled(reconciling, server):
    topic = Topic(server)
    Subscription.objects.create(topic=topic.url, hub="http://hub.example/", verified=False)
    expired = subscription(topic.url + "?old")
    Subscription.objects.filter(pk=expired.pk).update(lease_expiration=timezone.now())
    assert reconcile.reconcile_due().polled == 0
    assert topic.gets == []


def test_a_claimed_batch_is_not_claimed_twice(reconciling, server, settings):
    settings.PUSH_SUBSCRIBER_RECONCILE_BATCH = 2
    rows = [subscription(f"{server.url}/t{n}") for n in range(3)]
    first = reconcile.claim(2)
    second = reconcile.claim(2)
    assert [s.pk for s in first] == [rows[0].pk, rows[1].pk]
    assert [s.pk for s in second] == [rows[2].pk]
    assert reconcile.claim(2) == []


def test_batches_until_none_is_due(reconciling, server, settings):
    settings.PUSH_SUBSCRIBER_RECONCILE_BATCH = 2
    topic = Topic(server)
    for n in range(5):
        subscription(f"{topic.url}?{n}")
    assert reconcile.reconcile_due().counts == {"missed": 5}
    assert reconcile.reconcile_due(max_batches=1).polled == 0


# Push and poll share one content hash --------------------------------------------------------


def test_a_body_received_by_push_is_not_sent_by_the_poll(
    reconciling, live_domain, server, notifications
):
    topic = Topic(server)
    row = subscription(topic.url)
    assert post(row.callback_url, b"<feed>v1</feed>") == 200
    assert reconcile.reconcile_due().counts == {"unchanged": 1}
    assert notifications == [(row.pk, b"<feed>v1</feed>", False)]


def test_a_push_of_a_body_the_poll_found_is_dropped(
    reconciling, live_domain, server, notifications, settings
):
    topic = Topic(server)
    row = subscription(topic.url, secret="s3cret")
    settings.PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP = True
    reconcile.reconcile_due()
    signed = {"X-Hub-Signature": signatures.sign("s3cret", b"<feed>v1</feed>", "sha256")}
    assert post(row.callback_url, b"<feed>v1</feed>", signed) == 200  # the hub, late
    assert notifications == [(row.pk, b"<feed>v1</feed>", True)]
    # New content by push still passes, and the poll then has nothing to send.
    topic.body = b"<feed>v2</feed>"
    signed = {"X-Hub-Signature": signatures.sign("s3cret", topic.body, "sha256")}
    assert post(row.callback_url, topic.body, signed) == 200
    Subscription.objects.update(next_poll_at=None)
    assert reconcile.reconcile_due().counts == {"unchanged": 1}
    assert [polled for _, _, polled in notifications] == [True, False]


def test_a_push_that_failed_is_not_recorded(reconciling, live_domain, server, notifications):
    row = subscription(Topic(server).url)

    def failing(sender, **kwargs):
        raise RuntimeError("database down")

    updated.connect(failing)
    try:
        assert post(row.callback_url, b"<feed>v1</feed>") == 500
    finally:
        updated.disconnect(failing)
    row.refresh_from_db()
    assert row.content_hash == ""
    assert reconcile.reconcile_due().counts == {"missed": 1}  # the poll brings it


def test_pushes_are_unaffected_when_reconciliation_is_off(live_domain, notifications):
    row = subscription("http://example.com/feed")
    for body in (b"A", b"A"):
        assert post(row.callback_url, body) == 200
    assert len(notifications) == 2
    row.refresh_from_db()
    assert row.content_hash == ""


def test_a_receiver_that_raises_gets_the_content_again(reconciling, server, caplog):
    topic = Topic(server)
    row = subscription(topic.url)
    calls = []

    def flaky(sender, notification, **kwargs):
        calls.append(notification)
        if len(calls) == 1:
            raise RuntimeError("down")

    updated.connect(flaky)
    try:
        with caplog.at_level(logging.ERROR, logger="django_push"):
            assert reconcile.reconcile_due().counts == {"failed": 1}
        assert "A receiver of updated raised" in caplog.text
        row.refresh_from_db()
        assert row.content_hash == "" and row.etag == ""
        Subscription.objects.update(next_poll_at=None)
        assert reconcile.reconcile_due().counts == {"missed": 1}
    finally:
        updated.disconnect(flaky)
    assert calls == [b"<feed>v1</feed>"] * 2


# Secrets: polled bodies are unsigned ----------------------------------------------------------


def test_a_subscription_with_a_secret_is_not_polled_over_http(reconciling, server, notifications):
    topic = Topic(server)
    row = subscription(topic.url, secret="s3cret")
    assert reconcile.reconcile_due().counts == {"untrusted": 1}
    assert topic.gets == [] and notifications == []
    row.refresh_from_db()
    assert "plain-HTTP" in row.last_poll_error


def test_the_site_may_trust_plain_http(reconciling, server, notifications):
    reconciling.PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP = True
    subscription(Topic(server).url, secret="s3cret")
    assert reconcile.reconcile_due().counts == {"missed": 1}
    assert len(notifications) == 1


def test_trust_follows_the_final_url():
    secret = Subscription(secret="s3cret")
    assert reconcile.trusted(secret, "https://example.com/feed")
    assert not reconcile.trusted(secret, "http://example.com/feed")
    assert reconcile.trusted(Subscription(secret=""), "http://example.com/feed")


# Catch-up on verification ----------------------------------------------------------------------


def test_catch_up_when_the_hub_verifies(reconciling, live_domain, server, notifications):
    topic = Topic(server)
    server.replies["/hub"] = Reply(202)
    row = Subscription.objects.subscribe(topic.url, hub=server.url + "/hub")
    row.refresh_from_db()
    assert row.pending == "subscribe"
    assert topic.gets == []
    query = {
        "hub.mode": "subscribe",
        "hub.topic": topic.url,
        "hub.challenge": "c",
        "hub.lease_seconds": "3600",
    }
    from urllib.parse import urlencode

    with urllib.request.urlopen(f"{row.callback_url}&{urlencode(query)}") as response:
        assert response.read() == b"c"
    assert notifications == [(row.pk, b"<feed>v1</feed>", True)]
    row.refresh_from_db()
    assert row.next_poll_at is not None


def test_catch_up_of_a_subscription_moved_to_another_hub(reconciling, server, notifications):
    topic = Topic(server)
    old = subscription(topic.url)
    assert reconcile.reconcile_due().counts == {"missed": 1}
    old.refresh_from_db()
    moved = subscription(topic.url, hub="http://other-hub.example/", verified=False)
    moved.pending = "subscribe"
    moved.save()
    assert moved.confirm_subscription(3600)  # the catch-up runs (immediate backend)
    moved.refresh_from_db()
    assert (moved.content_hash, moved.etag) == (old.content_hash, old.etag)
    assert topic.gets[-1].headers["If-None-Match"] == old.etag  # answered 304
    assert len(notifications) == 1


def test_no_catch_up_when_off(live_domain, server, notifications):
    topic = Topic(server)
    row = subscription(topic.url, pending="subscribe", verified=False)
    assert row.confirm_subscription(3600)
    assert topic.gets == [] and notifications == []


# The task and the command -------------------------------------------------------------------


def test_task_polls_and_says_it_cannot_reschedule_on_the_immediate_backend(
    reconciling, server, caplog
):
    subscription(Topic(server).url)
    with caplog.at_level(logging.WARNING, logger="django_push"):
        result = reconcile_task.call(True)
    assert result == {"missed": 1}
    assert "reconcile_subscriptions command from cron" in caplog.text


def test_task_reschedules_itself_for_the_next_due_poll(reconciling, server):
    from tests.test_subscriber_admin_commands import _dummy_backend

    subscription(Topic(server).url)
    reconciling.TASKS = {"default": {"BACKEND": _dummy_backend()}}
    from django_push.tasks import task_backends

    assert reconcile_task.call(True) == {"missed": 1}
    [scheduled] = task_backends["default"].results
    assert scheduled.task.name == reconcile_task.name
    row = Subscription.objects.get()
    assert scheduled.task.run_after == row.next_poll_at


def test_verification_queues_the_catch_up_on_a_real_queue(reconciling, server):
    from tests.test_subscriber_admin_commands import _dummy_backend

    topic = Topic(server)
    row = subscription(topic.url, pending="subscribe", verified=False)
    reconciling.TASKS = {"default": {"BACKEND": _dummy_backend()}}
    from django_push.subscriber.tasks import catch_up_task
    from django_push.tasks import task_backends

    assert row.confirm_subscription(3600)
    [queued] = task_backends["default"].results
    assert queued.task.name == catch_up_task.name and queued.args == [row.pk]
    assert topic.gets == []  # not in the verification's request
    assert catch_up_task.call(row.pk) == {"missed": 1}


def test_next_run(reconciling, server):
    now = timezone.now()
    row = subscription(Topic(server).url)
    assert reconcile.next_run(now) == now + datetime.timedelta(seconds=1)  # never polled
    Subscription.objects.filter(pk=row.pk).update(next_poll_at=now + datetime.timedelta(minutes=5))
    assert reconcile.next_run(now) == now + datetime.timedelta(minutes=5)
    Subscription.objects.filter(pk=row.pk).update(next_poll_at=now + datetime.timedelta(days=5))
    assert reconcile.next_run(now) == now + datetime.timedelta(seconds=reconcile.LONGEST_SLEEP)


def test_command(reconciling, server, capsys):
    subscription(Topic(server).url)
    call_command("reconcile_subscriptions")
    assert "1 polled (1 missed)" in capsys.readouterr().out
    call_command("reconcile_subscriptions")
    assert "0 polled" in capsys.readouterr().out
    call_command("reconcile_subscriptions", "--all")
    assert "1 polled (1 not_modified)" in capsys.readouterr().out


# Visible: admin and metrics ----------------------------------------------------------------


def test_admin_shows_last_push_and_last_poll_and_polls_now(admin_client, server):
    from django.urls import reverse

    server.replies["/error"] = Reply(502)
    good = subscription(Topic(server).url)
    subscription(server.url + "/error")
    url = reverse("admin:subscriber_subscription_changelist")
    page = admin_client.get(url).content.decode().lower()
    assert "last push" in page and "last poll" in page
    response = admin_client.post(
        url, {"action": "poll", "_selected_action": [s.pk for s in Subscription.objects.all()]}
    )
    assert response.status_code == 302
    page = admin_client.get(url).content.decode()
    assert "2 polled (1 failed, 1 missed)" in page
    assert "(HTTP 502)" in page
    change = admin_client.get(reverse("admin:subscriber_subscription_change", args=[good.pk]))
    assert b"poll the topic every" in change.content.lower()


def test_view_only_staff_cannot_poll(client, django_user_model, server):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    topic = Topic(server)
    row = subscription(topic.url)
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    client.force_login(user)
    url = reverse("admin:subscriber_subscription_changelist")
    assert b"Poll selected topics now" not in client.get(url).content
    client.post(url, {"action": "poll", "_selected_action": [row.pk]})
    assert topic.gets == []


def test_missed_content_is_counted_in_the_metrics(reconciling, live_server, server, settings):
    from django_push.metrics import collector
    from tests.test_metrics import delta, scrape

    settings.PUSH_METRICS = True
    collector.HubCollector.forget()
    topic = Topic(server)
    subscription(topic.url)
    subscription(server.url + "/missing")
    server.replies["/missing"] = Reply(404)
    before = scrape(live_server)
    reconcile.reconcile_due()
    Subscription.objects.update(next_poll_at=None)
    reconcile.reconcile_due()
    after = scrape(live_server)
    name = "django_push_subscriber_polls_total"
    assert delta(before, after, name, outcome="missed") == 1
    assert delta(before, after, name, outcome="not_modified") == 1
    assert delta(before, after, name, outcome="failed") == 2
    assert delta(before, after, name, outcome="unchanged") == 0


# Races and failures inside the package ----------------------------------------------------


def test_a_push_landing_during_the_poll_wins(reconciling, server, notifications, monkeypatch):
    from django_push.subscriber.duplicates import body_digest

    topic = Topic(server)
    subscription(topic.url)
    claim = reconcile.claim

    def claim_then_push(size, now=None):
        batch = claim(size, now)
        Subscription.objects.update(content_hash=body_digest(topic.body))  # the push's write
        return batch

    monkeypatch.setattr(reconcile, "claim", claim_then_push)
    assert reconcile.reconcile_due().counts == {"unchanged": 1}
    assert notifications == []


def test_a_bug_in_one_poll_does_not_stop_the_batch(reconciling, server, notifications, caplog):
    topic = Topic(server)
    subscription(topic.url)
    subscription(topic.url + "?buggy")
    fetch = reconcile.fetch

    async def buggy(row, session):
        if row.topic.endswith("?buggy"):
            raise ValueError("a bug")
        return await fetch(row, session)

    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.ERROR):
        patch.setattr(reconcile, "fetch", buggy)
        assert reconcile.reconcile_due().counts == {"missed": 1, "failed": 1}
    assert "Reconciliation of " + topic.url + "?buggy failed" in caplog.text
    assert len(notifications) == 1


def test_a_redirect_to_plain_http_is_untrusted_with_a_secret(reconciling, notifications):
    from multidict import CIMultiDict, CIMultiDictProxy

    from django_push import http

    row = subscription("https://example.test/feed", secret="s3cret")

    async def redirected(method, url, **kwargs):  # what the redirect loop returns
        headers = CIMultiDictProxy(CIMultiDict())
        return http.Response("http://example.test/feed", 200, headers, b"<feed/>")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(http, "request", redirected)
        assert reconcile.reconcile_due().counts == {"untrusted": 1}
    row.refresh_from_db()
    assert "redirected to plain HTTP" in row.last_poll_error
    assert notifications == [] and row.content_hash == ""
