"""RQ workers for the tests, without RQ's pub/sub listener.

RQ listens for its own commands (``rq suspend``, kill-horse) on a pub/sub thread that waits up
to 60 s for a message. Since redis-py 8.2, stopping that thread waits for the wait to end, so
a worker asked to stop (SIGTERM, or the end of a burst) could take up to a minute to exit; the
tests send those commands nowhere, so the listener is left out.
"""

from __future__ import annotations

from rq import SimpleWorker, Worker


class _NoCommands:
    def subscribe(self) -> None:
        """No pub/sub thread (see the module's docstring)."""

    def unsubscribe(self) -> None:
        """Nothing to stop."""


class QuietWorker(_NoCommands, Worker):
    """``rqworker --worker-class tests.rq_worker.QuietWorker``: the worker processes."""


class QuietSimpleWorker(_NoCommands, SimpleWorker):
    """The in-process worker of ``tests.hub_queue``."""
