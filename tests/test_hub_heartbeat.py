"""The workers' heartbeat: recorded by a self-scheduling task, judged by the health view
(over real HTTP), shown by ``hub_stats --json`` and the metrics; and, with real worker
processes of the leg's engine, stopped and started again."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from importlib.util import find_spec

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_push.checks import check_hub_settings
from django_push.hub import heartbeat, tasks
from django_push.hub.heartbeat import Heartbeat
from tests.scrape import unlabelled

pytestmark = pytest.mark.django_db(transaction=True)

ENGINE = os.environ.get("PUSH_TEST_TASKS", "immediate")


def health(live_server):
    try:
        with urllib.request.urlopen(live_server.url + "/hub-health/") as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def beat_ago(seconds, backend="default"):
    Heartbeat.objects.update_or_create(
        backend=backend,
        defaults={"beat_at": timezone.now() - datetime.timedelta(seconds=seconds), "chain": "x"},
    )


def test_off_by_default_an_idle_hub_without_workers_is_healthy(live_server, settings):
    assert settings.PUSH_HEARTBEAT_INTERVAL is None
    assert health(live_server) == (200, {"status": "ok", "database": "ok", "workers": "ok"})


def test_no_beat_yet_is_503_and_names_the_command(live_server, settings):
    settings.PUSH_HEARTBEAT_INTERVAL = 60
    assert health(live_server) == (
        503,
        {"status": "unavailable", "database": "ok", "workers": "late", "reason": heartbeat.NEVER},
    )
    assert "push_heartbeat" in heartbeat.NEVER


def test_a_beat_older_than_the_bound_is_503(live_server, settings):
    settings.PUSH_HEARTBEAT_INTERVAL = 60
    settings.PUSH_HUB_HEALTH_MAX_AGE = 300
    beat_ago(301)
    status, body = health(live_server)
    assert (status, body["reason"]) == (503, heartbeat.LATE)
    beat_ago(290)
    assert health(live_server)[0] == 200
    # Another backend's beat says nothing about this one's workers.
    settings.PUSH_TASK_BACKEND = "queue"
    assert health(live_server)[1]["reason"] == heartbeat.NEVER


@pytest.fixture
def enqueued(monkeypatch):
    """What the heartbeat task enqueues, instead of enqueuing it: [(chain, run_after)]."""
    calls = []

    def enqueue(task, *args, run_after=None):
        assert task is tasks.heartbeat_task
        calls.append((*args, run_after))
        return True

    monkeypatch.setattr(tasks, "enqueue", enqueue)
    return calls


def test_one_chain_beats_at_a_time(settings, enqueued):
    settings.PUSH_HEARTBEAT_INTERVAL = 30
    before = timezone.now()
    assert tasks.heartbeat_task.call("") is True
    [(first, run_after)] = enqueued
    row = Heartbeat.objects.get()
    assert (row.backend, row.chain) == ("default", first)
    assert before <= row.beat_at <= run_after - datetime.timedelta(seconds=30)
    assert tasks.heartbeat_task.call(first) is True
    assert enqueued[-1][0] == first
    # Starting again (another worker, a second push_heartbeat) takes over: the old chain's
    # next task records its beat and stops.
    assert tasks.heartbeat_task.call("") is True
    second = enqueued[-1][0]
    assert second != first
    assert tasks.heartbeat_task.call(first) is False
    assert len(enqueued) == 3
    assert Heartbeat.objects.get().chain == second
    # Turned off: the next beat is recorded, and nothing more is enqueued.
    settings.PUSH_HEARTBEAT_INTERVAL = None
    assert tasks.heartbeat_task.call(second) is False
    assert len(enqueued) == 3


def test_backend_that_cannot_defer_beats_once_and_says_so(settings, caplog):
    immediate = settings.TASKS["default"] if ENGINE == "immediate" else None
    settings.TASKS = {**settings.TASKS, "now": immediate or {"BACKEND": IMMEDIATE}}
    settings.PUSH_TASK_BACKEND = "now"
    settings.PUSH_HEARTBEAT_INTERVAL = 30
    call_command("push_heartbeat", stdout=io.StringIO())  # the immediate backend runs it now
    assert Heartbeat.objects.get().beat_at > timezone.now() - datetime.timedelta(seconds=5)
    assert "cannot defer tasks: the heartbeat is not rescheduled" in caplog.text


IMMEDIATE = (
    "django.tasks.backends.immediate.ImmediateBackend"
    if find_spec("django.tasks")
    else "django_tasks.backends.immediate.ImmediateBackend"
)


def test_push_heartbeat_refuses_when_off(settings):
    with pytest.raises(CommandError, match="PUSH_HEARTBEAT_INTERVAL is not set"):
        call_command("push_heartbeat")


def test_hub_stats_json_shows_the_heartbeat(settings):
    settings.PUSH_HEARTBEAT_INTERVAL = 60
    settings.PUSH_HUB_HEALTH_MAX_AGE = 120
    out = io.StringIO()
    call_command("hub_stats", "--json", stdout=out)
    figures = json.loads(out.getvalue())["health"]
    assert figures["heartbeat_age_seconds"] is None
    assert figures["heartbeat_interval_seconds"] == 60
    assert (figures["status"], figures["reason"]) == ("unavailable", heartbeat.NEVER)
    beat_ago(30)
    out = io.StringIO()
    call_command("hub_stats", "--json", stdout=out)
    figures = json.loads(out.getvalue())["health"]
    assert 30 <= figures["heartbeat_age_seconds"] < 40
    assert figures["status"] == "ok"


def test_metrics_show_the_heartbeat_age(live_server, settings):
    settings.PUSH_METRICS = True
    assert heartbeat.METRIC not in unlabelled(live_server)  # never beat: no made-up age
    beat_ago(42)
    assert 42 <= unlabelled(live_server)[heartbeat.METRIC] < 52


@pytest.mark.parametrize("value", [0, -1, "60", True, 900, 1000])
def test_e108_heartbeat_interval(settings, value):
    settings.PUSH_HUB_HEALTH_MAX_AGE = 900
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = False  # no W101
    settings.PUSH_HEARTBEAT_INTERVAL = value
    assert [error.id for error in check_hub_settings()] == ["django_push.E108"]
    settings.PUSH_HEARTBEAT_INTERVAL = 60
    assert check_hub_settings() == []


# With real workers: the leg's engine (PUSH_TEST_TASKS=db, rq or celery, see .ci/run) ----

INTERVAL, MAX_AGE = 0.5, 3


def wait_for(live_server, status, within):
    deadline = time.monotonic() + within
    while True:
        answer = health(live_server)
        if answer[0] == status:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"health is still {answer} after {within} s, not {status}")
        time.sleep(0.1)


@pytest.mark.skipif(
    ENGINE == "immediate", reason="needs worker processes: PUSH_TEST_TASKS=db, rq or celery"
)
def test_stopped_workers_turn_health_503_within_the_bound(live_server, settings):
    from tests.conftest import start_workers

    settings.PUSH_HEARTBEAT_INTERVAL = INTERVAL
    settings.PUSH_HUB_HEALTH_MAX_AGE = MAX_AGE
    env = {"PUSH_TEST_HEARTBEAT": str(INTERVAL)}
    workers = start_workers(ENGINE, live_server, **env)
    try:
        tasks.start_heartbeat()
        wait_for(live_server, 200, within=30)  # the workers start, then beat
        beats = set()
        while len(beats) < 4:  # the chain goes on by itself
            beats.add(Heartbeat.objects.get().beat_at)
            time.sleep(0.1)
            assert health(live_server)[0] == 200
        stop(workers)
        last_beat = Heartbeat.objects.get().beat_at
        wait_for(live_server, 503, within=MAX_AGE + 1)
        assert health(live_server)[1]["reason"] == heartbeat.LATE
        assert Heartbeat.objects.get().beat_at == last_beat  # nobody beat meanwhile
        # Started again, they run the beat that was due meanwhile: no push_heartbeat needed.
        workers = start_workers(ENGINE, live_server, purge=False, **env)
        wait_for(live_server, 200, within=30)
    finally:
        stop(workers)


def stop(workers):
    """SIGTERM, and a second one to workers still there after 5 s (RQ and Celery then stop
    at once: an idle rqworker with a scheduler can take a minute to end a warm shutdown)."""
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + 5
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.terminate()
            worker.wait(timeout=30)


def test_the_heartbeat_costs_the_health_view_one_primary_key_lookup(
    settings, django_assert_num_queries
):
    from django_push.hub import health as health_module

    settings.PUSH_HEARTBEAT_INTERVAL = 60
    beat_ago(1)
    with django_assert_num_queries(5) as queries:
        assert health_module.check().ok
    assert "push_hub_heartbeat" in queries.captured_queries[-1]["sql"]
