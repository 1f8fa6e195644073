"""Settings for hub worker processes in tests: a shared SQLite file and the database queue."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["PUSH_WORKER_DB"],
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
PUSH_HUB_CLAIM_SECONDS = 2
PUSH_HUB_BATCH_SIZE = 100
PUSH_HUB_CONCURRENCY = 20
LOGGING = {"version": 1, "disable_existing_loggers": False}
