"""Where the subscriber's model code queues background work, after the transaction commits.

Tasks are named by their path, so model code never imports the task module, which imports
the models: the tasks are the entry layer, and the import graph has no circle.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from django_push.tasks import enqueue

SUBSCRIBE = "django_push.subscriber.tasks.subscribe_task"
UNSUBSCRIBE_LEGACY = "django_push.subscriber.tasks.unsubscribe_legacy_task"
POLL_NOW = "django_push.subscriber.tasks.poll_now_task"


def on_commit(task_path: str, *args: Any, using: str | None = None) -> None:
    """Enqueue the task at ``task_path`` with ``args`` once the current transaction commits
    (at once outside one), on ``PUSH_TASK_BACKEND``."""
    transaction.on_commit(lambda: enqueue(task_path, *args), using=using)
