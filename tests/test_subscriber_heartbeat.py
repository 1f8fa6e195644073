"""The subscriber's renewal beat: recorded by the periodic renewal and reconciliation tasks,
judged by the subscriber's health view (over real HTTP), shown by the metrics; and, with
real worker processes of the leg's engine, stopped and started again."""

from __future__ import annotations

import datetime
import json
import os
import time
import urllib.error
import urllib.request

import pytest
from django.utils import timezone

from django_push.conf import conf
from django_push.hub.heartbeat import Heartbeat
from django_push.subscriber import heartbeat, tasks
from django_push.subscriber.heartbeat import RenewalBeat
from django_push.tasks import enqueue
from tests.scrape import unlabelled

pytestmark = pytest.mark.django_db(transaction=True)

ENGINE = os.environ.get("PUSH_TEST_TASKS", "immediate")
OK = {"status": "ok", "database": "ok", "workers": "ok"}


def health(live_server):
    try:
        with urllib.request.urlopen(live_server.url + "/subscriber-health/") as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def beat_ago(seconds, backend="default"):
    RenewalBeat.objects.update_or_create(
        backend=backend,
        defaults={"beat_at": timezone.now() - datetime.timedelta(seconds=seconds)},
    )


def wait_for(live_server, status, within):
    deadline = time.monotonic() + within
    while True:
        answer = health(live_server)
        if answer[0] == status:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"health is still {answer} after {within} s, not {status}")
        time.sleep(0.1)


def test_off_by_default_a_subscriber_without_workers_is_healthy(live_server, settings):
    assert conf.PUSH_SUBSCRIBER_HEALTH_MAX_AGE is None
    assert health(live_server) == (200, OK)
    assert not RenewalBeat.objects.exists()


def test_no_beat_yet_is_503_and_names_the_task(live_server, settings):
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = 7200
    assert health(live_server) == (
        503,
        {"status": "unavailable", "database": "ok", "workers": "late", "reason": heartbeat.NEVER},
    )
    assert "renew_leases_task" in heartbeat.NEVER
    # The hub's heartbeat says nothing about the subscriber's renewal.
    Heartbeat.objects.create(backend="default", beat_at=timezone.now(), chain="x")
    assert health(live_server)[0] == 503


def test_a_beat_older_than_the_bound_is_503(live_server, settings):
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = 7200
    beat_ago(7201)
    status, body = health(live_server)
    assert (status, body["reason"]) == (503, heartbeat.LATE)
    beat_ago(7100)
    assert health(live_server) == (200, OK)
    # Another backend's beat says nothing about this one's workers.
    settings.PUSH_TASK_BACKEND = "queue"
    assert health(live_server)[1]["reason"] == heartbeat.NEVER


def test_health_is_get_and_head_only_and_never_cached(live_server):
    request = urllib.request.Request(live_server.url + "/subscriber-health/", b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 405
    with urllib.request.urlopen(live_server.url + "/subscriber-health/?x=1") as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "application/json"


def test_the_tasks_record_the_beat(settings):
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = 7200
    before = timezone.now()
    assert tasks.renew_leases_task.call(False) == [0, 0]
    assert RenewalBeat.objects.get(backend="default").beat_at >= before
    RenewalBeat.objects.all().delete()
    tasks.reconcile_task.call(False)
    assert RenewalBeat.objects.get(backend="default").beat_at >= before
    assert heartbeat.check().ok


def test_the_health_view_costs_one_primary_key_lookup(settings, django_assert_num_queries):
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = 7200
    beat_ago(1)
    with django_assert_num_queries(1) as queries:
        assert heartbeat.check().ok
    assert "subscriber_renewalbeat" in queries.captured_queries[0]["sql"]


def test_metrics_show_the_beat_age(live_server, settings):
    settings.PUSH_METRICS = True
    assert heartbeat.METRIC not in unlabelled(live_server)  # never beat: no made-up age
    beat_ago(42)
    assert 42 <= unlabelled(live_server)[heartbeat.METRIC] < 52


# Run by the task backend: at once (immediate), or by real workers (PUSH_TEST_TASKS) -----

INTERVAL, MAX_AGE = 1, 3


@pytest.mark.skipif(ENGINE != "immediate", reason="the immediate backend runs the task at once")
def test_health_turns_503_without_a_run_and_200_after_one(live_server, settings):
    """No worker ever runs the renewal: 503; a run (enqueued, and run at once by the immediate
    backend, which cannot schedule the next one) makes it 200 until the bound passes."""
    settings.PUSH_RENEW_INTERVAL = INTERVAL
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = MAX_AGE
    assert health(live_server)[1]["reason"] == heartbeat.NEVER
    enqueue(tasks.renew_leases_task, True)
    assert health(live_server) == (200, OK)
    ran = time.monotonic()
    answer = wait_for(live_server, 503, within=MAX_AGE + 1)
    assert time.monotonic() - ran > MAX_AGE - 0.5
    assert answer[1]["reason"] == heartbeat.LATE
    enqueue(tasks.renew_leases_task, True)
    assert health(live_server) == (200, OK)


@pytest.mark.skipif(
    ENGINE == "immediate", reason="needs worker processes: PUSH_TEST_TASKS=db, rq or celery"
)
def test_stopped_workers_turn_health_503_within_the_bound(live_server, settings):
    from tests.conftest import start_workers
    from tests.test_hub_heartbeat import stop

    settings.PUSH_RENEW_INTERVAL = INTERVAL
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = MAX_AGE
    env = {"PUSH_TEST_RENEW_INTERVAL": str(INTERVAL)}
    workers = start_workers(ENGINE, live_server, **env)
    try:
        assert health(live_server)[1]["reason"] == heartbeat.NEVER
        enqueue(tasks.renew_leases_task, True)
        wait_for(live_server, 200, within=30)  # the workers start, then run it
        beats = set()
        deadline = time.monotonic() + 30
        while len(beats) < 3:  # the renewal schedules itself
            beats.add(RenewalBeat.objects.get().beat_at)
            assert health(live_server)[0] == 200
            assert time.monotonic() < deadline, "the renewal did not run again"
            time.sleep(0.1)
        stop(workers)
        last_beat = RenewalBeat.objects.get().beat_at
        answer = wait_for(live_server, 503, within=MAX_AGE + 1)
        assert answer[1]["reason"] == heartbeat.LATE
        assert RenewalBeat.objects.get().beat_at == last_beat  # nobody beat meanwhile
        # Started again, they run the renewal that was due meanwhile.
        workers = start_workers(ENGINE, live_server, purge=False, **env)
        wait_for(live_server, 200, within=30)
    finally:
        stop(workers)
