"""The subscriber's callback under load, as a ratio of a bare Django view on the same server.

Deployed as users deploy it: gunicorn, 2 sync workers, serving ``bench/callback_site`` (a
startproject-like site with ``django_push.subscriber``), loaded by ``wrk`` (Debian package)
with ``bench/callback_site/wrk.lua``. In the same run, on the same server, it measures

- ``bare``: a bare view asking the database for one row by primary key (the baseline):
  ``.exists()`` by default, the lightest query a view makes; ``--baseline first`` reads the
  row with ``.first()`` instead (heavier: the figures before issue 16 used it),
- ``post``: a signed 2 KB content POST to a valid callback (2.x: sha256; 1.1: sha1, all it knows),
- ``refused``: the same POST to a wrong capability (another token in the callback's query
  string, or an unknown pk when callbacks carry no token),
- ``unrequested``: a subscribe verification of an active subscription nobody asked for
  (what a hijacker's hub sends; main answered it),
- ``verify``: a real verification GET (each one answers its own pending subscription),

each run of a measure between two runs of the bare view (the ratio is over their mean),
rounds repeated, and prints the median ratio of the rounds and their range.
Callback URLs come from ``Subscription.callback_url``, so it works on any source tree::

    python bench/subscriber_callback.py                      # this checkout, SQLite + PostgreSQL
    python bench/subscriber_callback.py --src ../other/src   # another checkout's code
    python bench/subscriber_callback.py --src src --label new --src ../old/src --label old
    python bench/subscriber_callback.py --quick              # a few seconds per measure (CI)
    python bench/subscriber_callback.py --legacy-python /venv11/bin/python   # add django-push 1.1

The interpreter (``--python``, default this one) needs Django, gunicorn (``--group bench``)
and psycopg; ``--src`` goes first on its ``PYTHONPATH``. PostgreSQL is reached through the
``PG*`` variables (127.0.0.1, user postgres); the database ``--pg-db`` is dropped and created.
SQLite is a file in WAL mode (set once; it stays in the file), as a site with several workers
would run it: in the default rollback-journal mode, readers wait for every write.
"""

from __future__ import annotations

import argparse
import atexit
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BODY = b"<feed>" + b"x" * (2048 - 13) + b"</feed>"
MEASURES = {
    "bare": "bare view, one indexed query (.exists(), or .first() with --baseline first)",
    "post": "signed 2 KB POST",
    "refused": "refused: wrong capability",
    "unrequested": "refused: unrequested verification",
    "verify": "verification GET",
}
EXPECTED = {"bare": 200, "post": 200, "refused": 404, "unrequested": 404, "verify": 200}
SERVERS: list[subprocess.Popen[bytes]] = []


@dataclass
class Target:
    label: str
    python: str
    src: str | None
    algorithm: str
    measures: list[str]


@dataclass
class Result:
    target: str
    db: str
    versions: str
    rates: dict[str, list[float]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def ratio(self, measure: str) -> float:
        return statistics.median(self.ratios[measure])


def stop_servers() -> None:
    for server in SERVERS:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    SERVERS.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(target: Target, db: str, sqlite: Path, pg_db: str) -> dict[str, str]:
    paths = [target.src] if target.src else []
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([*paths, str(BENCH)]),
        DJANGO_SETTINGS_MODULE="callback_site.settings",
        BENCH_DB=db,
        BENCH_SQLITE=str(sqlite),
        PGDATABASE=pg_db,
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def reset_postgres(name: str) -> None:
    host, user = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGUSER", "postgres")
    common = ["-h", host, "-U", user]
    subprocess.run(["dropdb", *common, "--if-exists", name], check=True, timeout=60)
    subprocess.run(["createdb", *common, name], check=True, timeout=60)


def prepare(target: Target, env: dict[str, str], work: Path, rounds: int, per_round: int) -> dict:  # type: ignore[type-arg]
    out = work / "prepared.json"
    command = [target.python, "-m", "callback_site.prepare", str(out), str(rounds + 1)]
    subprocess.run([*command, str(per_round), "wal"], env=env, check=True, timeout=900)
    prepared: dict = json.loads(out.read_text())  # type: ignore[type-arg]
    return prepared


def start_server(target: Target, env: dict[str, str], work: Path) -> str:
    port = free_port()
    log = (work / "gunicorn.log").open("wb")
    command = [target.python, "-m", "gunicorn", "callback_site.wsgi:application"]
    options = ["--workers", "2", "--worker-class", "sync", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, *options, "--backlog", "1024", "--graceful-timeout", "5"],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    SERVERS.append(server)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = (work / "gunicorn.log").read_text(errors="replace")[-2000:]
            raise SystemExit(f"gunicorn exited (needs --group bench):\n{tail}")
        try:
            with urllib.request.urlopen(f"{base}/bare/0/", timeout=2):
                return base
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


def status_of(url: str, data: bytes | None, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


class Load:
    """Runs wrk against one server with the request of each measure."""

    def __init__(  # type: ignore[type-arg]
        self, base: str, prepared: dict, target: Target, work: Path, baseline: str
    ) -> None:
        self.base, self.prepared, self.work = base, prepared, work
        if baseline == "exists":
            prepared["bare"] = prepared["bare"].replace("/bare/", "/bare-exists/")
        digest = hmac.new(prepared["secret"].encode(), BODY, target.algorithm).hexdigest()
        self.signature = f"{target.algorithm}={digest}"
        self.body_file = work / "body.xml"
        self.body_file.write_bytes(BODY)

    def request(self, measure: str, round_: int) -> tuple[str, dict[str, str]]:
        """The URL and the wrk.lua settings of a measure."""
        env = {"BENCH_METHOD": "GET", "BENCH_BODY": "", "BENCH_SIGNATURE": "", "BENCH_PATHS": ""}
        if measure in ("post", "refused"):
            env.update(
                BENCH_METHOD="POST", BENCH_BODY=str(self.body_file), BENCH_SIGNATURE=self.signature
            )
        if measure == "verify":
            paths = self.work / f"verify-{round_}.txt"
            paths.write_text("\n".join(self.prepared["verify"][round_]) + "\n")
            env["BENCH_PATHS"] = str(paths)
            return self.base + self.prepared["verify"][round_][0], env
        return self.base + self.prepared[measure], env

    def check(self, measure: str) -> int:
        """The status a single request of this measure gets (verify: uses a spare row)."""
        if measure == "verify":
            return status_of(self.base + self.prepared["verify"][-1][0], None, {})
        url, env = self.request(measure, 0)
        if env["BENCH_METHOD"] == "POST":
            headers = {"Content-Type": "application/atom+xml", "X-Hub-Signature": self.signature}
            return status_of(url, BODY, headers)
        return status_of(url, None, {})

    def run(self, measure: str, round_: int, seconds: int) -> tuple[float, int]:
        """Requests per second, and how many answers were not 2xx/3xx."""
        url, env = self.request(measure, round_)
        command = ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "10s"]
        command += ["-s", str(BENCH / "callback_site" / "wrk.lua"), url]
        done = subprocess.run(
            command,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
        if rate is None:
            raise SystemExit(f"wrk printed no rate:\n{done.stdout}\n{done.stderr}")
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
        return float(rate.group(1)), int(bad.group(1)) if bad else 0


def profile(load: Load, server: int, name: str, round_: int, seconds: int, out: Path) -> None:
    """Sample both workers with py-spy while wrk sends ``name``; print where the time goes."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(server), "--subprocesses", "--format", "raw"]
    command += ["--output", str(out), "--duration", str(seconds), "--rate", "250", "--nonblocking"]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rate, _bad = load.run(name, round_, seconds)
        recorder.wait(timeout=seconds + 60)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
    print(f"  profile of {name} ({rate:.0f} req/s while sampled), stacks in {out}")
    print(where_time_goes(out.read_text()))


def where_time_goes(stacks: str, top: int = 25) -> str:
    """The functions most samples were in (inclusive), from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in stacks.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")[2:]]
        total += int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
        if frames:
            leaves[frames[-1]] = leaves.get(frames[-1], 0) + int(count)
    lines = [f"    {total} samples; inclusive share (server plumbing left out), then own share"]
    plumbing = ("(gunicorn/", "(<frozen", "(django/core/handlers/", "(django/utils/deprecation")
    shown = [item for item in inclusive.items() if not any(p in item[0] for p in plumbing)]
    for frame, count in sorted(shown, key=lambda item: -item[1])[:top]:
        lines.append(f"    {100 * count / max(total, 1):5.1f}%  {frame}")
    lines.append("    --")
    for frame, count in sorted(leaves.items(), key=lambda item: -item[1])[:10]:
        lines.append(f"    {100 * count / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines)


def measure(target: Target, db: str, args: argparse.Namespace, work: Path) -> Result:
    sqlite = work / "bench.sqlite3"
    if db == "postgres":
        reset_postgres(args.pg_db)
    env = environment(target, db, sqlite, args.pg_db)
    # Enough pending rows for 1,200 verifications a second (a quiet machine does ~600).
    per_round = 1200 * args.seconds if "verify" in target.measures else 1
    prepared = prepare(target, env, work, args.rounds, per_round)
    versions = f"Python {prepared['python']}, Django {prepared['django']}"
    where = prepared["django_push"]
    print(f"[{target.label}/{db}] {versions}, django_push from {where}", flush=True)
    result = Result(target.label, db, versions)
    base = start_server(target, env, work)
    try:
        load = Load(base, prepared, target, work, args.baseline)
        for name in ["bare", *target.measures]:
            result.statuses[name] = load.check(name)
            result.rates[name], result.ratios[name], result.errors[name] = [], [], 0
        load.run("bare", 0, 2)  # warm both workers up

        def run(name: str, round_: int) -> float:
            rate, bad = load.run(name, round_, args.seconds)
            result.rates[name].append(rate)
            result.errors[name] += bad
            print(f"  round {round_ + 1} {name:12} {rate:9.1f} req/s  non-2xx {bad}", flush=True)
            return rate

        # Each measure runs between two runs of the bare view and is divided by their mean,
        # so a neighbour's load on the shared machine hits both sides of a ratio alike.
        before = run("bare", 0)
        for round_ in range(args.rounds):
            shift = round_ % len(target.measures)
            for name in target.measures[shift:] + target.measures[:shift]:
                rate = run(name, round_)
                after = run("bare", round_)
                result.ratios[name].append(rate / ((before + after) / 2))
                before = after
        for name in [name for name in args.profile or [] if name in target.measures]:
            out = Path(f"profile-{target.label.split()[0]}-{db}-{name}.txt").resolve()
            profile(load, SERVERS[-1].pid, name, args.rounds, args.seconds, out)
    finally:
        stop_servers()
    # Signatures are checked silently (a bad one is dropped with a 2xx): the log tells.
    log = (work / "gunicorn.log").read_text(errors="replace")
    dropped = sum("signature" in line.lower() for line in log.splitlines())
    if dropped:
        print(f"  WARNING: the server logged {dropped} line(s) about signatures", flush=True)
    return result


def table(results: list[Result]) -> str:
    lines = [
        "| code | database | measure | req/s (median) | ratio to bare (range) | status | non-2xx |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for name, rates in result.rates.items():
            ratio = "1" if name == "bare" else f"{result.ratio(name):.2f}"
            if name != "bare" and len(result.ratios[name]) > 1:
                ratio += f" ({min(result.ratios[name]):.2f}-{max(result.ratios[name]):.2f})"
            status = str(result.statuses[name])
            if result.statuses[name] != EXPECTED[name]:
                status += f" (expected {EXPECTED[name]})"
            lines.append(
                f"| {result.target} | {result.db} | {MEASURES[name]} | "
                f"{statistics.median(rates):,.0f} | {ratio} | {status} | {result.errors[name]} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the server")
    parser.add_argument(
        "--src",
        action="append",
        help="source tree to test, put first on PYTHONPATH (repeat it to compare trees)",
    )
    parser.add_argument(
        "--label", action="append", help="name of each --src in the table (default: its parent)"
    )
    parser.add_argument("--legacy-python", help="also measure django-push 1.1 installed there")
    parser.add_argument("--db", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--pg-db", default="bench_subscriber_callback")
    parser.add_argument("--quick", action="store_true", help="2 s per measure, 1 round (CI)")
    parser.add_argument(
        "--baseline",
        choices=["exists", "first"],
        default="exists",
        help="the bare view: .exists() (default, the lighter) or .first() (the earlier figures)",
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--measure",
        action="append",
        choices=list(MEASURES)[1:],
        help="measure only this (repeat it; default: all)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        choices=list(MEASURES),
        help="after the rounds, sample the workers with py-spy during this measure",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2, 1

    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install it (Debian: apt-get install wrk)")
    sources = [str(Path(src).resolve()) for src in args.src or [REPO / "src"]]
    labels = args.label or [Path(src).parent.name for src in sources]
    if len(labels) != len(sources):
        parser.error("give one --label per --src")
    targets = [
        Target(label, args.python, src, "sha256", args.measure or list(MEASURES)[1:])
        for label, src in zip(labels, sources, strict=True)
    ]
    if args.legacy_python:
        targets.append(Target("1.1 (PyPI)", args.legacy_python, None, "sha1", ["post"]))

    atexit.register(stop_servers)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    for db in args.db or ["sqlite", "postgres"]:
        for target in targets:
            with tempfile.TemporaryDirectory(prefix="bench-callback-") as work:
                results.append(measure(target, db, args, Path(work)))
    print()
    print(table(results))


if __name__ == "__main__":
    main()
