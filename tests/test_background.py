"""Subscribe, unsubscribe and ping run as Django Tasks on a real queue (django-tasks-db)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from django_push.publisher import publish_on_commit
from django_push.subscriber.models import Subscription
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)


def run_worker():
    call_command("db_worker", "--batch", "--backend", "queue", "--no-startup-delay", verbosity=0)


def test_subscribe_is_queued_until_a_worker_runs_it(server, settings):
    settings.PUSH_TASK_BACKEND = "queue"
    server.default = Reply(202)
    sub = Subscription.objects.subscribe(
        "http://example.com/feed", hub=server.url, lease_seconds=99
    )
    assert server.requests == []  # queued, not sent inline
    run_worker()
    [request] = server.requests
    assert request.form["hub.callback"] == [sub.callback_url]
    assert request.form["hub.lease_seconds"] == ["99"]


def test_ping_is_queued_until_a_worker_runs_it(server, settings):
    settings.PUSH_TASK_BACKEND = "queue"
    server.default = Reply(204)
    publish_on_commit("http://example.com/feed", hub_url=server.url)
    assert server.requests == []
    run_worker()
    assert server.requests[0].form["hub.url"] == ["http://example.com/feed"]


def test_a_refused_request_fails_the_task_and_is_kept_on_the_row(server, settings):
    from django_tasks_db.models import DBTaskResult

    settings.PUSH_TASK_BACKEND = "queue"
    server.default = Reply(403, b"topic not allowed")
    sub = Subscription.objects.subscribe("http://example.com/feed", hub=server.url)
    run_worker()
    sub.refresh_from_db()
    assert "topic not allowed" in sub.last_error
    assert DBTaskResult.objects.get().status == "FAILED"
