"""The ``push_hub`` and ``live_push_hub`` pytest fixtures (pytest-django required).

Load them from your ``conftest.py``::

    pytest_plugins = ["django_push.testing.pytest"]

It is not registered as an entry point on purpose: installing django-push then adds
nothing to the pytest runs of projects that do not ask for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from django_push.testing.hub import FakeHub

__all__ = ["live_push_hub", "push_hub"]


@pytest.fixture
def push_hub(settings: Any, client: Any) -> Iterator[FakeHub]:
    """A :class:`~django_push.testing.FakeHub` on 127.0.0.1 for one test, with the site's
    settings pointed at it (:meth:`~django_push.testing.FakeHub.settings`); its steps use
    pytest-django's ``client``."""
    with FakeHub() as hub:
        for name, value in hub.settings().items():
            setattr(settings, name, value)
        hub.client = client
        yield hub


@pytest.fixture
def live_push_hub(live_server: Any, settings: Any, request: Any) -> Iterator[str]:
    """The real ``django_push.hub`` of the site, on pytest-django's ``live_server``, as
    ``PUSH_HUB``; returns its URL.

    The site routes the hub (URL name ``push_hub``) and has the app installed. Callback
    URLs point at the live server, so the hub verifies and delivers to the site over
    HTTP, and the hub accepts topics of the live server only. With the immediate task
    backend each step has run when the request that caused it returns. When the hub
    refuses or denies a subscription, a failing test's report shows why, in its
    "django-push" section.
    """
    from django.apps import apps

    path = hub_path()
    base = str(live_server.url)
    host = base.removeprefix("http://")
    settings.PUSH_HUB = settings.PUSH_HUB_URL = base + path
    settings.PUSH_HUB_TOPICS = [base + "/"]
    settings.PUSH_DOMAIN = host
    settings.PUSH_SSL_CALLBACK = False
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = True
    settings.PUSH_INSECURE_SECRETS = True
    if apps.is_installed("django.contrib.sites") and getattr(settings, "SITE_ID", None):
        from django.contrib.sites.models import Site

        # Feeds build their absolute URLs (rel="self") from the current site.
        Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"domain": host, "name": host})
        Site.objects.clear_cache()
    with refusals_reported(request.node):
        yield str(settings.PUSH_HUB)


@contextlib.contextmanager
def refusals_reported(item: pytest.Item) -> Iterator[None]:
    """Add every refused or denied subscription request to ``item``'s report: a test that
    asserts ``subscription.verified`` then fails saying what the hub answered."""
    from django_push.subscriber.signals import subscription_denied, subscription_failed

    def failed(subscription: Any, mode: str, status: int | None, text: str, **kw: Any) -> None:
        answer = f"HTTP {status}" if status is not None else "no answer"
        report(f"{mode} request for {subscription.topic} failed: {answer}: {text}")

    def denied(subscription: Any, reason: str, **kwargs: Any) -> None:
        report(f"the hub denied the subscription to {subscription.topic}: {reason or '-'}")

    def report(line: str) -> None:
        item.add_report_section("call", "django-push", line + "\n")

    subscription_failed.connect(failed, weak=False)
    subscription_denied.connect(denied, weak=False)
    try:
        yield
    finally:
        subscription_failed.disconnect(failed)
        subscription_denied.disconnect(denied)


def hub_path() -> str:
    """The path of the site's hub endpoint; fails the test, saying what is missing, when
    the hub is not installed or not routed."""
    from django.apps import apps
    from django.urls import NoReverseMatch, reverse

    if not apps.is_installed("django_push.hub"):
        pytest.fail("live_push_hub needs 'django_push.hub' in INSTALLED_APPS")
    try:
        return reverse("push_hub")
    except NoReverseMatch:
        pytest.fail("live_push_hub needs the hub routed: include('django_push.hub.urls')")
