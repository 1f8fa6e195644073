"""Settings of the benchmark site: Django's project template plus ``django_push.subscriber``.

Not the test settings: no test apps, ``DEBUG`` off, the middleware ``startproject`` writes.
The benchmark sets ``BENCH_DB`` (``sqlite`` or ``postgres``) and ``BENCH_SQLITE``; the
PostgreSQL database comes from the usual ``PG*`` variables. Old Django versions (django-push
1.1 runs on Django 3.2) read the same file, so it sticks to settings they know.
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
ROOT_URLCONF = "callback_site.urls"
WSGI_APPLICATION = "callback_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PUSH_DOMAIN = "127.0.0.1"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_push.subscriber",
]
if find_spec("django_tasks") and not find_spec("django.tasks"):  # 2.0 on Django 5.2
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

DATABASES: dict[str, dict[str, Any]]
if os.environ.get("BENCH_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "NAME": os.environ.get("PGDATABASE", "bench"),
            "USER": os.environ.get("PGUSER", "postgres"),
            # Persistent connections, as any PostgreSQL deployment under load has them.
            "CONN_MAX_AGE": 600,
        }
    }
else:
    # A file in WAL mode: the bench sets the mode once, and it stays in the file.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE", "bench.sqlite3"),
        }
    }
