"""The hub as deployed, driven over WebSub on 127.0.0.1, every figure a ratio from one run.

The deployment: ``bench/hub_site`` (a startproject-like site with ``django_push.hub``) under
gunicorn with 2 sync workers, and ``db_worker`` processes of django-tasks-db: SQLite in WAL
mode with 1 worker (the embedded default), PostgreSQL with 2. A callback server (aiohttp, its
own process) stands in for every subscriber: it echoes verification challenges, checks each
delivery's sha256 signature and counts deliveries with timestamps; it also serves the topic
(2 KB). The driver speaks only WebSub to the hub, and measures in the same run:

- subscribe: N subscribe requests (with a secret) to the hub endpoint, as requests/s over a
  bare Django view doing one INSERT on the same gunicorn (run before and after: the mean),
  then the time until all N are active in the hub's database after the last request;
- fan-out: a publish through the endpoint to the N subscribers, deliveries/s (from the
  publish request to the last delivery) over a raw aiohttp client posting the same signed
  body to the same callbacks at the hub's concurrency (run before and after each publish);
  the publish's answer time and the first delivery;
- latency: publish to first and to last delivery, p50 and p99, over repeated publishes to a
  small topic (100 subscribers), with a random pause (up to the poll interval) between them;
- scale: ``--insert`` reaches N past ``--http-subscribers`` (10,000): the first
  ``--http-subscribers`` are subscribed through the endpoint as above, the rest of N is
  inserted straight into the hub's tables as the rows a verification writes (intent and
  subscription, secret included, callbacks on the callback server, so that their deliveries
  are counted and their signatures checked), by one ``INSERT ... SELECT`` over a series per
  250,000 (``manage.py bench_seed``): 1,000,000 in about 25 s on PostgreSQL. Without
  ``--insert``, an N past ``--http-subscribers`` is refused (raise it to subscribe them all
  over HTTP: hours at 1,000,000). Each worker's resident set (after each fan-out, and its
  peak) shows how memory follows N, and its growth from each smaller N to the largest is
  printed at the end;
- the hub's writes, on PostgreSQL: the rows the hub wrote per successful delivery, from
  ``pg_stat_user_tables`` (``n_tup_ins + n_tup_upd + n_tup_del``) summed over its tables
  (``push_hub_*``) but the subscriptions', read when the figure has settled before each
  measured publish and after the hub is idle again (backends flush their counts about once
  a second), the subscriptions' own apart; and the hub tables' total size
  (``pg_total_relation_size``) after the last fan-out at each N. On SQLite these are "-";
- flask-websub's hub (PyPI, its own virtual environment made with uv, Celery eager, the
  same gunicorn), driven the same way, for the side-by-side figure, up to
  ``--flask-websub-max`` and as far as it goes: a size it fails at (it delivers inside the
  publish request, which gunicorn ends after 900 s) ends its sizes, noted under the table.

``--plot`` draws deliveries/s against N, a line per hub beside its raw client with the ratio
at each point; runs saved with ``--save`` are merged into it with ``--plot-add`` (the same
label's sizes make one line, so the run at 1,000,000 extends the one up to 100,000), and
``--replot`` draws them without measuring anything.

::

    python bench/hub_deployed.py                     # N = 10,000: all four setups
    python bench/hub_deployed.py --quick             # N = 200, SQLite only, 3 publishes (CI)
    python bench/hub_deployed.py --src ../other/src  # another checkout's code
    python bench/hub_deployed.py --setup sqlite --src src --src ../other/src  # both, one run
    python bench/hub_deployed.py --setup postgres --subscribers 2000 --profile
    python bench/hub_deployed.py --setup postgres --wake --insert \
        --subscribers 1000,10000,100000 --save pg.json          # 2 push_worker, 90,000 inserted
    python bench/hub_deployed.py --setup postgres --wake --insert --rounds 1 \
        --subscribers 10000,1000000 --save pg-1m.json           # 1,000,000: one publish
    python bench/hub_deployed.py --replot --plot-add pg.json --plot-add pg-1m.json \
        --plot-add flask-websub.json --plot bench/hub_deployed.png   # draw, measure nothing
    python bench/hub_deployed.py --setup sqlite --src ../other/src --src src --wake  # push_worker

Every wait for deliveries or subscriptions ends with an error once nothing has moved for
``--timeout`` seconds (900), however long it takes in all: a fan-out to 1,000,000 runs for
minutes. The raw client reads the callbacks' URLs from a generator, not a list of N.

The interpreter needs the hub's dependencies with django-tasks-db and psycopg, plus the
``bench-hub`` group (gunicorn; py-spy for ``--profile``; matplotlib for ``--plot``), and
django-tasks-rq for ``--setup rq`` (the ``rq`` extra; Redis from ``--redis-url``). PostgreSQL
is reached through the ``PG*`` variables (127.0.0.1, user postgres); the database ``--pg-db``
is dropped and created. Every process started is killed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import dataclasses
import hashlib
import hmac
import itertools
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BODY = b"<feed>" + b"x" * (2048 - 13) + b"</feed>"  # --body-bytes changes it
SECRET = "bench-secret-0123456789abcdef"
SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


def set_body(size: int) -> None:
    """Make the topic's body (and the raw client's) ``size`` bytes long."""
    global BODY, SIGNATURE
    BODY = b"<feed>" + b"x" * (max(size, 32) - 13) + b"</feed>"
    SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


def version_of(n: int) -> bytes:
    """The topic's n-th version, as long as ``BODY``: a hub may skip unchanged content."""
    return BODY[:6] + b"%012d" % n + BODY[18:]


CONCURRENCY = 100  # the hub's PUSH_HUB_CONCURRENCY default; the raw client uses the same
INTAKE_CONNECTIONS = 8  # the driver's connections to the hub endpoint (gunicorn has 2 workers)
FLASK_WEBSUB = ["flask-websub==0.4.1", "celery>=5.3,<6", "gunicorn>=23"]
PROCESSES: list[subprocess.Popen[bytes]] = []


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own session, so that it and its children can be killed."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=out, start_new_session=True, cwd=log.parent
        )
    PROCESSES.append(process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if process in PROCESSES:
        PROCESSES.remove(process)


def stop_all() -> None:
    for process in reversed(PROCESSES[:]):
        stop(process)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    step: float = 0.05,
    progress: Callable[[], float] | None = None,
) -> None:
    """Wait until ``check()``; give up after ``timeout`` s, or, given ``progress``, once
    ``progress()`` has not changed for ``timeout`` s (a wait as long as N needs)."""
    deadline = time.monotonic() + timeout
    moved = progress() if progress else 0.0
    while not check():
        for process in PROCESSES:
            if process.poll() is not None:
                raise SystemExit(f"{process.args[:4]} exited while waiting for {what}")
        if progress and (now := progress()) != moved:
            moved, deadline = now, time.monotonic() + timeout
        if time.monotonic() > deadline:
            stalled = f" ({moved:,.0f} so far)" if progress else ""
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}{stalled}")
        time.sleep(step)


def answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if only with a 4xx
    except OSError:
        return False


def gunicorn(
    python: str, app: str, env: dict[str, str], work: Path, name: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """Serve ``app`` with 2 sync workers; its base URL and its master process."""
    port = free_port()
    options = ["--workers", "2", "--worker-class", "sync", "--bind", f"127.0.0.1:{port}"]
    options += ["--backlog", "2048", "--timeout", "900", "--graceful-timeout", "5"]
    helps = subprocess.run([python, "-m", "gunicorn", "--help"], capture_output=True, text=True)
    if "--no-control-socket" in helps.stdout:  # gunicorn 25+: else all share one socket path
        options.append("--no-control-socket")
    master = start([python, "-m", "gunicorn", app, *options], env, work / f"{name}.log")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{base}/hub/"), 60, f"{name} to answer", step=0.2)
    return base, master


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux ``/proc``): gunicorn's workers, RQ's work horses."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


# --- the callback server (its own process) -----------------------------------------------

# Shared counters: verifications, deliveries, first and last delivery (time.monotonic,
# system-wide on Linux), deliveries with a wrong or missing signature.
VERIFIED, POSTS, FIRST, LAST, BAD = range(5)


def serve_callbacks(port: int, counters: Any, body_size: int, seen: Any) -> None:
    from aiohttp import web

    set_body(body_size)

    def count(index: int, now: float) -> None:
        with counters.get_lock():
            counters[index] += 1
            if index == POSTS:
                counters[FIRST] = counters[FIRST] or now
                counters[LAST] = now

    async def verify(request: web.Request) -> web.Response:
        if request.query.get("hub.mode") in ("subscribe", "unsubscribe"):
            count(VERIFIED, time.monotonic())
            return web.Response(text=request.query.get("hub.challenge", ""))
        return web.Response(status=204)  # hub.mode=denied

    async def deliver(request: web.Request) -> web.Response:
        body = await request.read()
        if request.match_info["topic"] == "big":  # which subscriber: missing and duplicates
            n = int(request.match_info["n"])
            if n < len(seen):
                seen[n] = min(seen[n] + 1, 255)
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Hub-Signature", ""), expected):
            count(BAD, 0)
        count(POSTS, time.monotonic())
        return web.Response(status=204)

    versions = itertools.count()

    async def topic(request: web.Request) -> web.Response:
        # flask-websub refuses content without both links; our hub ignores them.
        links = f'<{request.url}>; rel="self", <http://127.0.0.1/hub>; rel="hub"'
        headers = {"Content-Type": "application/atom+xml", "Link": links}
        return web.Response(body=version_of(next(versions)), headers=headers)

    async def main() -> None:
        app = web.Application(client_max_size=2 * len(BODY) + 1024**2)
        app.router.add_get("/cb/{topic}/{n}", verify)
        app.router.add_post("/cb/{topic}/{n}", deliver)
        app.router.add_get("/topic/{name}", topic)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        await asyncio.Event().wait()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


class Callbacks:
    """The callback server's process and its counters."""

    def __init__(self, subscribers: int = 0) -> None:
        self.counters = multiprocessing.Array("d", 5)
        # Deliveries per subscriber of the big topic (capped at 255): one byte each.
        self.seen = multiprocessing.Array(ctypes.c_ubyte, max(subscribers, 1), lock=False)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = multiprocessing.Process(
            target=serve_callbacks,
            args=(port, self.counters, len(BODY), self.seen),
            daemon=True,
        )
        self.process.start()
        wait_until(lambda: answers(f"{self.base}/topic/warm"), 30, "the callback server")

    def __getitem__(self, index: int) -> float:
        value: float = self.counters[index]
        return value

    def reset(self) -> None:
        with self.counters.get_lock():
            for index in (POSTS, FIRST, LAST, BAD):
                self.counters[index] = 0
        ctypes.memset(ctypes.addressof(self.seen), 0, len(self.seen))

    def missing_and_duplicates(self, n: int) -> tuple[int, int]:
        """Of the big topic's first ``n`` subscribers: how many got nothing since the last
        reset, and how many got it more than once."""
        got = bytes(self.seen)[:n]
        missing = got.count(0)
        return missing, n - missing - got.count(1)

    def callback(self, topic: str, n: int) -> str:
        return f"{self.base}/cb/{topic}/{n}"

    def topic(self, name: str) -> str:
        return f"{self.base}/topic/{name}"

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --- the driver's requests ---------------------------------------------------------------


async def post_forms(url: str, forms: list[dict[str, str]], connections: int) -> list[float]:
    """POST each form to ``url`` over ``connections`` connections; the time of each answer."""
    import aiohttp

    done: list[float] = []
    queue = iter(forms)

    async def client(session: aiohttp.ClientSession) -> None:
        for form in queue:
            async with session.post(url, data=form) as response:
                await response.read()
                if response.status != 202:
                    raise SystemExit(f"{url} answered {response.status}: {await response.text()}")
            done.append(time.monotonic())

    timeout = aiohttp.ClientTimeout(total=None, sock_read=900)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(connections)))
    return done


def intake_rate(url: str, forms: list[dict[str, str]]) -> tuple[float, float, float]:
    """``(requests/s, first sent, last answered)`` for POSTing ``forms`` to ``url``."""
    started = time.monotonic()
    done = asyncio.run(post_forms(url, forms, INTAKE_CONNECTIONS))
    return len(forms) / (done[-1] - started), started, done[-1]


async def raw_posts(urls: Iterator[str]) -> None:
    import aiohttp

    headers = {"Content-Type": "application/atom+xml", "X-Hub-Signature": SIGNATURE}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    queue = iter(urls)  # CONCURRENCY senders share it: no task (nor URL) per subscriber
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            for url in queue:
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    response.raise_for_status()

        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))


def publish(hub: str, topic: str) -> float:
    """POST hub.mode=publish; the time its answer took (s)."""
    import urllib.request

    # hub.url is the usual name; flask-websub reads only hub.topic (ours takes both, once).
    data = urlencode({"hub.mode": "publish", "hub.url": topic, "hub.topic": topic}).encode()
    started = time.monotonic()
    request = urllib.request.Request(hub, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=900) as response:
        response.read()
    return time.monotonic() - started


# --- one setup: a hub, its database and workers ------------------------------------------


@dataclass
class Setup:
    name: str
    label: str
    hub: str = ""  # the hub endpoint
    bare: str = ""  # the baseline view on the same server
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    worker_kind: str = "db_worker"
    web: subprocess.Popen[bytes] | None = None  # gunicorn's master
    # Insert verified subscriptions (topic, callback prefix, first, last) without requests.
    seed: Callable[[str, str, int, int], None] | None = None
    max_subscribers: int = 0  # the largest N measured (0: any)
    memory: Memory | None = None
    count_subscriptions: Callable[[str], int] = lambda topic: 0
    pending_deliveries: Callable[[], int] = lambda: 0
    unfinished: Callable[[], str] = lambda: "-"  # the hub's open fan-outs, for an error
    # PostgreSQL only: the rows written so far to each of the hub's tables, once the counts
    # have settled; each hub table's size.
    hub_writes: Callable[[], dict[str, int]] | None = None
    table_sizes: Callable[[], dict[str, int]] | None = None
    versions: str = ""


@dataclass
class Figures:
    label: str
    subscribers: int
    versions: str = ""
    subscribe_rate: float = 0
    bare_rate: float = 0
    alone_rate: float = 0  # subscribe req/s with the task workers stopped
    alone_bare: float = 0  # the bare view's, likewise
    verified_after: float = 0  # s after the last subscribe request was answered
    verify_rate: float = 0  # active subscriptions/s, from the first request
    hub_rates: list[float] = field(default_factory=list)
    steady_rates: list[float] = field(default_factory=list)  # from the first delivery on
    raw_rates: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    first_delivery: list[float] = field(default_factory=list)
    publish_answer: list[float] = field(default_factory=list)
    latency_first: list[float] = field(default_factory=list)
    latency_last: list[float] = field(default_factory=list)
    seeded: int = 0  # subscriptions inserted directly (no request, no verification)
    worker_memory: list[tuple[float, float]] = field(default_factory=list)  # MB: after, peak
    worker_kind: str = "db_worker"
    # PostgreSQL: rows the hub wrote per delivery in each round, to its tables but the
    # subscriptions', and to the subscriptions'; each table's size after the last fan-out.
    hub_rows: list[float] = field(default_factory=list)
    subscription_rows: list[float] = field(default_factory=list)
    table_bytes: dict[str, int] = field(default_factory=dict)
    bad_signatures: int = 0
    missing: list[int] = field(default_factory=list)  # subscribers the round's fan-out missed
    duplicates: list[int] = field(default_factory=list)  # subscribers it sent to twice or more
    notes: list[str] = field(default_factory=list)


def django_setup(name: str, src: str, args: argparse.Namespace, work: Path) -> Setup:
    db = "postgres" if name in ("postgres", "rq") else "sqlite"
    workers = args.workers or (2 if db == "postgres" else 1)
    rq = name == "rq"
    sqlite_path = work / "hub.sqlite3"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([src, str(BENCH)]),
        DJANGO_SETTINGS_MODULE="hub_site.settings",
        BENCH_DB=db,
        BENCH_SQLITE=str(sqlite_path),
        PGDATABASE=args.pg_db,
        PYTHONDONTWRITEBYTECODE="1",
        BENCH_TASKS="rq" if rq else "db",
        REDIS_URL=args.redis_url,
    )
    if db == "postgres":
        pg = [
            "-h",
            os.environ.get("PGHOST", "127.0.0.1"),
            "-U",
            os.environ.get("PGUSER", "postgres"),
        ]
        subprocess.run(["dropdb", *pg, "--if-exists", args.pg_db], check=True, timeout=60)
        subprocess.run(["createdb", *pg, args.pg_db], check=True, timeout=60)
    manage = [args.python, "-m", "django"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=300, cwd=work)
    versions = subprocess.run(
        [
            args.python,
            "-c",
            "import sys, django, aiohttp, django_push; print(f'Python {sys.version.split()[0]}, "
            "Django {django.get_version()}, aiohttp {aiohttp.__version__}, django_push from "
            "{django_push.__file__}')",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    # --wake: the source tree's push_worker (woken on commit) where it has one, on a free port.
    kind = "rqworker" if rq else "db_worker"
    if (
        not rq
        and args.wake
        and (Path(src) / "django_push/hub/management/commands/push_worker.py").exists()
    ):
        kind = "push_worker"
        env["BENCH_WAKEUP"] = f"127.0.0.1:{free_udp_port()}"
    setup = Setup(name, f"{Path(src).parent.name} {db}, {workers} {kind}", worker_kind=kind)
    setup.versions = versions
    if rq:  # jobs a killed earlier run left in the queue must not reach these workers
        empty = "import django; django.setup(); import django_rq; django_rq.get_queue().empty()"
        subprocess.run([args.python, "-c", empty], env=env, check=True, timeout=60, cwd=work)
        rq_version = [args.python, "-c", "import rq; print(f'rq {rq.__version__}')"]
        found = subprocess.run(rq_version, env=env, capture_output=True, text=True, check=True)
        setup.versions += ", " + found.stdout.strip()
    base, setup.web = gunicorn(args.python, "hub_site.wsgi:application", env, work, "gunicorn")
    setup.hub, setup.bare = f"{base}/hub/", f"{base}/bare/"
    interval = ["--interval", str(args.interval)] if args.interval is not None else []
    for n in range(workers):
        command = [*manage, kind, "--no-startup-delay", *interval]
        if rq:  # what docs/deployment.rst gives
            command = [*manage, "rqworker", "--with-scheduler", "--job-class"]
            command += ["django_tasks_rq.Job", "default"]
        setup.workers.append(start(command, env, work / f"{kind}-{n}.log"))

    def seed(topic: str, prefix: str, first: int, last: int) -> None:
        command = [*manage, "bench_seed", topic, prefix, str(first), str(last)]
        command += ["--secret", SECRET]
        subprocess.run(
            command, env=env, check=True, cwd=work, timeout=3600, stdout=subprocess.DEVNULL
        )

    setup.seed = seed

    if db == "postgres":
        import psycopg

        connection = psycopg.connect(
            host=os.environ.get("PGHOST", "127.0.0.1"),
            user=os.environ.get("PGUSER", "postgres"),
            dbname=args.pg_db,
            autocommit=True,
        )

        def query(sql: str, *params: str) -> int:
            row = connection.execute(sql.replace("?", "%s"), params).fetchone()
            return int(row[0]) if row else 0

        setup.hub_writes = lambda: settled_writes(connection)
        setup.table_sizes = lambda: table_sizes(connection)

    else:

        def query(sql: str, *params: str) -> int:
            with contextlib.closing(sqlite3.connect(sqlite_path, timeout=30)) as connection:
                row = connection.execute(sql, params).fetchone()
                return int(row[0]) if row else 0

    setup.count_subscriptions = lambda topic: query(
        "SELECT count(*) FROM push_hub_hubsubscription WHERE topic = ?", topic
    )

    def pending_deliveries() -> int:
        """Pending delivery rows, plus fan-outs not finished (a checkout with ranges)."""
        rows = query("SELECT count(*) FROM push_hub_delivery WHERE status = ?", "pending")
        try:
            return rows + query("SELECT count(*) FROM push_hub_content WHERE finished_at IS NULL")
        except (sqlite3.OperationalError, psycopg_errors()) as exc:  # one row per delivery
            if "finished_at" not in str(exc):
                raise
            return rows

    setup.pending_deliveries = pending_deliveries

    def unfinished() -> str:
        """Fan-outs not finished, ranges not done, failure rows pending (ranges' code)."""
        return "\n".join(
            f"{what}: {query(sql)}"
            for what, sql in [
                (
                    "contents not finished",
                    "SELECT count(*) FROM push_hub_content WHERE finished_at IS NULL",
                ),
                ("ranges not done", "SELECT count(*) FROM push_hub_span WHERE status <> 'done'"),
                (
                    "ranges claimed",
                    "SELECT count(*) FROM push_hub_span WHERE claimed_until "
                    "IS NOT NULL AND status <> 'done'",
                ),
                (
                    "failure rows pending",
                    "SELECT count(*) FROM push_hub_delivery WHERE status = 'pending'",
                ),
            ]
        )

    setup.unfinished = unfinished
    return setup


# The hub's tables: the app label's prefix (LIKE's "_" escaped).
HUB_TABLES = r"relname LIKE 'push\_hub\_%'"
SUBSCRIPTIONS = "push_hub_hubsubscription"


def hub_writes(connection: Any) -> dict[str, int]:
    """Rows inserted, updated and deleted so far in each of the hub's tables, as the
    cumulative statistics have them now."""
    connection.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction caches them
    rows = connection.execute(
        "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
        f" WHERE {HUB_TABLES}"
    ).fetchall()
    return {str(name): int(count) for name, count in rows}


def settled_writes(connection: Any, quiet: float = 3.0, bound: float = 30.0) -> dict[str, int]:
    """``hub_writes`` once it has not changed for ``quiet`` s (at most ``bound`` s): each
    backend flushes its counts when idle, at most once a second."""
    reading, since = hub_writes(connection), time.monotonic()
    deadline = since + bound
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = hub_writes(connection)
        if now != reading:
            reading, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return reading


def table_sizes(connection: Any) -> dict[str, int]:
    """Each hub table's size in bytes, its indexes and TOAST included."""
    rows = connection.execute(
        "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables"
        f" WHERE {HUB_TABLES} ORDER BY relname"
    ).fetchall()
    return {str(name): int(size) for name, size in rows}


def psycopg_errors() -> type[Exception]:
    """psycopg's error class, where installed (a SQLite-only run may not have it)."""
    try:
        import psycopg
    except ImportError:
        return sqlite3.OperationalError
    return psycopg.errors.UndefinedColumn


def flask_websub_setup(args: argparse.Namespace, work: Path) -> Setup:
    """flask-websub in its own virtual environment (made once, under .venv/)."""
    venv = REPO / ".venv" / "bench-flask-websub"
    python = str(venv / "bin" / "python")
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv not found: it makes flask-websub's environment")
    if not Path(python).exists():
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    install = [uv, "pip", "install", "--quiet", "--python", python, *FLASK_WEBSUB]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"flask-websub did not install: {done.stderr.strip()[-500:]}")
    sqlite_path = work / "flask-websub.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(BENCH), BENCH_SQLITE=str(sqlite_path))
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('flask-websub'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    setup = Setup("flask-websub", f"flask-websub {version} (Celery eager), SQLite")
    setup.max_subscribers = args.flask_websub_max
    setup.versions = f"flask-websub {version} in {venv.name}"
    base, setup.web = gunicorn(python, "flask_websub_hub:app", env, work, "flask-websub")
    setup.hub, setup.bare = f"{base}/hub", f"{base}/bare"

    def query(sql: str, *params: str) -> int:
        with contextlib.closing(sqlite3.connect(sqlite_path, timeout=30)) as connection:
            row = connection.execute(sql, params).fetchone()
            return int(row[0]) if row else 0

    setup.count_subscriptions = lambda topic: query(
        "SELECT count(*) FROM hub WHERE topic_url = ?", topic
    )
    return setup


# --- the measures ------------------------------------------------------------------------


def subscribe_forms(
    callbacks: Callbacks, topic: str, count: int, first: int = 0
) -> list[dict[str, str]]:
    return [
        {
            "hub.mode": "subscribe",
            "hub.topic": callbacks.topic(topic),
            "hub.callback": callbacks.callback(topic, n),
            "hub.secret": SECRET,
            "hub.lease_seconds": "864000",
        }
        for n in range(first, count)
    ]


def subscribe(
    setup: Setup, callbacks: Callbacks, figures: Figures, args: argparse.Namespace, done: int
) -> None:
    """Subscribe requests from ``done`` up to N (at most ``--http-subscribers``) between two
    runs of the bare view, then wait until all are active; the rest of N is inserted directly."""
    n = figures.subscribers
    topic_url = callbacks.topic("big")
    through_http = max(min(n, args.http_subscribers) - done, 0)
    if through_http:
        subscribe_requests(setup, callbacks, figures, args, done, done + through_http)
    first = done + through_http
    if first < n:
        if setup.seed is None:
            raise SystemExit(f"{setup.label} cannot insert N = {n:,} past --http-subscribers")
        if not args.insert:
            raise SystemExit(f"{setup.label}: N = {n:,} needs --insert, past --http-subscribers")
        started = time.monotonic()
        setup.seed(topic_url, callbacks.callback("big", 0)[:-1], first, n)
        wait_until(lambda: setup.count_subscriptions(topic_url) >= n, 60, f"{n} subscriptions")
        figures.seeded = n - first
        print(
            f"  subscribers {first}..{n}: inserted directly as verified subscriptions (the rows "
            f"a verification writes), no request, in {time.monotonic() - started:.0f} s",
            flush=True,
        )


def subscribe_requests(
    setup: Setup,
    callbacks: Callbacks,
    figures: Figures,
    args: argparse.Namespace,
    done: int,
    n: int,
) -> None:
    """Subscribe requests ``done``..``n`` between two runs of the bare view; then wait until
    all n are active."""
    topic_url = callbacks.topic("big")
    bare_forms = subscribe_forms(callbacks, "bare", min(n - done, args.bare_requests))
    intake_rate(setup.bare, bare_forms[:20])  # both gunicorn workers load the view
    before, _, _ = intake_rate(setup.bare, bare_forms)
    web = children(setup.web.pid) if setup.web else []
    with profiling(setup, args, f"verification-{n}"):
        with profiling(setup, args, f"intake-{n}", web):  # the gunicorn workers
            rate, first, last = intake_rate(setup.hub, subscribe_forms(callbacks, "big", n, done))
        wait_until(
            lambda: setup.count_subscriptions(topic_url) >= n,
            args.timeout,
            f"{n} subscriptions to be active",
            step=0.2,
            progress=lambda: setup.count_subscriptions(topic_url),
        )
    active = time.monotonic()
    after, _, _ = intake_rate(setup.bare, bare_forms)
    figures.subscribe_rate, figures.bare_rate = rate, (before + after) / 2
    figures.verified_after = active - last
    figures.verify_rate = (n - done) / (active - first)
    print(
        f"  subscribe {done}..{n}: {rate:,.0f} req/s (bare INSERT {before:,.0f} before, "
        f"{after:,.0f} after); all active {active - last:.1f} s after the last request, "
        f"{figures.verify_rate:,.0f}/s from the first",
        flush=True,
    )
    if setup.workers:
        endpoint_alone(setup, callbacks, figures, bare_forms, done)


def endpoint_alone(
    setup: Setup,
    callbacks: Callbacks,
    figures: Figures,
    bare_forms: list[dict[str, str]],
    done: int,
) -> None:
    """The endpoint against the bare view with the task workers stopped (SIGSTOP): what the
    request itself costs, without the verifying workers taking the CPU. As many subscribe
    requests as bare ones, to their own topic; verified once the workers go on (unmeasured)."""
    alone = callbacks.topic("alone")
    expected = setup.count_subscriptions(alone) + len(bare_forms)
    forms = subscribe_forms(callbacks, "alone", done + len(bare_forms), done)
    for worker in setup.workers:  # its process group: an rqworker's work horse too
        os.killpg(worker.pid, signal.SIGSTOP)
    try:
        before, _, _ = intake_rate(setup.bare, bare_forms)
        rate, _, _ = intake_rate(setup.hub, forms)
        after, _, _ = intake_rate(setup.bare, bare_forms)
    finally:
        for worker in setup.workers:
            os.killpg(worker.pid, signal.SIGCONT)
    figures.alone_rate, figures.alone_bare = rate, (before + after) / 2
    print(
        f"  with the workers stopped: {rate:,.0f} subscribe req/s (bare INSERT {before:,.0f} "
        f"before, {after:,.0f} after), ratio {rate / figures.alone_bare:.2f}",
        flush=True,
    )
    wait_until(
        lambda: setup.count_subscriptions(alone) >= expected,
        900,
        "the verifications of those requests",
        step=0.2,
    )


def delivered(
    callbacks: Callbacks, count: int, timeout: float, what: str = "deliveries", step: float = 0.01
) -> None:
    """Wait until the callback server has counted ``count`` deliveries, for as long as
    deliveries keep arriving."""
    wait_until(
        lambda: callbacks[POSTS] >= count, timeout, what, step, progress=lambda: callbacks[POSTS]
    )


def wait_idle(setup: Setup, timeout: float) -> None:
    wait_until(lambda: setup.pending_deliveries() == 0, timeout, "pending deliveries", step=0.2)


def fanout(setup: Setup, callbacks: Callbacks, figures: Figures, args: argparse.Namespace) -> None:
    """Each publish between two runs of the raw client: ratio over their mean."""
    n = figures.subscribers
    topic = callbacks.topic("big")

    def raw() -> float:
        callbacks.reset()
        started = time.monotonic()
        asyncio.run(raw_posts(callbacks.callback("big", i) for i in range(n)))
        delivered(callbacks, n, args.timeout, "raw deliveries")
        return n / (callbacks[LAST] - started)

    before = raw()
    for round_ in range(args.rounds):
        written = setup.hub_writes() if setup.hub_writes else None
        callbacks.reset()
        started = time.monotonic()
        figures.publish_answer.append(publish(setup.hub, topic))
        delivered(callbacks, n, args.timeout)
        rate = n / (callbacks[LAST] - started)
        figures.steady_rates.append((n - 1) / max(callbacks[LAST] - callbacks[FIRST], 1e-6))
        figures.first_delivery.append(callbacks[FIRST] - started)
        figures.bad_signatures += int(callbacks[BAD])
        wait_idle(setup, args.timeout)
        missing, duplicates = callbacks.missing_and_duplicates(n)
        figures.missing.append(missing)
        figures.duplicates.append(duplicates)
        writes = ""
        if setup.hub_writes and written is not None:
            now = setup.hub_writes()
            delta = {name: count - written.get(name, 0) for name, count in now.items()}
            subscriptions = delta.pop(SUBSCRIPTIONS, 0)
            hub, count = sum(delta.values()), max(int(callbacks[POSTS]), 1)
            figures.hub_rows.append(hub / count)
            figures.subscription_rows.append(subscriptions / count)
            each = ", ".join(
                f"{name.removeprefix('push_hub_')} {rows:,}" for name, rows in delta.items() if rows
            )
            writes = (
                f"; the hub wrote {hub:,} rows ({each or 'none'}): {hub / count:.4f} per "
                f"delivery, and {subscriptions:,} to subscriptions ({subscriptions / count:.4f})"
            )
        after = raw()
        figures.hub_rates.append(rate)
        figures.raw_rates += [before, after]
        figures.ratios.append(rate / ((before + after) / 2))
        print(
            f"  fan-out round {round_ + 1}: hub {rate:,.0f}/s, raw {before:,.0f} and "
            f"{after:,.0f}/s, ratio {figures.ratios[-1]:.2f}; publish answered in "
            f"{1000 * figures.publish_answer[-1]:.0f} ms, first delivery after "
            f"{1000 * figures.first_delivery[-1]:.0f} ms, {missing:,} subscribers missed and "
            f"{duplicates:,} sent to twice{writes}",
            flush=True,
        )
        before = after
    if args.profile and n == args.subscribers[-1]:  # one more publish, sampled, not counted
        callbacks.reset()
        with profiling(setup, args, f"fan-out-{n}"):
            started = time.monotonic()
            publish(setup.hub, topic)
            delivered(callbacks, n, args.timeout)
        print(f"  profiled publish: {n / (callbacks[LAST] - started):,.0f}/s", flush=True)
        wait_idle(setup, args.timeout)
    if setup.table_sizes:
        figures.table_bytes = setup.table_sizes()
        each = ", ".join(
            f"{name.removeprefix('push_hub_')} {size / 2**20:,.1f}"
            for name, size in figures.table_bytes.items()
        )
        print(
            f"  the hub's tables after the last fan-out to {n:,}: "
            f"{sum(figures.table_bytes.values()) / 2**20:,.1f} MB ({each} MB)",
            flush=True,
        )
    figures.worker_kind = setup.worker_kind
    watch = setup.memory.of if setup.memory else memory_of
    figures.worker_memory = [watch(worker.pid) for worker in setup.workers]
    if setup.workers:
        each = ", ".join(f"{rss:.0f} / {peak:.0f}" for rss, peak in figures.worker_memory)
        print(
            f"  N = {n:,}: {statistics.median(figures.hub_rates):,.0f} deliveries/s, ratio "
            f"{statistics.median(figures.ratios):.2f}; each {setup.worker_kind}'s RSS after / "
            f"peak: {each} MB",
            flush=True,
        )


class Memory:
    """The workers' resident sets. A db_worker runs tasks itself, so its own peak (VmHWM)
    is the figure; an rqworker forks a work horse per job, whose resident set is sampled
    (every 0.1 s) while it lives, and the peak is the larger of the two."""

    def __init__(self, pids: list[int]) -> None:
        self.horses = dict.fromkeys(pids, 0.0)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.done.wait(0.1):
            for pid in self.horses:
                for child in children(pid):
                    self.horses[pid] = max(self.horses[pid], memory_of(child)[0])

    def of(self, pid: int) -> tuple[float, float]:
        """``(resident now, peak)`` in MB."""
        rss, peak = memory_of(pid)
        return rss, max(peak, self.horses.get(pid, 0.0))

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def memory_of(pid: int) -> tuple[float, float]:
    """A process's resident set and its peak, in MB (Linux ``/proc``)."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(value.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def latency(setup: Setup, callbacks: Callbacks, figures: Figures, args: argparse.Namespace) -> None:
    """Publish to first and last delivery over repeated publishes to the small topic."""
    count, topic = args.latency_subscribers, callbacks.topic("small")
    pause = args.interval if args.interval is not None else 1.0
    for _ in range(args.publishes):
        time.sleep(random.uniform(0, pause))  # arrive anywhere in the workers' poll cycle
        callbacks.reset()
        started = time.monotonic()
        publish(setup.hub, topic)
        delivered(callbacks, count, args.timeout, step=0.001)
        figures.latency_first.append(callbacks[FIRST] - started)
        figures.latency_last.append(callbacks[LAST] - started)
        figures.bad_signatures += int(callbacks[BAD])
        wait_idle(setup, args.timeout)
    first, last = figures.latency_first, figures.latency_last
    print(
        f"  latency over {len(first)} publishes to {count}: first p50 "
        f"{1000 * percentile(first, 50):.0f} ms p99 {1000 * percentile(first, 99):.0f} ms, "
        f"last p50 {1000 * percentile(last, 50):.0f} ms p99 {1000 * percentile(last, 99):.0f} ms",
        flush=True,
    )


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# --- profiling the workers ---------------------------------------------------------------


@contextlib.contextmanager
def profiling(
    setup: Setup, args: argparse.Namespace, phase: str, pids: list[int] | None = None
) -> Iterator[None]:
    """Sample every task worker (or the processes ``pids``) with py-spy during ``phase``;
    print where the time went."""
    if pids is None:
        pids = [worker.pid for worker in setup.workers]
    if not (args.profile and phase and pids):
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    outputs, recorders = [], []
    for pid in pids:
        out = Path(f"profile-{setup.name}-{phase}-{pid}.txt").resolve()
        command = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
        recorders.append(
            subprocess.Popen(
                [*command, "--output", str(out), "--nonblocking", "--subprocesses"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        outputs.append(out)
    time.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()
    stacks = "\n".join(out.read_text() for out in outputs if out.exists())
    print(f"  profile of {len(pids)} process(es) during {phase}: {', '.join(map(str, outputs))}")
    print(where_time_goes(stacks))


def where_time_goes(stacks: str, top: int = 15) -> str:
    """Where the samples fell, by kind of work, then the functions most samples were in
    (inclusive share) and the leaves (own share). py-spy leaves out threads it sees idle."""
    kinds: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in stacks.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        total += int(count)
        kind = kind_of_work(";".join(frames))
        kinds[kind] = kinds.get(kind, 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)

    def share(count: int) -> str:
        return f"{100 * count / max(total, 1):5.1f}%"

    lines = [f"    {total} samples; by kind of work:"]
    ranked = sorted(kinds.items(), key=lambda item: -item[1])[:10]
    lines += [f"    {share(count)}  {kind}" for kind, count in ranked]
    lines.append("    functions (inclusive share, threading and asyncio plumbing left out):")
    plumbing = ("(<frozen", "(threading.py)", "(asyncio/", "(concurrent/futures/", "management/")
    shown = [item for item in inclusive.items() if not any(p in item[0] for p in plumbing)]
    for frame, count in sorted(shown, key=lambda item: -item[1])[:top]:
        lines.append(f"    {share(count)}  {frame}")
    lines.append("    leaves (own share):")
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:8]:
        lines.append(f"    {share(count)}  {frame}")
    return "\n".join(lines)


def kind_of_work(stack: str) -> str:
    """One sample's stack, named by the work it was doing (the first rule that matches)."""
    if "django_push/http.py" in stack:
        return (
            "HTTP out (django_push.http, aiohttp): "
            + stack.split(" (django_push/http.py")[0].rsplit(";", 1)[-1]
        )
    if "signatures.py" in stack:
        return "signing"
    if "close_old_connections" in stack or "get_new_connection" in stack:
        return "closing and reopening the database connection between tasks"
    if "django_push" in stack:
        hub = re.findall(r";([\w.<>]+) \(django_push/hub/(\w+)\.py", stack)
        where = f"{hub[-1][1]}.{hub[-1][0].rsplit('.', 1)[-1]}" if hub else "django_push"
        database = any(name in stack for name in ("django/db/", "psycopg", "sqlite3"))
        return f"{'database' if database else 'Python'} in {where}"
    if "perform_job" in stack:
        return "rqworker's work horse: loading the job, saving its result"
    if "rq/" in stack:
        return "rqworker: dequeuing, forking a work horse per job, its bookkeeping"
    if "Worker.run_task (db_worker.py)" in stack:
        return "db_worker: loading the task, saving its result"
    if "Worker.run (db_worker.py)" in stack:
        return "db_worker: polling for and claiming the next task"
    if "async_to_sync" in stack or "Thread._bootstrap" in stack or "run_until_complete" in stack:
        return "async_to_sync: a thread and an event loop per call"
    if "django/db/" in stack or "psycopg" in stack:
        return "database outside django_push (Django's middleware, sessions)"
    if "gunicorn" in stack:
        return "gunicorn and Django around the view (parsing, middleware, response)"
    return "other"


# --- putting it together -----------------------------------------------------------------


def measure(name: str, src: str, args: argparse.Namespace) -> list[Figures]:
    with tempfile.TemporaryDirectory(prefix=f"bench-hub-{name}-") as tmp:
        work = Path(tmp)
        callbacks = Callbacks(max(args.subscribers))
        memory = Memory([])
        try:
            if name == "flask-websub":
                setup = flask_websub_setup(args, work)
            else:
                setup = django_setup(name, src, args, work)
            print(f"[{setup.label}] {setup.versions}", flush=True)
            setup.memory = memory = Memory([worker.pid for worker in setup.workers])
            # The small topic's subscribers first (not measured), then the measured N.
            intake_rate(setup.hub, subscribe_forms(callbacks, "small", args.latency_subscribers))
            small = callbacks.topic("small")
            wait_until(
                lambda: setup.count_subscriptions(small) >= args.latency_subscribers,
                args.timeout,
                "the small topic's subscriptions",
            )
            # Subscribers are added up to each size in turn; each size gets its fan-out.
            results, done = [], 0
            sizes = [n for n in args.subscribers if n <= (setup.max_subscribers or n)]
            for size in sizes or args.subscribers[:1]:
                figures = Figures(setup.label, size, setup.versions)
                try:
                    subscribe(setup, callbacks, figures, args, done)
                    fanout(setup, callbacks, figures, args)
                except (Exception, SystemExit) as exc:
                    # flask-websub is measured as far as it goes (it delivers inside the
                    # publish request, which gunicorn ends after 900 s); a failure of our
                    # hub, or an interruption (SystemExit with a number), ends the run.
                    interrupted = isinstance(exc, SystemExit) and not isinstance(exc.code, str)
                    if name != "flask-websub" or not results or interrupted:
                        raise
                    note = f"stopped at N = {size:,}: {str(exc)[:300]}"
                    print(f"  {setup.label} {note}", flush=True)
                    results[-1].notes.append(note)
                    break
                results.append(figures)
                done = size
            with profiling(setup, args, "latency"):
                latency(setup, callbacks, results[-1], args)
            if len(results) > 1 and setup.workers:
                growth(results)
            return results
        except (Exception, SystemExit) as exc:
            if isinstance(exc, SystemExit) and not isinstance(exc.code, str):
                raise  # interrupted
            logs = sorted(work.glob("*.log"))
            for log in logs:
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-1500:]}")
            with contextlib.suppress(Exception):
                print(f"--- the hub's unfinished work\n{setup.unfinished()}")
            raise
        finally:
            memory.stop()
            stop_all()
            callbacks.close()


def growth(results: list[Figures]) -> None:
    """How much each worker's resident set grew from each smaller N to the largest."""
    large = results[-1]
    for small in results[:-1]:
        pairs = zip(small.worker_memory, large.worker_memory, strict=True)
        each = ", ".join(f"{b[0] - a[0]:+.0f} / {b[1] - a[1]:+.0f}" for a, b in pairs)
        print(
            f"  {large.worker_kind} RSS growth from N = {small.subscribers:,} to "
            f"{large.subscribers:,}, after / peak: {each} MB",
            flush=True,
        )


def table(results: list[Figures]) -> str:
    def ms(value: float) -> str:
        return f"{1000 * value:,.0f} ms"

    def percentiles(values: list[float]) -> str:
        return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}" if values else "-"

    header = [
        "setup",
        "N",
        "subscribe req/s",
        "ratio to bare INSERT",
        "workers stopped",
        "all active after last request",
        "active/s from first request",
        "deliveries/s",
        "after the first",
        "ratio to raw client",
        "publish answered",
        "first delivery",
        "hub rows written per delivery",
        "subscription rows per delivery",
        "hub tables' size after",
        "latency first p50 / p99",
        "latency last p50 / p99",
        "each worker's RSS after / peak",
    ]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for fig in results:
        ratios = f"{statistics.median(fig.ratios):.2f}"
        if len(fig.ratios) > 1:
            ratios += f" ({min(fig.ratios):.2f}-{max(fig.ratios):.2f})"
        intake = ["-", "-", "-", "-", "-"]
        if fig.bare_rate:  # some subscribers were requested through the endpoint
            intake = [
                f"{fig.subscribe_rate:,.0f}",
                f"{fig.subscribe_rate / fig.bare_rate:.2f}",
                f"{fig.alone_rate / fig.alone_bare:.2f}" if fig.alone_bare else "-",
                f"{fig.verified_after:.1f} s",
                f"{fig.verify_rate:,.0f}",
            ]
        if fig.seeded:  # the rest inserted directly: no activation time to show
            intake[3:] = [f"{fig.seeded:,} inserted", "-"]
        row = [
            fig.label,
            f"{fig.subscribers:,}",
            *intake,
            f"{statistics.median(fig.hub_rates):,.0f}",
            f"{statistics.median(fig.steady_rates):,.0f}",
            ratios,
            ms(statistics.median(fig.publish_answer)),
            ms(statistics.median(fig.first_delivery)),
            f"{statistics.median(fig.hub_rows):.4f}" if fig.hub_rows else "-",
            f"{statistics.median(fig.subscription_rows):.4f}" if fig.subscription_rows else "-",
            f"{sum(fig.table_bytes.values()) / 2**20:,.0f} MB" if fig.table_bytes else "-",
            percentiles(fig.latency_first),
            percentiles(fig.latency_last),
            ", ".join(f"{rss:.0f} / {peak:.0f}" for rss, peak in fig.worker_memory) + " MB"
            if fig.worker_memory
            else "-",
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [f"- {fig.label}: {note}" for fig in results for note in fig.notes]
    return "\n".join(lines)


def plot(results: list[Figures], path: Path) -> None:
    """Deliveries/s against N: a line per hub (runs with the same label merged, the median
    of all their publishes at each N, sorted by N) with its ratio to the raw client at each
    point, and the raw client measured beside it, dashed, in the same colour. A hub measured
    at fewer sizes (flask-websub stops at ``--flask-websub-max``) ends where its sizes end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    figure, axes = plt.subplots(figsize=(9, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    measured = [fig for fig in results if fig.hub_rates]
    largest = max(fig.subscribers for fig in measured)
    for index, label in enumerate(dict.fromkeys(fig.label for fig in measured)):
        by_size: dict[int, list[Figures]] = {}
        for fig in measured:
            if fig.label == label:
                by_size.setdefault(fig.subscribers, []).append(fig)
        sizes = sorted(by_size)
        hub = [statistics.median([r for fig in by_size[n] for r in fig.hub_rates]) for n in sizes]
        raw = [statistics.median([r for fig in by_size[n] for r in fig.raw_rates]) for n in sizes]
        ratios = [statistics.median([r for fig in by_size[n] for r in fig.ratios]) for n in sizes]
        colour = colours[index % len(colours)]
        name = label if sizes[-1] == largest else f"{label} (up to N = {sizes[-1]:,})"
        axes.plot(sizes, hub, "o-", color=colour, label=name)
        axes.plot(sizes, raw, "x--", color=colour, alpha=0.5, label=f"raw client beside {label}")
        for size, rate, ratio in zip(sizes, hub, ratios, strict=True):
            axes.annotate(
                f"{ratio:.2f}",
                (size, rate),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize="x-small",
                color=colour,
            )
    axes.set_xscale("log")
    axes.set_xticks(sorted({fig.subscribers for fig in measured}))
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k")
    )
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("subscribers (N, log scale); at each point the ratio to the raw client")
    axes.set_ylabel(f"deliveries/s ({len(BODY) / 1024:,.0f} KB, sha256)")
    axes.set_title("Fan-out as deployed, 127.0.0.1 (each hub beside its raw client)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 200, SQLite only (CI)")
    parser.add_argument(
        "--subscribers",
        help="N, or sizes N1,N2,... measured in turn (default 10000; quick: 200)",
    )
    parser.add_argument(
        "--setup",
        action="append",
        choices=["sqlite", "postgres", "rq", "flask-websub"],
        help="what to measure (default: all four; quick: sqlite); rq: PostgreSQL and RQ workers",
    )
    parser.add_argument(
        "--http-subscribers",
        type=int,
        default=10_000,
        help="subscribe at most this many through the endpoint (default 10000); a larger N "
        "needs --insert",
    )
    parser.add_argument(
        "--insert",
        action="store_true",
        help="insert the subscribers past --http-subscribers straight into the hub's tables, "
        "as the rows a verification writes (manage.py bench_seed: 1,000,000 in about 25 s on "
        "PostgreSQL); for the big runs",
    )
    parser.add_argument(
        "--flask-websub-max",
        type=int,
        default=2000,
        help="the largest N flask-websub is measured at (it delivers in the request; default 2000)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="RQ's Redis for --setup rq (default $REDIS_URL); its default queue is emptied",
    )
    parser.add_argument(
        "--src",
        action="append",
        help="source tree to measure (default: this checkout's src); repeat to compare trees",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter of the hub")
    parser.add_argument("--workers", type=int, help="worker processes (default 1 SQLite, 2 PG)")
    parser.add_argument("--interval", type=float, help="db_worker --interval (default its own)")
    parser.add_argument(
        "--wake", action="store_true", help="push_worker (woken on commit) where --src has it"
    )
    parser.add_argument("--rounds", type=int, help="publishes to N (default 3; quick: 1)")
    parser.add_argument("--publishes", type=int, help="latency publishes (default 200; quick: 3)")
    parser.add_argument("--latency-subscribers", type=int, help="(default 100; quick: 10)")
    parser.add_argument("--bare-requests", type=int, default=1000, help="per baseline run")
    parser.add_argument("--body-bytes", type=int, default=2048, help="the topic's size")
    parser.add_argument("--pg-db", default="bench_hub_deployed")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="give up a wait for deliveries or subscriptions after this long without one (s)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the db_workers")
    parser.add_argument("--plot", help="write a PNG of deliveries/s against N here")
    parser.add_argument("--save", help="write the figures of this run to this JSON file")
    parser.add_argument(
        "--plot-add",
        action="append",
        default=[],
        help="figures saved by an earlier run (--save) to draw in the plot too; repeatable",
    )
    parser.add_argument(
        "--replot", action="store_true", help="measure nothing: draw --plot from --plot-add"
    )
    args = parser.parse_args()
    quick = args.quick
    sizes = args.subscribers or ("200" if quick else "10000")
    args.subscribers = sorted({int(size.replace("_", "")) for size in sizes.split(",")})
    args.rounds = args.rounds or (1 if quick else 3)
    args.publishes = args.publishes or (3 if quick else 200)
    args.latency_subscribers = args.latency_subscribers or (10 if quick else 100)
    if quick:
        args.bare_requests = min(args.bare_requests, 100)
    sources = [str(Path(src).resolve()) for src in args.src or [REPO / "src"]]
    set_body(args.body_bytes)
    setups = args.setup or (["sqlite"] if quick else ["sqlite", "postgres", "rq", "flask-websub"])
    earlier = [
        Figures(**fig) for saved in args.plot_add for fig in json.loads(Path(saved).read_text())
    ]
    if args.replot:
        if not (args.plot and earlier):
            parser.error("--replot draws --plot from the --plot-add files: give both")
        print(table(earlier))
        plot(earlier, Path(args.plot))
        return
    largest = max(args.subscribers)
    if largest > args.http_subscribers and not args.insert and set(setups) - {"flask-websub"}:
        parser.error(
            f"N = {largest:,} is past --http-subscribers ({args.http_subscribers:,}): give "
            "--insert to insert the rest directly, or raise --http-subscribers"
        )

    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Ctrl-C ends the run as SIGTERM does, also inside asyncio.run() (whose own handler only
    # cancels the running task) and where the shell started the bench ignoring SIGINT.
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    started = time.monotonic()
    results = []
    runs = [(name, src) for name in setups for src in sources if name != "flask-websub"]
    runs += [(name, "") for name in setups if name == "flask-websub"]
    for name, src in runs:
        try:
            results += measure(name, src, args)
        except RuntimeError as exc:  # flask-websub could not be set up
            print(f"[{name}] not measured: {exc}", flush=True)
    print()
    size = f"{len(BODY) / 1024:,.0f} KB"
    print(f"{size} bodies signed with sha256; raw client: aiohttp, {CONCURRENCY} connections")
    print(table(results))
    if args.save:
        Path(args.save).write_text(json.dumps([dataclasses.asdict(fig) for fig in results]))
    if args.plot:
        plot(earlier + results, Path(args.plot))
    bad = sum(fig.bad_signatures for fig in results)
    missing = sum(sum(fig.missing) for fig in results)
    twice = sum(sum(fig.duplicates) for fig in results)
    print(
        f"deliveries with a wrong signature: {bad}; subscribers missed: {missing}, sent to "
        f"twice: {twice}; took {time.monotonic() - started:.0f} s"
    )
    if bad:
        raise SystemExit("some deliveries were not signed correctly")
    if missing:
        raise SystemExit("some subscribers did not get the content")


if __name__ == "__main__":
    main()
