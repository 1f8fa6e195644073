"""Storing a content: one INSERT ... SELECT writes a delivery for each active subscriber."""

from __future__ import annotations

import datetime

import pytest
from django.db import models
from django.test.utils import isolate_apps
from django.utils import timezone

from django_push.hub import distribution
from django_push.hub.models import Delivery, HubSubscription, new_row

pytestmark = pytest.mark.django_db

TOPIC = "https://publisher.example/feed"


def subscribe(callback, lease=3600):
    return HubSubscription.objects.create(
        topic=TOPIC,
        callback=callback,
        lease_seconds=abs(lease),
        expires_at=timezone.now() + datetime.timedelta(seconds=lease),
    )


def test_store_writes_what_the_orm_would_for_each_active_subscriber():
    subscribed = subscribe("https://a.example/cb")
    subscribe("https://gone.example/cb", lease=-1)  # the lease has ended: nothing owed
    HubSubscription.objects.create(
        topic="https://other.example/feed",
        callback="https://a.example/cb",
        lease_seconds=60,
        expires_at=timezone.now() + datetime.timedelta(seconds=60),
    )
    before = timezone.now()
    content = distribution.store(TOPIC, b"body", "text/plain", "https://hub.example/")
    [stored] = Delivery.objects.all()
    by_orm = Delivery.objects.create(content=content, subscription=subscribed)
    # Every field the statement sets by default, as the ORM sets it (a field added to
    # Delivery with a default cannot be forgotten by the INSERT ... SELECT).
    skip = {"id", "next_attempt_at"}
    for field in Delivery._meta.concrete_fields:
        if field.attname not in skip:
            name = field.attname
            assert getattr(stored, name) == getattr(by_orm, name), name
    assert before <= stored.next_attempt_at <= timezone.now()
    assert stored.status == Delivery.Status.PENDING


def test_new_row_takes_given_values_defaults_and_leaves_out_nulls_and_the_key():
    content = distribution.store(TOPIC, b"body", "text/plain", "https://hub.example/")
    row = new_row(Delivery, "default", exclude={"subscription_id"}, content=content)
    assert row["content_id"] == content.pk
    assert row["status"] == "pending"
    assert row["attempts"] == 0
    assert {"id", "subscription_id", "claimed_until", "delivered_at"}.isdisjoint(row)
    columns = {
        field.column
        for field in Delivery._meta.concrete_fields
        if field.has_default() or not field.null
    } - {"id", "subscription_id"}
    assert columns <= set(row)


@isolate_apps("django_push.hub")
def test_new_row_leaves_database_defaults_to_the_database():
    class WithDatabaseDefault(models.Model):
        made = models.IntegerField(db_default=7)
        label = models.CharField(max_length=5, default="x")

        class Meta:
            app_label = "push_hub"
            managed = False

    assert new_row(WithDatabaseDefault, "default") == {"label": "x"}


def queued_fanouts():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path__endswith="fanout_task").count()


def test_the_fetching_task_delivers_and_spreads_when_there_is_more(server, settings):
    # A task per batch cost the queue's work for each before the first could start, and
    # most found nothing left. The fetching task delivers at once, and enqueues one task
    # for another worker when it finds a second batch.
    from django_push.hub.tasks import publish_task
    from tests.servers import Reply

    settings.PUSH_TASK_BACKEND = "queue"  # a real queue: the tasks wait there, unrun
    settings.PUSH_HUB_BATCH_SIZE = 2
    server.replies["/topic"] = Reply(200, b"x", {"Content-Type": "text/plain"})
    for n in range(5):
        HubSubscription.objects.create(
            topic=server.url + "/topic",
            callback=f"{server.url}/cb/{n}",
            lease_seconds=60,
            expires_at=timezone.now() + datetime.timedelta(seconds=60),
        )
    content_id = publish_task.call(server.url + "/topic", "https://hub.example/")
    delivered = Delivery.objects.filter(content_id=content_id, status=Delivery.Status.DELIVERED)
    assert delivered.count() == 5  # by the fetching task itself, no queue in between
    assert queued_fanouts() == 1  # it found a second batch: one task, for another worker
    assert distribution.fanout(content_id) == (0, 0)  # what that task runs: nothing left
    assert queued_fanouts() == 1  # and it enqueues no more
