"""One exception hierarchy for everything django-push raises."""

from __future__ import annotations


class PushError(Exception):
    """Base class of every django-push error."""


class HubError(PushError):
    """A hub refused a request, answered with an error, or could not be reached.

    ``hub`` is the hub URL, ``status`` the HTTP status (``None`` when no answer
    came back) and ``reason`` the hub's own text or the transport error.
    """

    def __init__(self, hub: str, status: int | None, reason: str) -> None:
        self.hub = hub
        self.status = status
        self.reason = reason
        if status is None:
            super().__init__(f"Hub {hub} could not be reached: {reason}")
        else:
            super().__init__(f"Hub {hub} answered HTTP {status}: {reason}")


class PingError(HubError):
    """``ping_hub()`` did not get a 2xx answer from the hub."""


class DiscoveryError(PushError):
    """A topic URL could not be fetched, or it declares no hub."""


class FetchError(PushError):
    """An outbound request failed: connection error, timeout, size cap or refused address."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(f"{url}: {reason}")


class GuardRefusal(FetchError):
    """The network guard refused the request (address, port or host): retrying cannot help."""
