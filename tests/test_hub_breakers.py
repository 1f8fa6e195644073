"""The circuit breaker per callback host (issue 18, part 5): callback servers on 127.0.0.1,
one of them failing; the same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from django_push import checks
from django_push.hub import fanout, health
from django_push.hub.breakers import HELD, HostBreaker, host_of
from django_push.hub.models import Content, Delivery, HubSubscription
from django_push.hub.tasks import fanout_task, publish_task
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import HUB, store, subscribe
from tests.servers import Reply, Server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]


@pytest.fixture
def breaker(settings):
    settings.PUSH_HUB_BREAKER = True
    settings.PUSH_HUB_BREAKER_MIN_DELIVERIES = 10
    settings.PUSH_HUB_BREAKER_FAILURE_RATIO = 0.8
    settings.PUSH_HUB_BREAKER_WINDOW = 600
    settings.PUSH_HUB_BREAKER_OPEN_SECONDS = 3600
    settings.PUSH_HUB_RETRY_BASE = 3600  # no retry falls due by itself during a test
    settings.PUSH_HUB_BATCH_SIZE = 10
    settings.PUSH_HUB_CONCURRENCY = 5


@pytest.fixture
def hosts():
    """Two healthy callback servers and one that answers 500."""
    with Server() as good, Server() as other, Server() as bad:
        bad.default = Reply(500)
        yield good, other, bad


def posts(server):
    return [r for r in server.requests if r.method == "POST"]


def bodies(server):
    by_path: dict[str, list[bytes]] = {}
    for r in posts(server):
        by_path.setdefault(r.path, []).append(r.body)
    return by_path


def publish(server, body):
    server.replies["/topic"] = Reply(200, body, {"Content-Type": "text/plain"})
    content_id = publish_task.call(server.url + "/topic", HUB)
    run_queued()
    return content_id


def all_due():
    """Let time pass: every pending delivery falls due, and the breakers' open periods end."""
    past = timezone.now() - datetime.timedelta(seconds=1)
    Delivery.objects.filter(status=Delivery.Status.PENDING).update(next_attempt_at=past)
    HostBreaker.objects.open().update(open_until=past)


def publish_to_three_hosts(server, hosts):
    """Publish to 90 subscribers, a third on each host; the healthy ones get all theirs.
    Returns how many POSTs the failing host got."""
    topic = server.url + "/topic"
    for n in range(90):
        subscribe(f"{hosts[n % 3].url}/cb/{n}", topic)
    publish(server, b"first")
    good, other, bad = hosts
    assert len(posts(good)) == len(posts(other)) == 30
    return len(posts(bad))


def test_a_failing_host_is_held_then_probed_and_nothing_is_lost(server, hosts, breaker):
    good, other, bad = hosts
    tried = publish_to_three_hosts(server, hosts)
    # The healthy hosts got everything; the failing one stopped getting anything once its
    # breaker opened, and its held deliveries wait without an attempt counted.
    assert 10 <= tried < 30
    row = HostBreaker.objects.get(host=host_of(bad.url))
    assert (row.state, row.opens) == ("open", 1)
    assert row.last_error == "HTTP 500"
    assert not HostBreaker.objects.filter(host=host_of(good.url)).exists()
    held = Delivery.objects.filter(attempts=0, status=Delivery.Status.PENDING)
    assert held.count() == 30 - tried
    # Until the breaker's open period ends (failures still in flight when it opened
    # started the period again: a few milliseconds later).
    assert all(row.opened_at < d.next_attempt_at <= row.open_until for d in held)
    assert (row.open_until - row.opened_at).total_seconds() < 3610
    assert all(d.last_error.startswith("held: the circuit breaker") for d in held)
    retries = Delivery.objects.filter(attempts=1)
    assert retries.count() == tried
    failing = HubSubscription.objects.filter(callback__startswith=bad.url)
    assert sorted(failing.values_list("failures", flat=True)) == [0] * (30 - tried) + [1] * tried

    # While it is open, the next publish sends the failing host nothing at all.
    publish(server, b"second")
    assert len(posts(good)) == len(posts(other)) == 60
    assert len(posts(bad)) == tried

    # The host recovers. Once the open period ends, one delivery probes it while the rest
    # of its batch (and the batch claimed meanwhile) wait for the answer; the probe is
    # answered, the breaker closes, and the next batches are sent.
    bad.default = Reply(204)
    all_due()
    fanout_task.call()
    assert tried + 1 < len(posts(bad)) < tried + 30
    row = HostBreaker.objects.get(host=host_of(bad.url))
    assert (row.state, row.opens) == ("closed", 1)
    all_due()
    fanout_task.call()
    run_queued()

    # Every subscriber of the failing host ends with the latest content, once; the older
    # one was superseded where it had not arrived. Nothing is pending or given up.
    latest = {path: got[-1] for path, got in bodies(bad).items()}
    assert latest == {f"/cb/{n}": b"second" for n in range(2, 90, 3)}
    assert all(got.count(b"second") == 1 for got in bodies(bad).values())
    assert not Delivery.objects.exclude(status=Delivery.Status.DELIVERED).exists()
    for server_ in (good, other):
        assert all(got == [b"first", b"second"] for got in bodies(server_).values())
    assert Content.objects.filter(finished_at__isnull=True).count() == 0


def test_a_fanout_holds_a_failing_host_before_its_breaker_is_counted(
    server, hosts, breaker, settings
):
    # One batch of 90: the breaker's row is counted only when the batch is recorded, after
    # every delivery in it was sent. The fan-out's own count stops sending to the failing
    # host once the rule holds (10 failures), within the batch.
    settings.PUSH_HUB_BATCH_SIZE = 90
    bad = hosts[2]
    tried = publish_to_three_hosts(server, hosts)
    assert 10 <= tried <= 10 + 5  # the minimum, and what was in flight (concurrency 5)
    row = HostBreaker.objects.get(host=host_of(bad.url))
    assert (row.state, row.opens, row.failed, row.sent) == ("open", 1, 0, 0)
    # The rest wait, unattempted, until the breaker the batch's record opened ends.
    held = Delivery.objects.filter(attempts=0, status=Delivery.Status.PENDING)
    assert held.count() == 30 - tried
    assert {d.next_attempt_at for d in held} == {row.open_until}
    assert all(d.last_error.startswith("held: the circuit breaker") for d in held)
    assert Delivery.objects.filter(attempts=1).count() == tried


def test_a_trip_its_breaker_does_not_confirm_is_sent_at_once(server, breaker, settings):
    # The host answered well so often this window that its breaker stays closed: what the
    # fan-out held for it is due at once, and sent by the same fan-out's retry path.
    settings.PUSH_HUB_BATCH_SIZE = 30
    topic = server.url + "/topic"
    server.default = Reply(500)
    HostBreaker.objects.create(host=host_of(server.url), sent=1000, failed=0)
    for n in range(30):
        subscribe(f"{server.url}/cb/{n}", topic)
    store(topic, b"x")
    fanout.fanout()

    assert sorted(r.path for r in posts(server)) == sorted(f"/cb/{n}" for n in range(30))
    assert HostBreaker.objects.get().state == "closed"
    rows = Delivery.objects.all()
    assert rows.count() == 30
    assert all((d.status, d.attempts, d.last_status) == ("pending", 1, 500) for d in rows)


def test_held_rows_owe_the_newest_content_in_place(server, breaker):
    # While a breaker stays open, each publish moves its host's held rows to the newer
    # content (one UPDATE) instead of deleting and making them again.
    topic = server.url + "/topic"
    until = timezone.now() + datetime.timedelta(seconds=600)
    HostBreaker.objects.create(host=host_of(server.url), open_until=until)
    for n in range(10):
        subscribe(f"{server.url}/cb/{n}", topic)
    first = store(topic, b"first")
    fanout.fanout()
    before = dict(Delivery.objects.values_list("subscription_id", "pk"))
    assert len(before) == 10
    assert set(Delivery.objects.values_list("content_id", flat=True)) == {first.pk}

    second = store(topic, b"second")
    fanout.fanout()
    assert dict(Delivery.objects.values_list("subscription_id", "pk")) == before
    assert set(Delivery.objects.values_list("content_id", flat=True)) == {second.pk}
    assert set(Delivery.objects.values_list("next_attempt_at", flat=True)) == {until}
    assert posts(server) == []

    # Two held rows of one subscription (recorded by two workers at once) become one.
    sub = HubSubscription.objects.order_by("pk").first()
    assert sub is not None
    Delivery.objects.create(
        content=first,
        subscription=sub,
        next_attempt_at=until,
        last_error=HELD.format(host=host_of(server.url)),
    )
    third = store(topic, b"third")
    fanout.fanout()
    assert Delivery.objects.filter(subscription=sub).count() == 1
    assert Delivery.objects.count() == 10
    assert set(Delivery.objects.values_list("content_id", flat=True)) == {third.pk}

    # A held row another worker claimed is left to it; the newer content gets a row of
    # its own, and the claimed one is superseded when its worker records it.
    claimed = Delivery.objects.get(subscription=sub)
    Delivery.objects.filter(pk=claimed.pk).update(
        claim="x" * 32, claimed_until=timezone.now() + datetime.timedelta(seconds=60)
    )
    fourth = store(topic, b"fourth")
    fanout.fanout()
    mine = Delivery.objects.filter(subscription=sub, content=fourth)
    assert mine.count() == 1 and mine.get().pk != claimed.pk


def test_a_held_retry_keeps_its_attempts_and_its_horizon(server, breaker):
    # The state is the database's: a breaker another worker (or a worker before a restart)
    # opened holds this worker's retries.
    topic = server.url + "/topic"
    sub = subscribe(server.url + "/cb", topic)
    content = store(topic, b"x")
    Content.objects.filter(pk=content.pk).update(cursor=content.upto, finished_at=timezone.now())
    now = timezone.now()
    until = now + datetime.timedelta(seconds=600)
    HostBreaker.objects.create(host=host_of(server.url), open_until=until)
    first_failure = now - datetime.timedelta(seconds=100)
    row = Delivery.objects.create(
        content=content,
        subscription=sub,
        attempts=2,
        first_failure_at=first_failure,
        next_attempt_at=now,
        last_status=503,
        last_error="HTTP 503",
    )
    assert fanout_task.call() == [1, 0]
    assert posts(server) == []
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("pending", 2, "HTTP 503")
    assert row.next_attempt_at == until
    assert (row.claim, row.claimed_until) == ("", None)
    # Moved on by as long as it is held: 100 s of its horizon spent, as before.
    spent = (row.next_attempt_at - row.first_failure_at).total_seconds()
    assert 99 <= spent <= 101


def test_a_failed_probe_opens_the_breaker_again(server, breaker):
    topic = server.url + "/topic"
    server.replies["/cb/0"] = Reply(503)
    for n in range(3):
        subscribe(f"{server.url}/cb/{n}", topic)
    HostBreaker.objects.create(host=host_of(server.url), open_until=timezone.now())
    store(topic, b"x")
    fanout_task.call()
    assert [r.path for r in posts(server)] == ["/cb/0"]  # one probe, the others wait
    row = HostBreaker.objects.get()
    assert row.state == "open"
    assert (row.open_until - timezone.now()).total_seconds() > 3000
    # The two others waited for the probe's answer (one delivery timeout), not counted as
    # attempts; they wait for the next probe now.
    waiting = Delivery.objects.filter(attempts=0, status=Delivery.Status.PENDING)
    assert waiting.count() == 2
    assert all(d.next_attempt_at < row.open_until for d in waiting)


def test_some_failures_below_the_ratio_or_the_minimum_leave_it_closed(server, breaker):
    topic = server.url + "/topic"
    for n in range(40):  # one in two fails: under the ratio of 0.8
        server.replies[f"/cb/{n}"] = Reply(500 if n % 2 else 204)
        subscribe(f"{server.url}/cb/{n}", topic)
    publish(server, b"x")
    assert len(posts(server)) == 40
    row = HostBreaker.objects.get()
    assert (row.state, row.sent, row.failed) == ("closed", 40, 20)

    with Server() as few:  # every one fails, but fewer than the minimum
        few.default = Reply(500)
        for n in range(9):
            subscribe(f"{few.url}/cb/{n}", few.url + "/topic")
        few.replies["/topic"] = Reply(200, b"y")
        publish_task.call(few.url + "/topic", HUB)
        assert len(posts(few)) == 9
        assert HostBreaker.objects.get(host=host_of(few.url)).state == "closed"


def test_switched_off_it_neither_counts_nor_holds(server, breaker, settings):
    settings.PUSH_HUB_BREAKER = False
    topic = server.url + "/topic"
    server.default = Reply(500)
    for n in range(30):
        subscribe(f"{server.url}/cb/{n}", topic)
    store(topic, b"x")
    assert fanout.fanout() == (30, 0)
    assert not HostBreaker.objects.exists()


def test_the_admin_lists_open_breakers_first_and_closes_them(admin_client, server, breaker):
    HostBreaker.objects.create(host="quiet.example:443")
    until = timezone.now() + datetime.timedelta(seconds=600)
    HostBreaker.objects.create(host="down.example:443", open_until=until, opens=1)
    url = reverse("admin:push_hub_hostbreaker_changelist")
    page = admin_client.get(url).content.decode()
    assert page.index("down.example:443") < page.index("quiet.example:443")
    assert ">open<" in page
    opened = admin_client.get(url, {"open": "yes"}).content.decode()
    assert "down.example:443" in opened and "quiet.example:443" not in opened
    assert health.gauges()["django_push_hub_open_breakers"] == 1

    pk = HostBreaker.objects.get(host="down.example:443").pk
    admin_client.post(url, {"action": "close", "_selected_action": [pk]})
    assert HostBreaker.objects.get(pk=pk).state == "closed"
    assert health.gauges()["django_push_hub_open_breakers"] == 0


def test_a_view_only_user_cannot_close_a_breaker(client, django_user_model, breaker):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_hostbreaker"))
    client.force_login(user)
    until = timezone.now() + datetime.timedelta(seconds=600)
    row = HostBreaker.objects.create(host="down.example:443", open_until=until)
    url = reverse("admin:push_hub_hostbreaker_changelist")
    client.post(url, {"action": "close", "_selected_action": [row.pk]})
    assert HostBreaker.objects.get(pk=row.pk).state == "open"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUSH_HUB_BREAKER", "yes"),
        ("PUSH_HUB_BREAKER_MIN_DELIVERIES", 0),
        ("PUSH_HUB_BREAKER_MIN_DELIVERIES", 2.5),
        ("PUSH_HUB_BREAKER_FAILURE_RATIO", 0),
        ("PUSH_HUB_BREAKER_FAILURE_RATIO", 1.5),
        ("PUSH_HUB_BREAKER_FAILURE_RATIO", "most"),
        ("PUSH_HUB_BREAKER_WINDOW", -1),
        ("PUSH_HUB_BREAKER_OPEN_SECONDS", None),
    ],
)
def test_e109_refuses_bad_breaker_settings(settings, name, value):
    setattr(settings, name, value)
    errors = [e for e in checks.check_hub_settings() if e.id == "django_push.E109"]
    assert len(errors) == 1
    assert name in errors[0].msg


def test_e109_accepts_the_defaults_and_is_registered(settings):
    assert not [e for e in checks.check_hub_settings() if e.id == "django_push.E109"]
    settings.PUSH_HUB_BREAKER_FAILURE_RATIO = 2
    with pytest.raises(Exception, match="E109"):
        call_command("check")


def test_host_of_counts_servers():
    assert host_of("https://Example.COM/cb") == "example.com:443"
    assert host_of("http://127.0.0.1:8001/a") == "127.0.0.1:8001"
    assert host_of("http://127.0.0.1:8002/a") != host_of("http://127.0.0.1:8001/a")
    assert host_of("http://[::1/") == ""


def test_the_count_starts_again_after_the_window(server, breaker):
    topic = server.url + "/topic"
    server.default = Reply(500)
    for n in range(2):
        subscribe(f"{server.url}/cb/{n}", topic)
    long_ago = timezone.now() - datetime.timedelta(seconds=1000)  # the window is 600 s
    HostBreaker.objects.create(
        host=host_of(server.url), window_started_at=long_ago, sent=9, failed=9
    )
    store(topic, b"x")
    assert fanout.fanout() == (2, 0)
    row = HostBreaker.objects.get()
    assert (row.state, row.sent, row.failed) == ("closed", 2, 2)  # not 11 of 11: open
    assert row.window_started_at > long_ago


def test_whole_table_statements_refuse_a_filtered_queryset():
    # They would not apply the filter: refused rather than run on every row.
    filtered = Delivery.objects.filter(pk=1)
    with pytest.raises(TypeError, match="whole table"):
        filtered.owe_held(1, [1], timezone.now(), "held")
    with pytest.raises(TypeError, match="whole table"):
        filtered.drop_obsolete_between(1, 2)
