"""Deliveries to healthy hosts while another host fails, with and without the circuit breaker.

A helper process serves two hosts on 127.0.0.1: a healthy one (204) and a failing one (500).
Each run publishes ``--publishes`` times in a row to ``--healthy`` subscribers on the healthy
host, plus ``--failing`` on the failing one (their ids interleaved, so every batch holds
both). Reported: the time from a publish until the last healthy delivery arrived, in three
runs: without the failing host (baseline), with it and the breaker on, with it and the
breaker off. The first publish of a run opens the breaker; the later ones are sent while it
is open. Runs alternate in order, round after round; medians are reported. Last, the failing
host recovers: its breaker's open period ends, the retries run, and each of its subscribers
is checked to have received the newest content exactly once (nothing lost, nothing twice).

    .venv/test-django6-py3.12/bin/python bench/hub_breaker.py [--rounds 20] [--publishes 4]

(``scripts/test`` makes that environment.) Target: the healthy hosts' time with the failing
host, breaker on, no more than 10 % above the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import multiprocessing
import statistics
import tempfile
import time
import types
from pathlib import Path

import hub_fanout  # bench/, next to this file: its hub set-up is shared

BODY = b"<feed>" + b"x" * 2000 + b"</feed>"
RUNS = ("baseline", "breaker on", "breaker off")


def serve(ports: multiprocessing.Queue, healthy, last, failed, got) -> None:  # type: ignore[type-arg,no-untyped-def]
    """The two hosts: counts, and the arrival time of the last healthy delivery. Once the
    failing host has recovered (``got.recovered``), it answers 204 and keeps, per
    subscriber, the publish number of each body it receives."""
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        with healthy.get_lock():
            healthy.value += 1
            last.value = time.time()
        return web.Response(status=204)

    async def fail(request: web.Request) -> web.Response:
        body = await request.read()
        if got.recovered.value:
            n = int(request.match_info["n"])
            got.received[n] += 1
            got.newest[n] = int(body.rsplit(b"</feed>", 1)[1])
            return web.Response(status=204)
        with failed.get_lock():
            failed.value += 1
        return web.Response(status=500)

    async def main() -> None:
        found = []
        for handler in (ok, fail):
            app = web.Application()
            app.router.add_post("/cb/{n}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            found.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        ports.put(found)
        await asyncio.Event().wait()

    asyncio.run(main())


def setup_django(db_path: Path) -> None:
    """The in-process fan-out bench's hub (SQLite in WAL, migrated), with quiet logs."""
    hub_fanout.setup_django(db_path)
    # One warning per failed delivery would time the console, not the hub.
    logging.getLogger("django_push").setLevel(logging.CRITICAL)


def subscribe(topic: str, healthy: str, failing: str, args: argparse.Namespace) -> None:
    """``args.healthy`` subscribers on ``healthy``, ``args.failing`` on ``failing``,
    interleaved (one failing after every healthy ``args.healthy // args.failing``)."""
    from django.utils import timezone

    from django_push.hub.models import HubSubscription

    expires = timezone.now() + datetime.timedelta(days=1)
    every = max(1, args.healthy // max(1, args.failing))
    rows, bad = [], 0
    for n in range(args.healthy):
        rows.append(f"{healthy}/cb/{n}")
        if bad < args.failing and n % every == every - 1:
            rows.append(f"{failing}/cb/{bad}")
            bad += 1
    HubSubscription.objects.bulk_create(
        HubSubscription(topic=topic, callback=url, lease_seconds=86400, expires_at=expires)
        for url in rows
    )


def run(topic: str, args: argparse.Namespace, healthy, last) -> list[float]:  # type: ignore[no-untyped-def]
    """Publish ``args.publishes`` times; seconds until the last healthy delivery, each."""
    from django_push.hub import intake
    from django_push.hub.tasks import start_fanout

    times = []
    for n in range(args.publishes):
        target = healthy.value + args.healthy
        started = time.time()
        body = BODY + str(n).encode()  # a new content each time
        content = intake.accept(topic, body, "application/atom+xml", "http://hub.test/hub/")
        assert content is not None
        start_fanout(content.pk)  # immediate backend: runs here, to the end
        if healthy.value != target:
            raise SystemExit(f"{healthy.value - target + args.healthy} of {args.healthy} arrived")
        times.append(last.value - started)
    return times


def clear() -> None:
    """Forget a run's contents (their delivery rows go with them) and breakers."""
    from django_push.hub.breakers import HostBreaker
    from django_push.hub.models import Content

    Content.objects.all().delete()
    HostBreaker.objects.all().delete()


def recover(args: argparse.Namespace, got) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    """After a run with the breaker on: the failing host answers again, its open period
    ends, and the retry path runs until nothing is pending. Every subscriber of the
    failing host must then have received the newest content, once: the message, and
    whether that holds."""
    from django.utils import timezone

    from django_push.hub.breakers import HostBreaker
    from django_push.hub.fanout import fanout
    from django_push.hub.models import Delivery

    got.recovered.value = 1
    for _ in range(100):
        pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
        if not pending.exists():
            break
        pending.update(next_attempt_at=timezone.now())  # as if the open period had passed
        HostBreaker.objects.open().update(open_until=timezone.now())
        fanout()
    newest = args.publishes - 1
    lost = sum(1 for n in range(args.failing) if got.newest[n] != newest)
    twice = sum(1 for n in range(args.failing) if got.received[n] > 1)
    left = Delivery.objects.exclude(status=Delivery.Status.DELIVERED).count()
    message = (
        f"recovery: {args.failing} subscribers of the failing host, {lost} without the newest "
        f"content, {twice} sent to more than once, {left} deliveries not delivered"
    )
    return message, not (lost or twice or left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", type=int, default=800)
    parser.add_argument("--failing", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--publishes", type=int, default=4)
    args = parser.parse_args()

    healthy, failed = multiprocessing.Value("q", 0), multiprocessing.Value("q", 0)
    last = multiprocessing.Value("d", 0.0)
    got = types.SimpleNamespace(  # what the failing host receives once it recovered
        recovered=multiprocessing.Value("b", 0),
        received=multiprocessing.Array("i", args.failing),
        newest=multiprocessing.Array("i", [-1] * args.failing),
    )
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(
        target=serve, args=(ports, healthy, last, failed, got), daemon=True
    )
    server.start()
    good, bad = (f"http://127.0.0.1:{port}" for port in ports.get(timeout=10))

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        from django.conf import settings

        from django_push.conf import conf

        subscribe(
            "http://publisher.test/alone",
            good,
            bad,
            argparse.Namespace(**{**vars(args), "failing": 0}),
        )
        subscribe("http://publisher.test/mixed", good, bad, args)
        print(
            f"{args.healthy} healthy subscribers, {args.failing} on a host answering 500; "
            f"{args.publishes} publishes a run; batch {conf.PUSH_HUB_BATCH_SIZE}, concurrency "
            f"{conf.PUSH_HUB_CONCURRENCY}; breaker: {conf.PUSH_HUB_BREAKER_MIN_DELIVERIES} "
            f"deliveries, ratio {conf.PUSH_HUB_BREAKER_FAILURE_RATIO}"
        )
        results: dict[str, list[list[float]]] = {name: [] for name in RUNS}
        sent_to_failing: dict[str, list[int]] = {name: [] for name in RUNS}
        for round_ in range(args.rounds):
            order = RUNS[round_ % 3 :] + RUNS[: round_ % 3]
            for name in order:
                settings.PUSH_HUB_BREAKER = name != "breaker off"
                topic = "http://publisher.test/" + ("alone" if name == "baseline" else "mixed")
                before = failed.value
                results[name].append(run(topic, args, healthy, last))
                clear()
                sent_to_failing[name].append(failed.value - before)
            print(
                f"round {round_ + 1}: "
                + "   ".join(
                    f"{name} {' '.join(f'{t * 1000:.0f}' for t in results[name][-1])} ms"
                    for name in RUNS
                )
            )
        settings.PUSH_HUB_BREAKER = True
        run("http://publisher.test/mixed", args, healthy, last)
        recovery = recover(args, got)
    server.terminate()
    report(results, sent_to_failing)
    print(recovery[0])
    if not recovery[1]:
        raise SystemExit("the recovery lost or repeated deliveries")


def report(results: dict[str, list[list[float]]], sent: dict[str, list[int]]) -> None:
    """Medians of each run's times, and its ratio to the baseline: the median over rounds of
    the ratio within a round (runs of one round are a second apart, so the machine's drift
    between rounds cancels out)."""

    def times(name: str, part: slice) -> list[float]:
        return [t for run in results[name] for t in run[part]]

    def ratio(name: str, part: slice) -> float:
        return statistics.median(
            statistics.median(run[part]) / statistics.median(base[part])
            for run, base in zip(results[name], results["baseline"], strict=True)
        )

    every, first, later = slice(None), slice(0, 1), slice(1, None)
    for name in RUNS:
        print(
            f"{name:12}: median {statistics.median(times(name, every)) * 1000:6.1f} ms for "
            f"the healthy hosts (first publish {statistics.median(times(name, first)) * 1000:6.1f}"
            f" ms, later {statistics.median(times(name, later)) * 1000:6.1f} ms); vs the "
            f"baseline, round by round: {ratio(name, every):.3f} (first {ratio(name, first):.3f},"
            f" later {ratio(name, later):.3f}); POSTs to the failing host per run: "
            f"{statistics.median(sent[name]):.0f}"
        )
    print(f"breaker on vs baseline: {ratio('breaker on', every):.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
