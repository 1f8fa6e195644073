"""Django Tasks import shim: ``django.tasks`` on Django 6, the ``django-tasks`` backport on 5.2."""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING

if TYPE_CHECKING or find_spec("django.tasks"):
    from django.tasks import Task, default_task_backend, task, task_backends
else:  # pragma: no cover - exercised on the Django 5.2 leg
    from django_tasks import (  # type: ignore[assignment,no-redef,unused-ignore]
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks.base import Task  # type: ignore[assignment,no-redef,unused-ignore]

__all__ = ["Task", "backend", "default_task_backend", "task", "task_backends"]


def backend():  # type: ignore[no-untyped-def]  # the backend class differs between the two packages
    """The task backend named by ``PUSH_TASK_BACKEND``."""
    from django_push.conf import conf

    return task_backends[conf.PUSH_TASK_BACKEND]
