"""``db_worker`` of django-tasks-db, woken when a task is committed instead of at its next poll.

Same options as ``db_worker``. Between polls the worker waits on :class:`~django_push.wakeup.Wakeup`
(a datagram on ``PUSH_WORKER_WAKEUP``, a PostgreSQL NOTIFY) for at most ``--interval``
seconds, so tasks deferred with ``run_after`` and tasks enqueued without a wake-up still run.
Each wake-up runs django-tasks-db's own worker in batch mode: its claim and its bookkeeping of
results are unchanged.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

from django.core.management.base import CommandError
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

from django_push.wakeup import Wakeup, queue_database

# Retry delay of the batch worker when SQLite says the database is locked.
LOCKED_RETRY = 0.05


class QuietBatches(logging.Filter):
    """Drop the start and end lines the batch worker logs at every wake-up."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Starting worker", "No more tasks to run"))


def keep_open(connection: BaseDatabaseWrapper) -> Any:
    """On SQLite, a connection held for the worker's lifetime, so that the connection the
    worker closes after every task is never the file's last one: closing the last connection
    to a WAL database checkpoints it (measured: about a tenth of a publish's latency)."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]
        return None
    keeper = connection.get_new_connection(connection.get_connection_params())
    keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()  # opens the file and WAL
    return keeper


class WakingWorker:
    """Run a batch ``db_worker.Worker`` until the queue is empty, then wait for a wake-up."""

    def __init__(self, worker: db_worker.Worker, interval: float, startup_delay: bool) -> None:
        self.worker = worker
        self.interval = interval
        self.startup_delay = startup_delay

    def finished(self) -> bool:
        worker = self.worker
        # _run_tasks: the batch worker's own count, which it checks against --max-tasks.
        return not worker.running or (
            worker.max_tasks is not None and worker._run_tasks >= worker.max_tasks
        )

    def run(self) -> None:
        db_worker.logger.info(
            "Starting worker worker_id=%s queues=%s, woken on commit",
            self.worker.worker_id,
            ",".join(self.worker.queue_names),
        )
        db_worker.logger.addFilter(QuietBatches())
        if self.startup_delay and self.interval:
            time.sleep(random.random())  # spreads workers started together
        alias = queue_database()
        wakeup = Wakeup(alias)
        keeper = keep_open(connections[alias])
        try:
            while True:
                self.worker.run()
                if self.finished():
                    return
                wakeup.wait(self.interval)
        finally:
            wakeup.close()
            if keeper is not None:
                keeper.close()


class Command(db_worker.Command):
    help = "Run a database background worker, woken when a task is committed"

    def handle(self, **options: Any) -> None:
        if options["batch"]:
            return super().handle(**options)
        self.configure_logging(options["verbosity"])
        queue_names = options["queue_name"].split(",")
        excluded = options["exclude_queues"].split(",") if options["exclude_queues"] else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = db_worker.Worker(
            queue_names=queue_names,
            interval=min(options["interval"], LOCKED_RETRY),
            batch=True,
            backend_name=options["backend_name"],
            startup_delay=False,
            max_tasks=options["max_tasks"],
            worker_id=options["worker_id"],
            excluded_queue_names=excluded,
        )
        waking = WakingWorker(worker, options["interval"], options["startup_delay"])
        if options["reload"]:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()  # in the reloaded child only, as db_worker does
            run_with_reloader(waking.run)
        else:
            worker.configure_signals()
            waking.run()
        return None
