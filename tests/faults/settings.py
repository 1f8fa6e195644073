"""Settings of the hub processes a fault test starts (web server and workers).

The test chooses the database, the task backend and the ports through the environment:

- ``PUSH_FAULT_DB``: ``sqlite:<path>`` or ``postgres:<database name>``;
- ``PUSH_FAULT_TASKS``: ``db`` (django-tasks-db) or ``rq`` (django-tasks-rq, on the Redis at
  ``PUSH_FAULT_REDIS``);
- ``PUSH_FAULT_HUB_URL``, ``PUSH_FAULT_TOPICS``: the hub's URL and the one topic prefix it serves;
- ``PUSH_FAULT_ROLE``: the PostgreSQL ``application_name``, so a test can find a worker's
  connection and terminate it.

Claims, retries and timeouts are short so that a recovery takes seconds, not minutes.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

_kind, _, _name = os.environ["PUSH_FAULT_DB"].partition(":")
if _kind == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "NAME": _name,
            "USER": os.environ.get("PGUSER", "postgres"),
            "OPTIONS": {"application_name": os.environ.get("PUSH_FAULT_ROLE", "hub")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _name,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

if os.environ.get("PUSH_FAULT_TASKS") == "rq":
    INSTALLED_APPS = [
        *INSTALLED_APPS,
        *(app for app in ["django_rq", "django_tasks_rq"] if app not in INSTALLED_APPS),
    ]
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    RQ_QUEUES = {"default": {"URL": os.environ["PUSH_FAULT_REDIS"]}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

PUSH_HUB_URL = os.environ.get("PUSH_FAULT_HUB_URL")
PUSH_HUB_TOPICS = [os.environ.get("PUSH_FAULT_TOPICS", "http://127.0.0.1/")]
PUSH_HUB_CLAIM_SECONDS = 3
# A claim must outlast the batch it covers, or another worker sends it again: here a batch
# is one round of requests (concurrency = batch size), each over within PUSH_TIMEOUT, and a
# claimed batch may wait for the one before it to finish, so 2 x PUSH_TIMEOUT < claim.
PUSH_HUB_BATCH_SIZE = 5
PUSH_HUB_CONCURRENCY = 5
PUSH_HUB_RETRY_BASE = 0.5
PUSH_TIMEOUT = 1
LOGGING = {"version": 1, "disable_existing_loggers": False}
