"""A hub deployed the way a user would run it, in processes a test can kill: a web server
for the hub endpoint, task workers (restarted when they die, as a supervisor would) and a
``hub_sweep`` every two seconds (as cron would), on a database and a task backend of the
test's choosing.

The test process never imports the hub's models: it talks to the hub over HTTP and reads
its tables with plain SQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# What cron would run every two seconds, as one process: hub_sweep, whatever happens.
SWEEPER = """
import time, traceback
from django.core.management import call_command
from django.db import close_old_connections
while True:
    close_old_connections()
    try:
        call_command("hub_sweep")
    except Exception:
        traceback.print_exc()
    time.sleep(2)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_admin() -> Any:
    import psycopg

    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname="postgres",
        autocommit=True,
    )


def base_env(db: str, tasks: str, redis: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.settings",
        "PYTHONPATH": str(ROOT),
        "PUSH_FAULT_DB": db,
        "PUSH_FAULT_TASKS": tasks,
        "PUSH_TEST_INSECURE_SECRETS": "1",
    }
    if redis:
        env["PUSH_FAULT_REDIS"] = redis
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


class Database:
    """A migrated database made once per session and copied for every test."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        prefix = os.environ.get("PGDATABASE", "test")
        self.template = (
            str(workdir / "template.sqlite3") if kind == "sqlite" else f"{prefix}_faults_tmpl"
        )
        self.copies = 0
        if kind == "postgres":
            with pg_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{self.template}"')
        manage(base_env(f"{kind}:{self.template}", "db"), "migrate", "--verbosity", "0")
        if kind == "sqlite":
            with sqlite3.connect(self.template) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def copy(self) -> str:
        self.copies += 1
        if self.kind == "sqlite":
            path = self.workdir / f"hub-{self.copies}.sqlite3"
            shutil.copy(self.template, path)
            return str(path)
        name = f"{self.template.removesuffix('_tmpl')}_{self.copies}"
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def drop(self, name: str) -> None:
        if self.kind == "postgres":
            with pg_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self.template)


class Redis:
    """A redis-server of our own, on its own port, that a test may restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                *("--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _listening(self.port), 10, "redis-server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc: Linux only, like the rest of CI)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Hub:
    def __init__(
        self, database: Database, tasks: str, topics: str, workdir: Path, workers: int = 2
    ) -> None:
        self.database = database
        self.name = database.copy()
        self.tasks = tasks
        self.workdir = workdir
        self.redis = Redis(workdir) if tasks == "rq" else None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hub/"
        self.env = base_env(
            f"{database.kind}:{self.name}", tasks, self.redis.url if self.redis else None
        )
        self.env.update(PUSH_FAULT_HUB_URL=self.url, PUSH_FAULT_TOPICS=topics)
        self.worker_count = workers
        self.workers: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        self._pg: Any = None  # the test's own connection, kept: PostgreSQL forks one per connect
        self.web = self._spawn(
            "web", "runserver", f"127.0.0.1:{self.port}", "--noreload", "--skip-checks"
        )
        self.sweeper = self._spawn("sweeper", "shell", "-c", SWEEPER)

    def _spawn(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{role}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "django", *args],
            env={**self.env, "PUSH_FAULT_ROLE": role},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the worker and any child it forks (RQ's work horse)
        )

    def _worker(self) -> subprocess.Popen[bytes]:
        if self.tasks == "rq":
            # SimpleWorker runs jobs in the worker process; the default worker forks a work
            # horse per job (kill_workers kills it too), which the RQ end-to-end leg runs.
            command = ["rqworker", "--with-scheduler", "--job-class", "django_tasks_rq.Job"]
            command += ["--worker-class", "rq.worker.SimpleWorker"]
            return self._spawn("worker", *command, "default")
        return self._spawn("worker", "db_worker", "--interval", "0.05", "--no-startup-delay")

    def start(self) -> Hub:
        wait_for(lambda: _listening(self.port), 30, "the hub's web server")
        self.workers = [self._worker() for _ in range(self.worker_count)]
        return self

    def kill_workers(self) -> None:
        """SIGKILL every worker and what it forked (RQ's work horse runs in a session of its
        own); the supervisor starts new ones."""
        for worker in self.workers:
            for pid in [*_children(worker.pid), worker.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for worker in self.workers:
            worker.wait(10)

    def supervise(self) -> None:
        for i, worker in enumerate(self.workers):
            if worker.poll() is not None:
                self.workers[i] = self._worker()
                self.restarts += 1

    @property
    def sweeps(self) -> int:
        log = self.workdir / "sweeper.log"
        return log.read_text(errors="replace").count("task(s) enqueued") if log.exists() else 0

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        def check() -> object:
            self.supervise()
            return predicate()

        try:
            wait_for(check, timeout, what)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.state()}\n{self.logs()}") from None

    # HTTP, as publishers and subscribers send it ---------------------------------------

    def post(self, fields: dict[str, str]) -> int:
        data = urllib.parse.urlencode(fields).encode()
        for _ in range(60):
            try:
                with urllib.request.urlopen(self.url, data=data, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                if exc.code != 429:  # over a verification cap: come back when told
                    return int(exc.code)
                time.sleep(min(float(exc.headers.get("Retry-After") or 1), 2.0))
        raise AssertionError("the hub kept answering 429")

    def subscribe(self, topic: str, callback: str) -> int:
        fields = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback}
        return self.post({**fields, "hub.secret": "fault-secret", "hub.lease_seconds": "3600"})

    def publish(self, topic: str) -> int:
        return self.post({"hub.mode": "publish", "hub.url": topic})

    # The hub's tables ------------------------------------------------------------------

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.database.kind == "sqlite":
            with sqlite3.connect(self.name, timeout=30) as db:
                return list(db.execute(sql))
        if self._pg is None or self._pg.closed:
            import psycopg

            self._pg = psycopg.connect(
                host=os.environ.get("PGHOST", "127.0.0.1"),
                port=os.environ.get("PGPORT", "5432"),
                user=os.environ.get("PGUSER", "postgres"),
                dbname=self.name,
                autocommit=True,
                application_name="test",
            )
        return list(self._pg.execute(sql))

    def count(self, table: str, where: str = "1=1") -> int:
        return int(self.query(f"SELECT COUNT(*) FROM push_hub_{table} WHERE {where}")[0][0])

    def deliveries(self) -> dict[str, int]:
        """Deliveries by status, as the hub counts them: its ranges' counts plus its delivery
        rows (only failures and contents sent again are rows), the nonzero ones."""
        rows = self.query("SELECT status, COUNT(*) FROM push_hub_delivery GROUP BY status")
        counts = {str(status): int(n) for status, n in rows}
        [(sent,)] = self.query(
            "SELECT COALESCE(SUM(delivered), 0) FROM push_hub_span WHERE status = 'done'"
        )
        [(owed,)] = self.query(
            "SELECT COALESCE(SUM(owed), 0) FROM push_hub_content WHERE finished_at IS NULL"
        )
        counts["delivered"] = counts.get("delivered", 0) + int(sent)
        unfinished_decided = self.query(
            "SELECT COALESCE(SUM(s.delivered + s.failed), 0) FROM push_hub_span s "
            "JOIN push_hub_content c ON c.id = s.content_id "
            "WHERE c.finished_at IS NULL AND s.status = 'done'"
        )[0][0]
        counts["pending"] = counts.get("pending", 0) + max(0, int(owed) - int(unfinished_decided))
        return {status: n for status, n in counts.items() if n}

    def terminate_worker_connections(self) -> int:
        """``pg_terminate_backend`` on every worker's connection; returns how many."""
        with pg_admin() as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = 'worker'",
                [self.name],
            ).fetchall()
        return len(rows)

    def state(self) -> str:
        tables = ["hubsubscription", "intent", "ping", "content"]
        counts = {table: self.count(table) for table in tables}
        intents = self.query(
            "SELECT status, reason, claimed_until, COUNT(*) FROM push_hub_intent "
            "WHERE status != 'verified' GROUP BY status, reason, claimed_until"
        )
        return (
            f"hub state: {counts}, deliveries {self.deliveries()}, unverified {intents}, "
            f"restarts {self.restarts}, sweeps {self.sweeps}"
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
            for log in sorted(self.workdir.glob("*.log"))
        )

    def close(self) -> None:
        processes = [*self.workers, self.web, self.sweeper]
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self.redis:
            self.redis.stop()
        if self._pg is not None:
            self._pg.close()
        self.database.drop(self.name)
