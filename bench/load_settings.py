"""Settings of the gunicorn processes bench/load.py starts: the test settings, with the
database it chose (``PUSH_LOAD_DB``: ``sqlite:<path>`` or ``postgres:<name>``), the database
task queue (nothing runs inside a request, and no worker drains it during the run) and
no debug logging."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

_kind, _, _name = os.environ["PUSH_LOAD_DB"].partition(":")
if _kind == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "NAME": _name,
            "USER": os.environ.get("PGUSER", "postgres"),
            "CONN_MAX_AGE": 60,  # one connection per gunicorn thread, kept
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _name,
            "CONN_MAX_AGE": 60,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
PUSH_HUB_URL = "http://127.0.0.1/hub/"
PUSH_HUB_TOPICS = ["http://127.0.0.1/"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django_push": {"level": "WARNING"}},
}
