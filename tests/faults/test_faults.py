"""Fault campaign: the hub loses no delivery when its workers are SIGKILLed (during
verification, the fetch and the fan-out), when PostgreSQL terminates a worker's connection
mid-batch, when Redis restarts under RQ, and when subscribers hang, reset, trickle or
answer 500 before they recover.

Everything goes through HTTP: subscriptions and publishes to the hub endpoint, verifications
and notifications to real callbacks on 127.0.0.1. One deployment per backend goes through
the faults one after the other (starting a hub costs more than a fault): after each, every
callback must have the new content (0 lost) and duplicates (at-least-once) must stay under
a stated bound. The figures are printed and appended to ``test-output/faults.jsonl``.
"""

from __future__ import annotations

import json
import time
from collections import deque

import pytest

from tests.faults.hub import ROOT, Database, Hub
from tests.faults.subscribers import Subscribers

SUBSCRIBERS = 40
BATCH = 5  # PUSH_HUB_BATCH_SIZE in tests/faults/settings.py
WORKERS = 2
# Each worker's fan-out keeps two batches in flight (one sending, one being recorded): what
# dead workers, or workers that lost their database connection, can send again.
IN_FLIGHT = WORKERS * 2 * BATCH
SQLITE_DB, POSTGRES_RQ = ("sqlite", "db"), ("postgres", "rq")
BACKENDS = [pytest.param(SQLITE_DB, id="sqlite-db"), pytest.param(POSTGRES_RQ, id="postgres-rq")]


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    made: dict[str, Database] = {}
    yield lambda kind: made.setdefault(kind, Database(kind, tmp_path_factory.mktemp(kind)))
    for database in made.values():
        database.close()


@pytest.fixture
def deploy(databases, tmp_path):
    """``deploy((database, tasks), subscribers)`` starts a hub serving their topic."""
    hubs: list[Hub] = []

    def start(backend, subscribers, workers=WORKERS):
        kind, tasks = backend
        topics = f"{subscribers.url}/"
        hubs.append(Hub(databases(kind), tasks, topics, tmp_path, workers).start())
        return hubs[-1]

    yield start
    for hub in hubs:
        hub.close()


@pytest.fixture
def subscribers():
    with Subscribers(SUBSCRIBERS) as subs:
        yield subs


def all_delivered(hub, subs, rounds, timeout=90):
    """Every callback acknowledged this round's content, and the hub recorded all of it."""

    def done():
        return subs.lost() == 0 and hub.deliveries() == {"delivered": subs.count * rounds}

    hub.wait(done, timeout, "every delivery")


def report(scenario, backend, hub, subs, bound, started, **extra):
    figures = {
        "scenario": scenario,
        "backend": "-".join(backend),
        "subscribers": subs.count,
        "lost": subs.lost(),
        "duplicates": subs.duplicates(),
        "bound": bound,
        "worker_restarts": hub.restarts,
        "seconds": round(time.monotonic() - started, 1),
        **extra,
    }
    print("fault:", json.dumps(figures))
    output = ROOT / "test-output"
    output.mkdir(exist_ok=True)
    with (output / "faults.jsonl").open("a") as log:
        log.write(json.dumps(figures) + "\n")
    assert figures["lost"] == 0, figures
    assert figures["duplicates"] <= bound, figures
    subs.next_round()
    hub.restarts = 0
    return time.monotonic()


def publish_and_wait_for_fanout(hub, subs):
    subs.delay = 0.5  # a fan-out slow enough to be caught in the middle
    assert hub.publish(subs.topic) == 202
    hub.wait(lambda: subs.acknowledged.total() >= BATCH, 60, "the fan-out to start")


# Each kind of misbehaviour for a fifth of the callbacks, then they recover; the last fifth
# behaves all along.
FAULTS = [["hang"], ["reset"], ["trickle"], ["500", "500"], []]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fault_campaign(deploy, subscribers, backend):
    subs, rounds = subscribers, 0
    started = time.monotonic()

    # SIGKILL during verification: the held verification's intent is swept to a new worker.
    subs.hold("verify")
    hub = deploy(backend, subs)
    for n in range(subs.count):
        assert hub.subscribe(subs.topic, subs.callback(n)) == 202
    subs.wait_held()
    hub.kill_workers()
    subs.released.set()
    hub.wait(lambda: hub.count("hubsubscription") == subs.count, 90, "every verification")
    assert hub.publish(subs.topic) == 202
    all_delivered(hub, subs, rounds := rounds + 1)
    started = report("sigkill-verification", backend, hub, subs, 0, started)

    # SIGKILL during the fetch: the publish request, claimed and unfinished, is swept.
    subs.hold("fetch")
    assert hub.publish(subs.topic) == 202
    subs.wait_held()
    hub.kill_workers()
    subs.released.set()
    all_delivered(hub, subs, rounds := rounds + 1)
    assert hub.count("ping", "status = 'fetched'") == rounds
    started = report("sigkill-fetch", backend, hub, subs, 0, started)

    # SIGKILL during the fan-out: claimed deliveries are swept, the ones in flight repeat.
    publish_and_wait_for_fanout(hub, subs)
    hub.kill_workers()
    at_kill = subs.acknowledged.total()
    assert at_kill < subs.count, "the fan-out ended before the kill"
    all_delivered(hub, subs, rounds := rounds + 1)
    started = report("sigkill-fanout", backend, hub, subs, IN_FLIGHT, started, at_kill=at_kill)

    if backend == POSTGRES_RQ:
        # PostgreSQL ends the workers' connections in the middle of a batch.
        publish_and_wait_for_fanout(hub, subs)
        terminated = hub.terminate_worker_connections()
        assert terminated >= 1
        all_delivered(hub, subs, rounds := rounds + 1)
        started = report(
            "pg-terminate-backend", backend, hub, subs, IN_FLIGHT, started, terminated=terminated
        )

        # Redis restarts without persistence: every queued and scheduled job is gone.
        publish_and_wait_for_fanout(hub, subs)
        hub.redis.stop()
        time.sleep(1)
        hub.redis.start()
        all_delivered(hub, subs, rounds := rounds + 1)
        started = report("redis-restart", backend, hub, subs, IN_FLIGHT, started)

    # Subscribers hang, reset, trickle or answer 500, then recover. Each faulty answer is a
    # notification read and not acknowledged: one duplicate each, and no more.
    for n in range(subs.count):
        subs.faults[n] = deque(FAULTS[n % len(FAULTS)])
    injected = sum(len(FAULTS[n % len(FAULTS)]) for n in range(subs.count))
    assert hub.publish(subs.topic) == 202
    all_delivered(hub, subs, rounds := rounds + 1, timeout=120)
    assert sum(subs.injected.values()) == injected
    report("subscriber-faults", backend, hub, subs, injected, started, injected=dict(subs.injected))


def test_topic_fails_for_a_moment_then_recovers(deploy, subscribers):
    started = time.monotonic()
    hub = deploy(SQLITE_DB, subscribers)
    for n in range(subscribers.count):
        assert hub.subscribe(subscribers.topic, subscribers.callback(n)) == 202
    hub.wait(lambda: hub.count("hubsubscription") == subscribers.count, 90, "every verification")
    subscribers.topic_faults.extend(["503", "hang"])  # then it answers

    def settled():
        pending = hub.count("ping", "status = 'pending'")
        gave_up = hub.count("ping", "status = 'failed'") and not pending
        return gave_up or hub.deliveries() == {"delivered": subscribers.count}

    assert hub.publish(subscribers.topic) == 202
    hub.wait(settled, 60, "the publish request to be delivered or given up")
    if hub.deliveries() == {"delivered": subscribers.count}:
        hub.wait(lambda: subscribers.lost() == 0, 30, "every callback")
    report("topic-503-timeout-then-recovers", SQLITE_DB, hub, subscribers, 0, started)
