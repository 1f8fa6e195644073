"""django-push 1.1's helper names, kept for code that imported them."""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string

from django_push.conf import conf

SECRET_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def generate_random_string(length: int = 50) -> str:
    """A secret for ``hub.secret``: 50 random characters (WebSub asks for fewer than 200 bytes)."""
    return get_random_string(length, allowed_chars=SECRET_CHARS)


def hub_credentials(hub_url: str) -> tuple[str, str] | None:
    """Default ``PUSH_CREDENTIALS``: no authentication."""
    return None


def get_hub_credentials(hub_url: str) -> tuple[str, str] | None:
    """Call the ``PUSH_CREDENTIALS`` callable for ``hub_url``."""
    credentials = import_string(conf.PUSH_CREDENTIALS)(hub_url)
    if credentials is None:
        return None
    user, password = credentials
    return str(user), str(password)


def get_domain() -> str:
    """The host of callback URLs: ``PUSH_DOMAIN``, else the current ``Site``'s domain."""
    if conf.PUSH_DOMAIN:
        return conf.PUSH_DOMAIN
    if apps.is_installed("django.contrib.sites"):
        from django.contrib.sites.models import Site

        return Site.objects.get_current().domain
    raise ImproperlyConfigured(
        "Unable to determine the site's host name for callback URLs: set PUSH_DOMAIN, "
        "or install django.contrib.sites and set SITE_ID."
    )
