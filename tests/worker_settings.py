"""Settings for hub worker processes in tests: a shared database and the database queue.

``PUSH_WORKER_DB`` names it: an SQLite file (a path), or with ``PUSH_TEST_DB=postgres`` and
a bare name, a PostgreSQL database (on the server of ``tests.settings``).
``PUSH_WORKER_WAKEUP`` sets the setting of that name (empty: no datagrams).
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

_NAME = os.environ["PUSH_WORKER_DB"]
if DATABASES["default"]["ENGINE"].endswith("postgresql") and os.sep not in _NAME:  # noqa: F405
    DATABASES["default"]["NAME"] = _NAME  # noqa: F405
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _NAME,
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
if "PUSH_WORKER_WAKEUP" in os.environ:
    PUSH_WORKER_WAKEUP = os.environ["PUSH_WORKER_WAKEUP"] or None
LOGGING = {"version": 1, "disable_existing_loggers": False}
