from __future__ import annotations

import pytest

from tests.servers import Server


@pytest.fixture
def server():
    """A recording HTTP server on 127.0.0.1 (a hub, a topic or a subscriber, as the test needs)."""
    with Server() as srv:
        yield srv


@pytest.fixture
def live_domain(live_server, settings):
    """Point callback URLs at the live Django server, so real hubs can call back."""
    settings.PUSH_DOMAIN = live_server.url.removeprefix("http://")
    return live_server
