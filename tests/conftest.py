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


@pytest.fixture
def unused_tcp_port():
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
