"""Settings of the hub benchmark site: Django's project template plus ``django_push.hub``.

Not the test settings: no test apps, ``DEBUG`` off, the middleware ``startproject`` writes,
the database task backend (``db_worker``), or RQ (``rqworker``) when ``BENCH_TASKS`` is
``rq``. ``bench/hub_deployed.py`` sets ``BENCH_DB`` (``sqlite`` or ``postgres``),
``BENCH_SQLITE`` and ``BENCH_TASKS``; PostgreSQL comes from the ``PG*`` variables, Redis from
``REDIS_URL``.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from typing import Any

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "hub_site.urls"
WSGI_APPLICATION = "hub_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_tasks_db",
    "django_push.hub",
    "hub_site",
]
if find_spec("django_tasks") and not find_spec("django.tasks"):  # Django 5.2: the backport
    INSTALLED_APPS.insert(4, "django_tasks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TASKS: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
if os.environ.get("BENCH_TASKS") == "rq":  # what docs/deployment.rst gives for RQ
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    TASKS["default"] = {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}
    # A verification task runs as long as subscribe requests keep coming, and a fan-out task
    # until no delivery is due: RQ's default job timeout (180 s) would kill them mid-batch.
    RQ_QUEUES = {
        "default": {
            "URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "DEFAULT_TIMEOUT": 3600,
        }
    }

# Everything (hub, callbacks, topics) is on 127.0.0.1: the development switch turns the
# network guard off. Both names are set, so older checkouts (--src) read it too.
PUSH_ALLOW_PRIVATE_ADDRESSES = True
PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = True

DATABASES: dict[str, dict[str, Any]]
if os.environ.get("BENCH_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "NAME": os.environ.get("PGDATABASE", "bench"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "CONN_MAX_AGE": 600,
        }
    }
else:
    # What docs/deployment.rst recommends for SQLite: WAL and immediate transactions.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE", "bench.sqlite3"),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# push_worker's wake-up port, chosen free by the bench (--wake).
if os.environ.get("BENCH_WAKEUP"):
    PUSH_WORKER_WAKEUP = os.environ["BENCH_WAKEUP"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_push": {"handlers": ["console"], "level": "WARNING"}},
}
# One callback host (127.0.0.1) stands in for N subscribers on N hosts, and the bench sends
# up to 10,000 subscribe requests at once: the hub's limits on pending verifications (per
# host, and in total; newer code only) are raised so that they refuse none of them.
PUSH_HUB_MAX_PENDING_PER_HOST = 1_000_000
PUSH_HUB_MAX_PENDING = 1_000_000

# The two warnings about that switch: known here, and they would fill every command's output.
SILENCED_SYSTEM_CHECKS = ["django_push.W002", "django_push.W101"]
