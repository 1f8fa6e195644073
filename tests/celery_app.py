"""The Celery app for PUSH_TEST_TASKS=celery: django-tasks-celery's backend sends the hub's
tasks to it, and ``celery -A tests.celery_app worker`` runs them."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The worker imports each installed app's tasks module (django_push.hub.tasks): defining the
# Django tasks registers them with this app.
app.autodiscover_tasks()
