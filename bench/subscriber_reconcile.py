"""Reconciliation polls of the subscriber (issue 17): N subscriptions whose topics all answer
``304 Not Modified``, against a raw aiohttp client making the same conditional GETs.

A counting aiohttp server (its own process) serves every topic and answers 304 to the
``If-None-Match`` the subscriptions hold. Each round, the raw client sends N conditional GETs
from one session at the reconciliation's concurrency; then ``reconcile_due()`` polls the N due
subscriptions (claim a batch, poll it concurrently through the guarded session, record).
Prints requests per second of both and their ratio, and per subscription the CPU time of this
process and the database queries of the reconciliation.

    .venv/test-django6-py3.12/bin/python bench/subscriber_reconcile.py            # 10,000, 3 rounds
    .venv/test-django6-py3.12/bin/python bench/subscriber_reconcile.py --quick    # 1,000, 1 round
    .venv/test-django6-py3.12/bin/python bench/subscriber_reconcile.py --pg-db bench_reconcile

(``scripts/test`` makes that environment.) SQLite is a file in WAL mode with immediate
transactions, as docs/deployment.rst recommends; ``--pg-db`` uses PostgreSQL on 127.0.0.1
instead (the database is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ETAG = '"v1"'
BODY = b"<feed>" + b"x" * 2000 + b"</feed>"


def serve(port_queue: multiprocessing.Queue, counter: Any) -> None:  # type: ignore[type-arg]
    from aiohttp import web

    async def topic(request: web.Request) -> web.Response:
        with counter.get_lock():
            counter.value += 1
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304, headers={"ETag": ETAG})
        return web.Response(body=BODY, headers={"ETag": ETAG, "Content-Type": "text/plain"})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/topic/{n}", topic)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


async def raw_client(base: str, count: int, concurrency: int) -> None:
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def get(n: int) -> None:
            async with (
                gate,
                session.get(f"{base}/topic/{n}", headers={"If-None-Match": ETAG}) as response,
            ):
                assert response.status == 304, response.status

        await asyncio.gather(*(get(n) for n in range(count)))


def setup_django(db_path: Path, pg_db: str | None) -> None:
    import django
    from django.conf import settings

    if pg_db:
        import os

        import psycopg

        admin = psycopg.connect(
            host=os.environ.get("PGHOST", "127.0.0.1"),
            user=os.environ.get("PGUSER", "postgres"),
            dbname="postgres",
            autocommit=True,
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{pg_db}"')
        admin.execute(f'CREATE DATABASE "{pg_db}"')
        admin.close()
        database: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "NAME": pg_db,
        }
    else:
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(db_path),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.sites",
            "django_push.subscriber",
        ],
        USE_TZ=True,
        PUSH_DOMAIN="subscriber.test",
        PUSH_ALLOW_PRIVATE_ADDRESSES=True,
        PUSH_SUBSCRIBER_RECONCILE=3600,
        TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}},
        LOGGING_CONFIG=None,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 subscriptions, one round")
    parser.add_argument("--pg-db", help="run on this PostgreSQL database (dropped, created)")
    args = parser.parse_args()
    if args.quick:
        args.subscriptions, args.rounds = 1_000, 1

    counter = multiprocessing.Value("q", 0)
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=serve, args=(ports, counter), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=10)}"

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3", args.pg_db)
        import datetime

        import django
        from django.db import connection
        from django.utils import timezone

        from django_push.conf import conf
        from django_push.subscriber.duplicates import body_digest
        from django_push.subscriber.models import Subscription
        from django_push.subscriber.reconcile import reconcile_due

        n = args.subscriptions
        expires = timezone.now() + datetime.timedelta(days=1)
        Subscription.objects.bulk_create(
            Subscription(
                topic=f"{base}/topic/{i}",
                hub="http://hub.test/",
                verified=True,
                lease_expiration=expires,
                etag=ETAG,
                content_hash=body_digest(BODY),
            )
            for i in range(n)
        )
        print(
            f"{n} subscriptions, all answered 304; batch {conf.PUSH_SUBSCRIBER_RECONCILE_BATCH}, "
            f"concurrency {conf.PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY}; "
            f"{connection.vendor}, Django {django.get_version()}"
        )
        queries = 0

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal queries
            queries += 1
            return execute(sql, params, many, context)

        rows = []
        for round_ in range(1, args.rounds + 1):
            started, cpu = time.perf_counter(), time.process_time()
            asyncio.run(raw_client(base, n, conf.PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY))
            raw_rate = n / (time.perf_counter() - started)
            raw_cpu_us = (time.process_time() - cpu) / n * 1e6

            Subscription.objects.update(next_poll_at=None)
            before, queries = counter.value, 0
            started, cpu = time.perf_counter(), time.process_time()
            with connection.execute_wrapper(count):
                report = reconcile_due()
            rate = n / (time.perf_counter() - started)
            cpu_us = (time.process_time() - cpu) / n * 1e6
            assert dict(report.counts) == {"not_modified": n}, report
            assert counter.value - before == n, counter.value - before
            rows.append((raw_rate, rate, raw_cpu_us, cpu_us, queries / n))
            print(
                f"round {round_}: raw {raw_rate:,.0f} req/s ({raw_cpu_us:.0f} us CPU each), "
                f"reconcile {rate:,.0f} req/s (ratio {rate / raw_rate:.2f}), {cpu_us:.0f} us CPU "
                f"and {queries / n:.4f} queries per subscription ({queries} in all)"
            )
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        raw_rate, rate, raw_cpu_us, cpu_us, per_sub = medians
        print(
            f"median of {args.rounds}: raw {raw_rate:,.0f} req/s ({raw_cpu_us:.0f} us CPU each), "
            f"reconcile {rate:,.0f} req/s, ratio {rate / raw_rate:.2f}, "
            f"{cpu_us:.0f} us CPU/subscription, {per_sub:.4f} queries/subscription"
        )
    server.terminate()


if __name__ == "__main__":
    main()
