"""Test a site's subscribing, receiving and publishing against a hub on 127.0.0.1.

:class:`FakeHub` is the hub; :class:`PushHubMixin` starts one for each test of a Django
``TestCase``, and the ``push_hub`` fixture of ``django_push.testing.pytest`` does the same
for pytest. See the "Testing your site" page of the documentation.
"""

from __future__ import annotations

from django_push.testing.hub import ClientLike, FakeHub, HubRequest
from django_push.testing.mixins import PushHubMixin

__all__ = ["ClientLike", "FakeHub", "HubRequest", "PushHubMixin"]
