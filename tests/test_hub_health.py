"""The hub's health view (over real HTTP, as a stranger would call it) and
``hub_stats --json``."""

from __future__ import annotations

import datetime
import io
import json
import logging
import urllib.error
import urllib.request

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone

from django_push.checks import check_hub_settings
from django_push.hub import health, heartbeat
from django_push.hub.models import Content, Delivery, HubSubscription, Intent, Ping
from tests.hub_rows import store

pytestmark = pytest.mark.django_db(transaction=True)


def get(live_server, path="/hub-health/", method="GET"):
    request = urllib.request.Request(live_server.url + path, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def subscription(n=0, topic="http://t.example/private-topic"):
    return HubSubscription.objects.create(
        topic=topic,
        callback=f"http://cb.example/secret-callback-{n}?token=t0ken",
        secret="s3cret",
        lease_seconds=3600,
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )


def waiting_delivery(seconds):
    """A delivery due ``seconds`` ago that no worker has sent."""
    sub = subscription()
    content = store(sub.topic, b"x", "text/plain", "http://hub.example/")
    wait(content, seconds)


def wait(content, seconds):
    """The fan-out of ``content`` waits for a worker since ``seconds`` ago."""
    Content.objects.filter(pk=content.pk).update(
        fetched_at=timezone.now() - datetime.timedelta(seconds=seconds)
    )


def test_healthy_hub_answers_200_with_json(live_server):
    status, headers, body = get(live_server)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {"status": "ok", "database": "ok", "workers": "ok"}


def test_work_waiting_longer_than_the_threshold_is_503(live_server, settings):
    settings.PUSH_HUB_HEALTH_MAX_AGE = 600
    waiting_delivery(300)
    assert get(live_server)[0] == 200  # late, but within the threshold
    wait(Content.objects.get(), 900)
    status, _, body = get(live_server)
    assert status == 503
    answer = json.loads(body)
    assert answer["status"] == "unavailable"
    assert (answer["database"], answer["workers"]) == ("ok", "late")
    assert "PUSH_HUB_HEALTH_MAX_AGE" in answer["reason"]


def test_a_retry_not_yet_due_is_healthy_and_an_old_verification_is_not(live_server):
    waiting_delivery(-3600)  # a retry in an hour
    Ping.objects.create(
        topic="http://t.example/", hub_url="http://hub.example/", next_attempt_at=timezone.now()
    )
    assert get(live_server)[0] == 200
    intent = Intent.objects.create(
        mode="subscribe", topic="http://t.example/", callback="http://c/"
    )
    Intent.objects.filter(pk=intent.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=1)
    )
    assert get(live_server)[0] == 503


def test_unreachable_database_is_503_without_details(client, caplog):
    # Django's error names the host, port and user: logged for the operator, never shown.
    secret = 'connection to server at "10.1.2.3", port 5432 failed: password for user "hub"'

    def down(execute, sql, params, many, context):
        raise OperationalError(secret)

    with connection.execute_wrapper(down), caplog.at_level(logging.ERROR, "django_push"):
        response = client.get("/hub-health/")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "workers": "unknown",
        "reason": "the database is unreachable",
    }
    assert secret.encode() not in response.content
    assert secret in caplog.text


def test_a_stranger_cannot_learn_anything_or_make_work(live_server, settings):
    # What a stranger on the internet can do with the view: call it with any method and
    # any query string, as often as they like. Every answer is the same few fixed words; no
    # row is written, no task is enqueued, and nothing the hub holds is shown.
    settings.PUSH_HUB_HEALTH_MAX_AGE = 60
    waiting_delivery(3600)
    Intent.objects.create(mode="subscribe", topic="http://t.example/", callback="http://c/")

    def state():
        models = (HubSubscription, Intent, Ping, Content, Delivery)
        rows = [list(model.objects.order_by("pk").values()) for model in models]
        from django_tasks_db.models import DBTaskResult

        return rows, DBTaskResult.objects.count()

    before = state()
    answers = set()
    for n in range(60):
        path = f"/hub-health/?hub.mode=publish&hub.url=http://t.example/&n={n}"
        answers.add(get(live_server, path)[::2])
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = get(live_server, method=method)
        assert status == 405
        assert headers["Allow"] == "GET, HEAD"
    head = get(live_server, method="HEAD")
    assert (head[0], head[2]) == (503, b"")
    assert state() == before
    [(status, body)] = answers
    assert status == 503
    for hidden in (b"private-topic", b"secret-callback", b"s3cret", b"t0ken", b"example"):
        assert hidden not in body
    assert set(json.loads(body)) == {"status", "database", "workers", "reason"}


def test_check_costs_four_aggregate_queries_whatever_the_backlog(django_assert_num_queries):
    subs = [subscription(n) for n in range(200)]
    content = store(subs[0].topic, b"x", "text/plain", "http://hub.example/")
    assert content.owed == 200
    with django_assert_num_queries(4) as captured:
        assert health.check().ok
    for query in captured.captured_queries:
        assert "MIN(" in query["sql"].upper()  # one row each, from an index: no row lists


def test_hub_stats_json(settings):
    settings.PUSH_HUB_HEALTH_MAX_AGE = 120
    waiting_delivery(600)
    subscription(1, topic="http://t.example/other")
    Intent.objects.create(mode="subscribe", topic="http://t.example/", callback="http://c/")
    out = io.StringIO()
    call_command("hub_stats", "--json", stdout=out)
    stats = json.loads(out.getvalue())
    waited = stats["health"].pop("oldest_waiting_seconds")
    assert stats == {
        "active_subscriptions": 2,
        "expired_subscriptions": 0,
        "topics": 2,
        "pending_verifications": 1,
        "pending_publishes": 0,
        "published_contents": 1,
        "deliveries": {"pending": 1, "delivered": 0, "gave_up": 0},
        "health": {
            "status": "unavailable",
            "database": "ok",
            "workers": "late",
            "reason": health.WORKERS_LATE,
            "max_age_seconds": 120,
            "heartbeat_interval_seconds": None,
            "heartbeat_age_seconds": None,
        },
    }
    assert 600 <= waited["deliveries"] < 700
    assert 0 <= waited["verifications"] < 60
    assert waited["publishes"] == 0
    text = io.StringIO()
    call_command("hub_stats", stdout=text)
    assert "deliveries pending     1" in text.getvalue()


def test_health_max_age_must_be_a_positive_integer(settings):
    settings.PUSH_HUB_HEALTH_MAX_AGE = 0
    errors = [error for error in check_hub_settings() if error.id == "django_push.E105"]
    assert [error.msg for error in errors] == [
        "PUSH_HUB_HEALTH_MAX_AGE must be a positive integer, not 0."
    ]


def test_operations_urls_example_routes(live_server):
    import runpy
    from pathlib import Path

    from django.test import override_settings
    from django.urls import resolve

    docs = Path(__file__).resolve().parent.parent / "docs"
    namespace = runpy.run_path(str(docs / "examples" / "operations_urls.py"))
    urls = type("urls", (), {"urlpatterns": namespace["urlpatterns"]})
    with override_settings(ROOT_URLCONF=urls):
        assert resolve("/hub/").url_name == "push_hub"
        assert resolve("/hub/health/").func is health.health
        assert resolve("/subscriber/health/").url_name == "subscriber_health"
        assert resolve("/metrics/").url_name == "push_metrics"
    text = (docs / "operations.rst").read_text()
    assert "operations" in (docs / "index.rst").read_text()
    for name in ("PUSH_METRICS", "PUSH_HUB_HEALTH_MAX_AGE", "django_push.E010"):
        assert name in text
    # The metric names the page documents are the ones the code exposes.
    import re

    from django_push import metrics
    from django_push.metrics import collector
    from django_push.subscriber import heartbeat as subscriber_heartbeat

    documented = set(re.findall(r"``(django_push_[a-z_]+)", text))
    exposed = {
        "django_push_hub_deliveries_total",
        "django_push_hub_verifications_total",
        "django_push_hub_publishes_total",
        "django_push_subscriber_notifications_total",
        "django_push_subscriber_polls_total",
        "django_push_subscriber_sequence_gaps_total",
        "django_push_hub_publish_to_delivery_seconds",
        "django_push_hub_delivery_duration_seconds",
        *collector.GAUGES,
        heartbeat.METRIC,
        subscriber_heartbeat.METRIC,
    }
    assert documented == exposed
    for outcome in (*metrics.DELIVERY_OUTCOMES, *metrics.PUBLISH_OUTCOMES):
        assert f"``{outcome}``" in text
