"""A mixin for Django's test cases that gives each test its own fake hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.test import override_settings

from django_push.testing.hub import FakeHub

if TYPE_CHECKING:
    from unittest import TestCase

    _Base = TestCase
else:
    _Base = object

__all__ = ["PushHubMixin"]


class PushHubMixin(_Base):
    """Start a :class:`FakeHub` before each test, as ``self.push_hub``, and point the
    site's settings at it (:meth:`FakeHub.settings`) for the test's duration.

    Put it before the test case: ``class FeedTests(PushHubMixin, TestCase)``. A ``setUp()``
    of your own calls ``super().setUp()`` first. The hub's steps use ``self.client``.
    """

    push_hub: FakeHub

    def setUp(self) -> None:
        super().setUp()
        self.push_hub = self.enterContext(FakeHub())
        self.enterContext(override_settings(**self.push_hub.settings()))
        client = getattr(self, "client", None)
        if client is not None:
            self.push_hub.client = client
