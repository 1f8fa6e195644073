# ruff: noqa
# Django 2.0 settings for make_databases.py (run with Python 3.6 and django-push 1.1).
import os

SECRET_KEY = "legacy11"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["django_push.subscriber"]
ROOT_URLCONF = "urls11"
PUSH_DOMAIN = "site.legacy11.test"
if os.environ.get("LEGACY11_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "USER": "postgres",
            "NAME": os.environ["LEGACY11_PGNAME"],
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["LEGACY11_SQLITE"],
        }
    }
