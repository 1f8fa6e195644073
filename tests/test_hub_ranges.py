"""The fan-out by ranges (issue 15): a publish stores a plan, workers claim ranges of
subscription ids, only failures become rows. Deliveries go to real callback servers on
127.0.0.1; the same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import pytest
from django.db import OperationalError
from django.utils import timezone

from django_push.conf import conf
from django_push.hub import fanout, tasks, upkeep
from django_push.hub.models import Content, Delivery, HubSubscription, Span
from django_push.hub.tasks import fanout_task, publish_task, sweep
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import HUB, counts, store, subscribe
from tests.servers import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]


def posts(server, path=None):
    return [
        r
        for r in server.requests
        if r.method == "POST" and (path is None or r.path.split("?")[0] == path)
    ]


def publish(server, body=b"news"):
    server.replies["/topic"] = Reply(200, body, {"Content-Type": "text/plain"})
    content_id = publish_task.call(server.url + "/topic", HUB)
    run_queued()
    return content_id


def test_a_publish_stores_one_content_and_a_plan_not_a_row_per_subscriber(server):
    topic = server.url + "/topic"
    subs = [subscribe(f"{server.url}/cb/{n}", topic) for n in range(3)]
    ended = subscribe(server.url + "/ended", topic)
    HubSubscription.objects.filter(pk=ended.pk).update(expires_at=timezone.now())
    subscribe(server.url + "/other", server.url + "/other-topic")
    content = store(topic, b"x")
    assert (content.owed, content.upto, content.cursor) == (3, subs[-1].pk, 0)
    assert not Delivery.objects.exists()
    assert counts(content) == {"delivered": 0, "pending": 3, "failed": 0}


def test_two_claims_never_share_a_range_and_the_second_starts_at_once(server, settings):
    settings.PUSH_HUB_BATCH_SIZE = 2
    topic = server.url + "/topic"
    subs = [subscribe(f"{server.url}/cb/{n}", topic) for n in range(5)]
    content = store(topic, b"x")
    first = fanout.claim_range(2, content.pk)
    second = fanout.claim_range(2, content.pk)  # another worker, while the first is sending
    third = fanout.claim_range(2, content.pk)
    ids = [[job.subscription_id for job in batch.jobs] for batch in (first, second, third)]
    assert ids == [[s.pk for s in subs[:2]], [s.pk for s in subs[2:4]], [subs[4].pk]]
    assert (first.more, second.more, third.more) == (True, True, False)
    assert fanout.claim_range(2, content.pk).jobs == []


def test_a_subscription_made_after_the_publish_does_not_get_that_content(server):
    topic = server.url + "/topic"
    subscribe(server.url + "/early", topic)
    content = store(topic, b"before you came")
    subscribe(server.url + "/late", topic)
    assert fanout.fanout(content.pk) == (1, 1)
    assert [r.body for r in posts(server, "/early")] == [b"before you came"]
    assert posts(server, "/late") == []
    publish(server, b"after")
    assert [r.body for r in posts(server, "/late")] == [b"after"]


@pytest.mark.parametrize("how", ["unsubscribed", "expired", "gone"])
def test_a_subscription_that_ends_while_its_range_is_in_flight_gets_nothing_more(server, how):
    topic = server.url + "/topic"
    leaving = subscribe(server.url + "/leaving", topic)
    staying = subscribe(server.url + "/staying", topic)
    content = store(topic, b"x")
    batch = fanout.claim(10, content.pk)
    if how == "unsubscribed":
        HubSubscription.objects.filter(pk=leaving.pk).delete()
    elif how == "expired":
        HubSubscription.objects.filter(pk=leaving.pk).update(expires_at=timezone.now())
    by_sub = {job.subscription_id: job for job in batch.jobs}
    status = 410 if how == "gone" else 503
    fanout.record(
        batch, [fanout.Outcome(by_sub[leaving.pk], status), fanout.Outcome(by_sub[staying.pk], 204)]
    )
    if how == "expired":  # the sweeper removes it, and its failure row with it
        upkeep.expire_leases()
    assert not Delivery.objects.filter(subscription_id=leaving.pk).exists()
    assert not HubSubscription.objects.filter(pk=leaving.pk).exists()
    # Nothing more reaches it: no retry is owed, and the next publish does not include it.
    publish(server, b"next")
    sweep()
    run_queued()
    assert posts(server, "/leaving") == []
    assert [r.body for r in posts(server, "/staying")] == [b"next"]


def test_a_hanging_callback_holds_one_connection_not_the_range(server, settings):
    settings.PUSH_TIMEOUT = 1
    settings.PUSH_HUB_CONCURRENCY = 5
    settings.PUSH_HUB_RETRY_BASE = 3600
    topic = server.url + "/topic"
    server.replies["/hangs"] = Reply(204, delay=3)
    hanging = subscribe(server.url + "/hangs", topic)
    for n in range(20):
        subscribe(f"{server.url}/cb/{n}", topic)
    content_id = publish(server)
    assert len([r for r in posts(server) if r.path.startswith("/cb/")]) == 20
    content = Content.objects.get(pk=content_id)
    assert counts(content) == {"delivered": 20, "pending": 1, "failed": 0}
    retry = Delivery.objects.get()
    assert (retry.subscription_id, retry.attempts) == (hanging.pk, 1)
    assert retry.last_error


def test_a_range_whose_worker_died_is_sent_again_whole(server, settings):
    settings.PUSH_HUB_BATCH_SIZE = 3
    topic = server.url + "/topic"
    for n in range(5):
        subscribe(f"{server.url}/cb/{n}", topic)
    content = store(topic, b"x")
    died = fanout.claim(3, content.pk)  # claimed, then the worker died before sending
    assert len(died.jobs) == 3
    assert fanout.fanout(content.pk) == (2, 2)  # the rest goes on meanwhile
    Span.objects.filter(claim=died.token).update(claimed_until=timezone.now())
    sweep()
    run_queued()
    assert sorted(r.path for r in posts(server)) == sorted(f"/cb/{n}" for n in range(5))
    assert counts(Content.objects.get()) == {"delivered": 5, "pending": 0, "failed": 0}
    assert Content.objects.get().finished_at is not None


def test_a_lost_fanout_task_is_found_by_the_sweep(server, settings):
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    content = store(topic, b"x")  # stored, its task never ran
    assert sweep()[1] == 0  # not stale yet: a task may be on its way
    old = timezone.now() - datetime.timedelta(seconds=conf.PUSH_HUB_CLAIM_SECONDS + 1)
    Content.objects.filter(pk=content.pk).update(fetched_at=old)
    assert sweep()[1] == 1
    run_queued()
    assert [r.body for r in posts(server, "/cb")] == [b"x"]
    assert sweep()[1] == 0


def test_an_older_retry_is_dropped_once_a_newer_content_is_delivered(server, settings):
    settings.PUSH_HUB_RETRY_BASE = 0.01
    server.replies["/cb"] = Reply(503)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, b"v1")
    assert Delivery.objects.get().status == Delivery.Status.PENDING  # v1 waits for a retry
    server.replies["/cb"] = Reply(204)
    publish(server, b"v2")
    assert not Delivery.objects.exists()  # superseded: v1 is never sent after v2
    sweep()
    run_queued()
    assert [r.body for r in posts(server, "/cb")] == [b"v1", b"v2"]


def test_a_newer_content_takes_the_place_of_an_older_one_still_waiting(server, settings):
    settings.PUSH_HUB_RETRY_BASE = 0.01
    server.replies["/cb"] = Reply(503)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, b"v1")
    v2 = publish(server, b"v2")
    [waiting] = Delivery.objects.all()
    assert waiting.content_id == v2
    server.replies["/cb"] = Reply(204)
    Delivery.objects.update(next_attempt_at=timezone.now())
    sweep()
    run_queued()
    assert [r.body for r in posts(server, "/cb")] == [b"v1", b"v2", b"v2"]


def test_feed_diffs_supersede_nothing(server, settings):
    # Each diff holds other entries: an older one still waiting is still owed.
    settings.PUSH_HUB_RETRY_BASE = 3600
    server.replies["/cb"] = Reply(503)
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    first = store(sub.topic, b"one")
    Content.objects.filter(pk=first.pk).update(feed_diff=b"diff one")
    fanout.fanout(first.pk)
    second = store(sub.topic, b"two")
    Content.objects.filter(pk=second.pk).update(feed_diff=b"diff two")
    server.replies["/cb"] = Reply(204)
    fanout.fanout(second.pk)
    assert list(Delivery.objects.values_list("content_id", flat=True)) == [first.pk]


def test_pruning_keeps_what_is_still_owed(server, settings):
    settings.PUSH_HUB_RETENTION = 60
    settings.PUSH_HUB_RETRY_BASE = 3600
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    done = store(topic, b"done")
    fanout.fanout(done.pk)
    server.replies["/cb"] = Reply(503)
    retrying = store(topic, b"retry owed")
    fanout.fanout(retrying.pk)
    unsent = store(topic, b"open plan")
    Content.objects.update(fetched_at=timezone.now() - datetime.timedelta(seconds=120))
    assert Delivery.objects.get().content_id == retrying.pk
    assert upkeep.prune()[0] == 1
    assert set(Content.objects.values_list("pk", flat=True)) == {unsent.pk, retrying.pk}


def test_a_hub_database_of_one_row_per_delivery_is_delivered_through_the_retry_path(server):
    # What the migration leaves of today's pending rows: their content's fan-out marked
    # finished, the rows pending; the sweep hands them to the retry path.
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    old = timezone.now() - datetime.timedelta(hours=1)
    content = Content.objects.create(
        topic=sub.topic, body=b"from before", hub_url=HUB, finished_at=old
    )
    Delivery.objects.create(content=content, subscription=sub, next_attempt_at=old)
    assert sweep()[1] == 1
    run_queued()
    assert [r.body for r in posts(server, "/cb")] == [b"from before"]
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED


def test_a_big_publish_spreads_one_low_priority_task(server, settings):
    from django_tasks_db.models import DBTaskResult

    settings.PUSH_TASK_BACKEND = "queue"  # a real queue: the tasks wait there, unrun
    settings.PUSH_HUB_BATCH_SIZE = 2
    topic = server.url + "/topic"
    for n in range(5):
        subscribe(f"{server.url}/cb/{n}", topic)
    server.replies["/topic"] = Reply(200, b"x", {"Content-Type": "text/plain"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.db.transaction.on_commit", lambda f, *a, **k: f())
        content_id = publish_task.call(topic, HUB)
    # The fetching task delivered everything itself, and enqueued one task for another
    # worker when its first range left more, below the priority of other work.
    assert counts(Content.objects.get(pk=content_id))["delivered"] == 5
    queued = DBTaskResult.objects.filter(task_path__endswith="fanout_task")
    assert [row.priority for row in queued] == [tasks.SPREAD_PRIORITY]
    assert fanout_task.call(content_id) == [0, 0]  # what that task runs: nothing left
    assert queued.count() == 1  # and it enqueues no more


def test_a_locked_sqlite_database_is_retried_at_once(monkeypatch):
    monkeypatch.setattr(tasks, "LOCKED_BACKOFF", 0.001)
    calls = []

    @tasks.retry_locked
    def work():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("database is locked")
        return "done"

    assert work() == "done"
    assert len(calls) == 3

    @tasks.retry_locked
    def broken():
        raise OperationalError("no such table: x")

    with pytest.raises(OperationalError, match="no such table"):
        broken()


def test_a_publish_task_that_raises_counts_an_attempt_and_ends_failed(server, settings):
    # Issue 16, low 6: the ping used to stay pending and be run again after every claim.
    from django_push.hub import intake
    from django_push.hub.models import Ping

    settings.PUSH_HUB_RETRY_BASE = 0.01
    settings.PUSH_HUB_RETRY_HORIZON = 0.05
    subscribe(server.url + "/cb", server.url + "/topic")
    server.replies["/topic"] = Reply(200, b"x", {"Content-Type": "text/plain"})
    ping = Ping.objects.create(topic=server.url + "/topic", hub_url=HUB)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(intake, "accept", lambda *args, **kwargs: 1 / 0)
        for _ in range(10):
            ping.refresh_from_db()
            if ping.status != Ping.Status.PENDING:
                break
            Ping.objects.filter(pk=ping.pk).update(next_attempt_at=timezone.now())
            with pytest.raises(ZeroDivisionError):
                publish_task.call(ping.topic, ping.hub_url, ping.pk)
    ping.refresh_from_db()
    assert ping.status == Ping.Status.FAILED
    assert 1 <= ping.attempts <= 4  # bounded by the horizon
    assert "raised ZeroDivisionError" in ping.reason


def test_a_fanout_whose_end_was_not_recorded_is_finished_by_the_sweep(server):
    # Two workers deciding the last two ranges at once each saw the other's pending, and
    # nobody marked the content finished (found by bench/hub_deployed.py on PostgreSQL):
    # the content's row is locked now, and the sweep repairs what an older run left.
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    content = store(topic, b"x")
    fanout.fanout(content.pk)
    Content.objects.filter(pk=content.pk).update(finished_at=None)
    assert not upkeep.sweep().contents  # handed out whole: no task to enqueue for it
    Content.objects.filter(pk=content.pk).update(finished_at=None)
    sweep()
    assert Content.objects.get(pk=content.pk).finished_at is not None
    assert counts(content) == {"delivered": 1, "pending": 0, "failed": 0}


def test_a_successful_range_writes_no_subscription_row_and_its_last_delivery_is_read(
    server, django_assert_max_num_queries
):
    """A delivered range leaves the subscription rows as they were (at 1,000,000 subscribers
    the first publish used to rewrite every one); their last delivery comes from the
    ranges, and a subscription the range failed for has none."""
    topic = server.url + "/topic"
    ok = subscribe(server.url + "/ok", topic)
    failing = subscribe(server.url + "/failing", topic)
    server.replies["/failing"] = Reply(500)
    before = list(HubSubscription.objects.order_by("pk").values())
    content = store(topic, b"x")
    assert fanout.fanout(content.pk) == (2, 1)
    after = list(HubSubscription.objects.order_by("pk").values())
    assert after[0] == before[0]  # delivered: the row is untouched
    assert after[1] == {**before[1], "failures": 1}
    span = Span.objects.get(content=content)
    with django_assert_max_num_queries(2):
        assert ok.last_delivered_at() == span.finished_at
    assert failing.last_delivered_at() is None
    # A subscription made after that fan-out was not in it.
    late = subscribe(server.url + "/late", topic)
    assert late.last_delivered_at() is None
