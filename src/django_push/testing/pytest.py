"""The ``push_hub`` pytest fixture (pytest-django required).

Load it from your ``conftest.py``::

    pytest_plugins = ["django_push.testing.pytest"]

It is not registered as an entry point on purpose: installing django-push then adds
nothing to the pytest runs of projects that do not ask for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_push.testing.hub import FakeHub

__all__ = ["push_hub"]


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
