"""WebSub (PubSubHubbub) for Django: publisher, subscriber and hub."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("django-push")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

# The User-Agent of every outbound request, as in 1.1.
UA = f"django-push/{__version__}"
