"""Settings for the test suite. The database and task backend come from the environment:

- ``PUSH_TEST_DB=postgres`` uses PostgreSQL on 127.0.0.1:5432 (database ``test``); SQLite otherwise.
- ``PUSH_TEST_TASKS=db`` uses django-tasks-db, ``rq`` uses django-tasks-rq on Redis
  (127.0.0.1:6379), ``celery`` uses django-tasks-celery with a Redis broker (``CELERY_URL``);
  the immediate backend otherwise.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from typing import Any

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_DB = os.environ.get("PUSH_TEST_DB", "sqlite")
DATABASES: dict[str, dict[str, Any]]
if _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "NAME": os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("PUSH_TEST_SQLITE", ":memory:"),
            "TEST": {"NAME": os.environ.get("PUSH_TEST_SQLITE") or None},
        }
    }

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "django_push.publisher",
    "django_push.subscriber",
    "django_push.hub",
    "tests.testapp",
]
if not find_spec("django.tasks"):  # the backport, on Django 5.2
    INSTALLED_APPS.append("django_tasks")

_TASKS = os.environ.get("PUSH_TEST_TASKS", "immediate")
_IMMEDIATE = (
    "django.tasks.backends.immediate.ImmediateBackend"
    if find_spec("django.tasks")
    else "django_tasks.backends.immediate.ImmediateBackend"
)
# "queue" is a real database queue, for tests that run a worker whatever the default is.
INSTALLED_APPS.append("django_tasks_db")
TASKS: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": _IMMEDIATE},
    "queue": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}
if _TASKS == "db":
    TASKS["default"] = {"BACKEND": "django_tasks_db.DatabaseBackend"}
elif _TASKS == "rq":
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    TASKS["default"] = {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}
    RQ_QUEUES = {"default": {"URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")}}
elif _TASKS == "celery":
    TASKS["default"] = {
        "BACKEND": "django_tasks_celery.CeleryBackend",
        "OPTIONS": {"CELERY_APP": "tests.celery_app.app"},
    }
    CELERY_BROKER_URL = os.environ.get("CELERY_URL", "redis://127.0.0.1:6379/5")
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL
    CELERY_RESULT_EXTENDED = True
    CELERY_TASK_ACKS_LATE = True  # a task of a killed worker is delivered again
    CELERY_WORKER_PREFETCH_MULTIPLIER = 1

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
SITE_ID = 1
# Worker processes started by tests get the live server's host and the test's choices here.
PUSH_DOMAIN = os.environ.get("PUSH_TEST_DOMAIN", "testserver.com")
PUSH_INSECURE_SECRETS = os.environ.get("PUSH_TEST_INSECURE_SECRETS") == "1"
PUSH_HUB_FEED_DIFFS = os.environ.get("PUSH_TEST_FEED_DIFFS") == "1"
# Tests run hubs and subscribers on 127.0.0.1 over plain HTTP.
PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = True
PUSH_TIMEOUT = 5
# Worker processes of the heartbeat test beat this often (seconds).
PUSH_HEARTBEAT_INTERVAL = float(os.environ.get("PUSH_TEST_HEARTBEAT") or 0) or None
# Worker processes of the subscriber's heartbeat test renew this often (seconds).
PUSH_RENEW_INTERVAL = int(os.environ.get("PUSH_TEST_RENEW_INTERVAL") or 3600)
# Tests of refusals want them at once; tests/test_subscriber_patience.py sets its own.
PUSH_SUBSCRIBER_RETRY_HORIZON = 0
# W107: ALLOWED_HOSTS = ["*"] without PUSH_HUB_TOPICS (tests/test_checks.py un-silences it).
SILENCED_SYSTEM_CHECKS = ["django_push.W101", "django_push.W002", "django_push.W107"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django_push": {"level": "DEBUG"}},
}
