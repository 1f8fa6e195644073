"""Run what the hub put on a real task queue, inside the test process.

With the immediate backend (the default) tasks have already run when ``enqueue`` returns,
and :func:`run_queued` has nothing to do. With ``PUSH_TEST_TASKS=rq`` the tasks went through
Redis and an RQ ``SimpleWorker`` (django-tasks-rq's job class) runs them here; with
``PUSH_TEST_TASKS=db`` they are rows of django-tasks-db and its worker's ``run_task`` runs them.
Running them in this process keeps the test's settings overrides and its database
transaction, so the same hub tests pass on every backend.

Tasks deferred with ``run_after`` (retries, the sweeper's next round) are left alone, as the
immediate backend drops them: tests reach them through ``sweep()`` like a deployment would.
"""

from __future__ import annotations

import os

import pytest

from django_push.conf import conf

MODE = os.environ.get("PUSH_TEST_TASKS", "immediate")


def run_queued() -> int:
    """Run every task enqueued without ``run_after`` until none is left; returns how many.

    A task that raised fails the test with its traceback.
    """
    if MODE == "rq":
        return _run_rq()
    if MODE == "db":
        return _run_db()
    return 0


def _run_rq() -> int:
    import django_rq
    from django_tasks_rq import Job
    from rq.registry import FailedJobRegistry

    from tests.rq_worker import QuietSimpleWorker

    queue = django_rq.get_queue("default", job_class=Job)
    failed = FailedJobRegistry(queue=queue)
    already_failed = set(failed.get_job_ids())
    worker = QuietSimpleWorker([queue], connection=queue.connection, job_class=Job)
    worker.work(burst=True, logging_level="WARNING")
    for job_id in set(failed.get_job_ids()) - already_failed:
        job = Job.fetch(job_id, connection=queue.connection)
        pytest.fail(f"task {job.func_name} failed:\n{job.latest_result().exc_string}")
    return int(worker.successful_job_count + worker.failed_job_count)


def _run_db() -> int:
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult, get_date_max

    backend = conf.PUSH_TASK_BACKEND
    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name=backend,
        startup_delay=False,
        max_tasks=None,
        worker_id="tests",
        excluded_queue_names=[],
    )
    ran = 0
    while True:
        result = (
            DBTaskResult.objects.ready()
            .filter(backend_name=backend, run_after=get_date_max())
            .order_by("enqueued_at")
            .first()
        )
        if result is None:
            return ran
        result.claim(worker.worker_id)
        worker.run_task(result)
        ran += 1
        result.refresh_from_db()
        if result.status == "FAILED":
            pytest.fail(f"task {result.task_path} failed:\n{result.traceback}")


def _empty_rq_queue() -> None:
    import django_rq
    from rq.registry import ScheduledJobRegistry

    queue = django_rq.get_queue("default")
    queue.empty()
    scheduled = ScheduledJobRegistry(queue=queue)
    for job_id in scheduled.get_job_ids():
        scheduled.remove(job_id, delete_job=True)


@pytest.fixture
def hub_queue():
    """An empty queue for each test: nothing left over from one test runs in another."""
    if MODE == "rq":
        _empty_rq_queue()
    yield run_queued
    if MODE == "rq":
        _empty_rq_queue()
