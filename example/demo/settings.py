"""One project playing all three WebSub roles on 127.0.0.1: publisher, hub and subscriber.

Plain HTTP on loopback, so the two development switches are on (see the settings reference:
PUSH_ALLOW_PRIVATE_ADDRESSES and PUSH_INSECURE_SECRETS); never use them in production.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = os.environ.get("DEMO_HOST", "127.0.0.1:8000")

SECRET_KEY = "demo-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "demo.urls"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks_db",
    "django_push.publisher",
    "django_push.subscriber",
    "django_push.hub",
    "demo",
]
if not find_spec("django.tasks"):
    INSTALLED_APPS.append("django_tasks")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", str(BASE_DIR / "db.sqlite3")),
        # Web server and worker share the file: WAL and immediate transactions avoid lock errors.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# django-push: this site is its own publisher, hub and subscriber.
PUSH_DOMAIN = HOST
PUSH_HUB = f"http://{HOST}/hub/"
PUSH_HUB_URL = PUSH_HUB
PUSH_ALLOW_PRIVATE_ADDRESSES = True
PUSH_INSECURE_SECRETS = True
PUSH_TIMEOUT = 10
# The workers' heartbeat (scripts/demo runs push_heartbeat): stop push_worker, and within a
# minute the health view answers 503.
PUSH_HEARTBEAT_INTERVAL = 5
PUSH_HUB_HEALTH_MAX_AGE = 60
# Prometheus metrics at /metrics/ when the extra is installed (scripts/demo installs it and
# sets PROMETHEUS_MULTIPROC_DIR, so the page adds up the worker's counts and the server's).
PUSH_METRICS = find_spec("prometheus_client") is not None
# Reconciliation: the subscriber fetches the feed when its subscription is verified and polls
# it every 30 s, and sends `updated` only for content the hub did not bring. On 127.0.0.1 the
# feed is plain HTTP, so polled bodies are trusted on purpose (W005 says so; silenced here).
PUSH_SUBSCRIBER_RECONCILE = 30
# Each delivery carries the content's number (Push-Sequence), shown with each notification;
# a skipped number makes the subscriber poll the feed at once.
PUSH_HUB_SEQUENCE_HEADER = True
PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP = True
SILENCED_SYSTEM_CHECKS = ["django_push.W001", "django_push.W101", "django_push.W005"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_push": {"handlers": ["console"], "level": "INFO"}},
}
