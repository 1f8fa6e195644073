"""The least Django needs to import django-push's apps, so autodoc can read their models.

docs/conf.py loads it; no database is opened and no request is served.
"""

from __future__ import annotations

from importlib.util import find_spec

SECRET_KEY = "documentation-build-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_push.publisher",
    "django_push.subscriber",
    "django_push.hub",
]
if not find_spec("django.tasks"):  # the backport, on Django 5.2
    INSTALLED_APPS.append("django_tasks")
