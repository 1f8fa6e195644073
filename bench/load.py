"""Hold the hub endpoint and the subscriber's callback view at 500 concurrent connections
with ``wrk``, behind gunicorn, on 127.0.0.1; bounded, and it stops by itself.

gunicorn runs the test settings (bench/load_settings.py) with the ``gthread`` worker class
(2 processes x 16 threads, a listen backlog of 2,048, keep-alive 5 s): idle keep-alive
connections wait in each worker's selector, not in a thread, so 500 connections queue for
32 threads instead of being refused. The database is SQLite in WAL mode (``--db postgres``
for PostgreSQL, database ``$PGDATABASE_load``).

- hub endpoint: ``hub.mode=publish`` of one topic (a publish request stored and queued per
  POST; no worker drains the queue during the run);
- callback view: a signed notification to a verified subscription (checked, the
  ``updated`` signal sent, the subscription row updated).

Prints requests, socket errors, 5xx and latency percentiles per endpoint, writes them to
``test-output/load.json`` and exits 1 on any socket error or 5xx.

    .venv/test-django6-py3.12/bin/python bench/load.py                 # 30 s per endpoint
    .venv/test-django6-py3.12/bin/python bench/load.py --seconds 5     # the CI quick mode

(``uv pip install --group load`` adds gunicorn; ``wrk`` is Debian's package.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = b"<feed><entry>load</entry></feed>"
SECRET = "load-secret"

# wrk's Lua hooks: count 5xx per thread, then print the figures as one JSON line.
LUA = """
wrk.method = "POST"
wrk.body = %(body)s
%(headers)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) fivexx = 0 end
function response(status, headers, body)
  if status >= 500 then fivexx = fivexx + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("fivexx") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.1f, "socket_errors": %%d, "timeouts": %%d, ' ..
    '"non_2xx_3xx": %%d, "5xx": %%d, "p50_ms": %%.1f, "p90_ms": %%.1f, "p99_ms": %%.1f, ' ..
    '"max_ms": %%.1f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout,
    e.timeout, e.status, total, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII is a valid Lua string literal


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


SETUP = """
from django_push.subscriber.models import Subscription
sub = Subscription.objects.create(
    hub="https://hub.example/", topic="http://127.0.0.1/feed", verified=True, secret=%r
)
print(sub.callback_url)
"""


def wrk(url: str, script: Path, args: argparse.Namespace) -> dict[str, float]:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    command += ["-d", f"{args.seconds}s", "--timeout", f"{args.timeout}s", "-s", str(script), url]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    result["requests_per_s"] = round(result["requests"] / result["seconds"])
    return result


def warm_up(url: str, headers: dict[str, str], body: str) -> None:
    """Wait until every gunicorn process answers: wrk does not count requests still
    unanswered when its run ends, so a server that never answers would score 0 errors."""
    deadline, answered = time.monotonic() + 60, 0
    while answered < 10:
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within 60 s")
        request = urllib.request.Request(url, data=body.encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5):
                answered += 1
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--gthreads", type=int, default=16, help="threads per process")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="push-load-"))
    if args.db == "postgres":
        import psycopg

        name = f"{os.environ.get('PGDATABASE', 'test')}_load"
        admin = psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        database = f"postgres:{name}"
    else:
        database = f"sqlite:{workdir / 'load.sqlite3'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.load_settings",
        "PUSH_LOAD_DB": database,
        "PYTHONPATH": str(ROOT),
    }
    port = free_port()
    env["PUSH_TEST_DOMAIN"] = f"127.0.0.1:{port}"  # the callback URL's host
    manage(env, "migrate", "--verbosity", "0")
    callback = manage(env, "shell", "-c", SETUP % SECRET).split()[-1]

    from django_push.signatures import sign

    targets = {
        "hub endpoint": (
            f"http://127.0.0.1:{port}/hub/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            "hub.mode=publish&hub.url=http%3A%2F%2F127.0.0.1%2Ffeed",
        ),
        "callback view": (
            callback,
            {
                "Content-Type": "application/atom+xml",
                "X-Hub-Signature": sign(SECRET, BODY),
                "Link": '<https://hub.example/>; rel="hub"',
            },
            BODY.decode(),
        ),
    }
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "django.core.wsgi:get_wsgi_application()",
            *("--bind", f"127.0.0.1:{port}", "--worker-class", "gthread"),
            *("--workers", str(args.workers), "--threads", str(args.gthreads)),
            *("--backlog", "2048", "--keep-alive", "5", "--graceful-timeout", "5"),
            *("--error-logfile", str(workdir / "gunicorn.log")),
        ],
        env=env,
        cwd=ROOT,
    )
    results = {}
    try:
        for url, headers, body in targets.values():
            warm_up(url, headers, body)
        for name, (url, headers, body) in targets.items():
            script = workdir / f"{name.replace(' ', '_')}.lua"
            lines = [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
            script.write_text(LUA % {"body": lua_string(body), "headers": "\n".join(lines)})
            results[name] = wrk(url, script, args)
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(30)
    figures = {
        "connections": args.connections,
        "seconds_per_endpoint": args.seconds,
        "gunicorn": f"gthread, {args.workers} workers x {args.gthreads} threads, backlog 2048",
        "database": args.db,
        "results": results,
    }
    print(json.dumps(figures, indent=1))
    output = ROOT / "test-output"
    output.mkdir(exist_ok=True)
    (output / "load.json").write_text(json.dumps(figures, indent=1) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    if args.db == "postgres":
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    # Requests wrk did not see answered by the end are in no count: too few answers fails too.
    failed = [
        name
        for name, r in results.items()
        if r["socket_errors"] or r["5xx"] or r["requests"] < args.connections
    ]
    if failed:
        print(f"socket errors, 5xx or too few answers: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
