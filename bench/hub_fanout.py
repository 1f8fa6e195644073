"""Fan-out throughput of the hub against a raw aiohttp client, in the same run.

A counting aiohttp server (its own process) stands in for N subscribers on 127.0.0.1.
The baseline posts the same body N times from one aiohttp session at the hub's
concurrency; the hub stores one publish and delivers it through its fan-out tasks
(claim a batch, send it concurrently, record outcomes). Prints both rates and the ratio.
With ``--metrics`` (needs ``prometheus_client``), each round also runs the hub's fan-out
with ``PUSH_METRICS`` on, and prints its rate against the fan-out without them, and the
CPU time the hub's process spent per delivery in each (steadier than rates on a busy machine).

    .venv/test-django6-py3.12/bin/python bench/hub_fanout.py [--subscribers N] [--secret]
        [--metrics]

(``scripts/test`` makes that environment; ``--rounds`` defaults to 3.)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

BODY = b"<feed>" + b"x" * 2000 + b"</feed>"


def serve(port_queue: multiprocessing.Queue, counter) -> None:  # type: ignore[type-arg,no-untyped-def]
    from aiohttp import web

    async def callback(request: web.Request) -> web.Response:
        await request.read()
        with counter.get_lock():
            counter.value += 1
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/cb/{n}", callback)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def wait_for(counter, target: int, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while counter.value < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {counter.value} of {target} deliveries arrived")
        time.sleep(0.001)


async def raw_client(base: str, count: int, concurrency: int) -> None:
    import aiohttp

    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/atom+xml"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def post(n: int) -> None:
            async with (
                semaphore,
                session.post(f"{base}/cb/{n}", data=BODY, headers=headers) as response,
            ):
                response.raise_for_status()

        await asyncio.gather(*(post(n) for n in range(count)))


def metrics_cost(topic: str, batches: int = 40, size: int = 500) -> float:
    """CPU microseconds per delivery that metrics add: the POST timing wrapper, and the
    batch's counting, latency query and bucketing, measured alone (with no network, so
    the figure holds however busy the machine is)."""
    from django.conf import settings

    from django_push import metrics
    from django_push.hub import fanout, intake

    settings.PUSH_METRICS = True
    content = intake.accept(topic, BODY, "application/atom+xml", "http://hub.test/hub/")
    assert content is not None
    job = fanout.Job(content.pk, content.fetched_at, 1, "http://127.0.0.1/cb", "")
    outcomes = [fanout.Outcome(job, 204)] * size

    async def answer() -> int:
        return 204

    async def send_all(timed: bool) -> None:
        for _ in range(size):
            await (metrics.timed_post(answer()) if timed else answer())

    spent = 0.0
    for _ in range(batches):
        started = time.process_time()
        asyncio.run(send_all(True))
        metrics.count_deliveries(outcomes, 0)
        spent += time.process_time() - started
        started = time.process_time()
        asyncio.run(send_all(False))
        spent -= time.process_time() - started
    content.delete()
    return spent / (batches * size) * 1e6


def setup_django(db_path: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(db_path),
                # What the deployment docs recommend for SQLite hubs: WAL, immediate transactions.
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                    "transaction_mode": "IMMEDIATE",
                },
            }
        },
        INSTALLED_APPS=["django.contrib.contenttypes", "django_push.hub"],
        USE_TZ=True,
        PUSH_HUB_ALLOW_PRIVATE_ADDRESSES=True,
        PUSH_HUB_TOPICS=["http://publisher.test/"],
        LOGGING_CONFIG=None,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secret", action="store_true", help="sign every delivery (sha256)")
    parser.add_argument(
        "--metrics", action="store_true", help="also fan out with PUSH_METRICS on, each round"
    )
    args = parser.parse_args()

    counter = multiprocessing.Value("q", 0)
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=serve, args=(ports, counter), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=10)}"

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        import datetime

        from django.utils import timezone

        from django_push.conf import conf
        from django_push.hub import health, intake
        from django_push.hub.models import Content, HubSubscription
        from django_push.hub.tasks import start_fanout

        n = args.subscribers
        topic = "http://publisher.test/feed"
        expires = timezone.now() + datetime.timedelta(days=1)
        secret = "s" * 40 if args.secret else ""
        HubSubscription.objects.bulk_create(
            HubSubscription(
                topic=topic,
                callback=f"{base}/cb/{i}",
                secret=secret,
                lease_seconds=86400,
                expires_at=expires,
            )
            for i in range(n)
        )
        print(
            f"{n} subscribers, body {len(BODY)} bytes, batch {conf.PUSH_HUB_BATCH_SIZE}, "
            f"concurrency {conf.PUSH_HUB_CONCURRENCY}, signed: {args.secret}"
        )

        from django.conf import settings

        def hub_round(round_: int) -> tuple[float, float]:
            """Deliveries per second, and CPU microseconds of this process per delivery."""
            start_count = counter.value
            started, cpu = time.perf_counter(), time.process_time()
            content = intake.accept(topic, BODY, "application/atom+xml", "http://hub.test/hub/")
            assert content is not None
            start_fanout(content.pk)  # immediate backend: runs here
            wait_for(counter, start_count + n)
            rate = n / (time.perf_counter() - started)
            cpu_per_delivery = (time.process_time() - cpu) / n * 1e6
            done = Content.objects.filter(pk=content.pk)
            delivered = health.delivery_counts(done)["delivered"]
            assert delivered == n, f"round {round_}: {delivered} of {n} recorded as delivered"
            Content.objects.all().delete()
            return rate, cpu_per_delivery

        raw_rates, hub_rates, metered_rates = [], [], []
        hub_cpu, metered_cpu = [], []
        for round_ in range(1, args.rounds + 1):
            start_count = counter.value
            started = time.perf_counter()
            asyncio.run(raw_client(base, n, conf.PUSH_HUB_CONCURRENCY))
            wait_for(counter, start_count + n)
            raw_rates.append(n / (time.perf_counter() - started))

            # With --metrics, which of the two fan-outs runs first alternates by round.
            order = [False, True] if round_ % 2 else [True, False]
            for metered in order if args.metrics else [False]:
                settings.PUSH_METRICS = metered
                rate, cpu = hub_round(round_)
                (metered_rates if metered else hub_rates).append(rate)
                (metered_cpu if metered else hub_cpu).append(cpu)
            line = (
                f"round {round_}: raw aiohttp {raw_rates[-1]:8.0f}/s   "
                f"hub {hub_rates[-1]:8.0f}/s   ratio {hub_rates[-1] / raw_rates[-1]:.2f}   "
                f"hub CPU per delivery {hub_cpu[-1]:.0f} us"
            )
            if args.metrics:
                line += (
                    f"   with metrics {metered_rates[-1]:8.0f}/s "
                    f"({metered_rates[-1] / hub_rates[-1]:.3f} of without)   CPU per delivery "
                    f"{hub_cpu[-1]:.1f} us without, {metered_cpu[-1]:.1f} us with"
                )
            print(line)
        if args.metrics:
            from prometheus_client import REGISTRY

            counted = REGISTRY.get_sample_value(
                "django_push_hub_deliveries_total", {"outcome": "delivered"}
            )
            assert counted == n * args.rounds, f"metrics counted {counted} deliveries"
            own = metrics_cost(topic)
            print(
                f"metrics' own CPU per delivery: {own:.2f} us (timed_post, then count_deliveries "
                "on batches of 500)"
            )

    raw, hub = statistics.median(raw_rates), statistics.median(hub_rates)
    print(
        f"median: raw aiohttp {raw:.0f} deliveries/s, hub {hub:.0f} deliveries/s, "
        f"ratio {hub / raw:.2f} (target >= 0.60)"
    )
    if args.metrics:
        metered = statistics.median(metered_rates)
        ratios = [m / h for m, h in zip(metered_rates, hub_rates, strict=True)]
        print(
            f"median with metrics: {metered:.0f} deliveries/s, {metered / hub:.3f} of the hub "
            f"without (per round: {', '.join(f'{r:.3f}' for r in ratios)}; target >= 0.95)"
        )
        without, with_ = statistics.median(hub_cpu), statistics.median(metered_cpu)
        print(
            f"median CPU per delivery: {without:.1f} us without metrics, {with_:.1f} us with "
            f"(+{(with_ / without - 1) * 100:.1f} %)"
        )
    server.terminate()


if __name__ == "__main__":
    main()
