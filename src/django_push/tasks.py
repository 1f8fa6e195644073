"""Django Tasks import shim: ``django.tasks`` on Django 6, the ``django-tasks`` backport on 5.2."""

from __future__ import annotations

import datetime
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

if TYPE_CHECKING or find_spec("django.tasks"):
    from django.tasks import Task, default_task_backend, task, task_backends
    from django.tasks.signals import task_enqueued
else:  # pragma: no cover - exercised on the Django 5.2 leg
    from django_tasks import (  # type: ignore[assignment,no-redef,unused-ignore]
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks.base import Task  # type: ignore[assignment,no-redef,unused-ignore]
    from django_tasks.signals import task_enqueued  # type: ignore[assignment,no-redef,unused-ignore]

__all__ = ["Task", "default_task_backend", "enqueue", "task", "task_backends", "task_enqueued"]


def enqueue(
    task_obj: Task | str,  # type: ignore[type-arg]
    *args: Any,
    run_after: datetime.datetime | None = None,
    priority: int | None = None,
) -> bool:
    """Enqueue ``task_obj`` (or the task at that dotted path) on the ``PUSH_TASK_BACKEND``
    backend; True if it was enqueued. ``priority`` applies where the backend supports
    priorities.

    With ``run_after`` on a backend that cannot defer tasks, nothing is enqueued: the
    work is left to whatever sweeps for it (the hub's sweeper, the renewal command).
    """
    from django_push.conf import conf

    found: Task = import_string(task_obj) if isinstance(task_obj, str) else task_obj  # type: ignore[type-arg]
    configured = found.using(backend=conf.PUSH_TASK_BACKEND)
    if run_after is not None:
        if not configured.get_backend().supports_defer:
            return False
        configured = configured.using(run_after=run_after)
    if priority is not None and configured.get_backend().supports_priority:
        configured = configured.using(priority=priority)
    configured.enqueue(*args)
    return True
