"""The quickstart (docs/quickstart.rst), followed in order in a fresh Django project.

Every file the page includes comes from docs/examples/quickstart/; this test copies those
same files into a project made by ``startproject``, runs ``migrate``, ``runserver`` and
``push_worker`` on 127.0.0.1, subscribes the site to its own feed, publishes a post, and
waits for the receiver's line in the server's output.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import django
import pytest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "quickstart"
PAGE = ROOT / "docs" / "quickstart.rst"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Project:
    """A project directory, and ``manage.py`` run in it by the current venv's Python."""

    def __init__(self, path: Path, port: int) -> None:
        self.path = path
        self.port = port
        self.env = {
            name: value
            for name, value in os.environ.items()
            if name != "DJANGO_SETTINGS_MODULE" and not name.startswith("PUSH_")
        }
        self.env["PYTHONPATH"] = str(ROOT / "src")  # django_push from this source tree
        self.env["PYTHONUNBUFFERED"] = "1"
        self.processes: list[subprocess.Popen[str]] = []
        self.output: list[str] = []
        self.started = time.monotonic()

    def progress(self, message: str) -> None:
        print(f"[quickstart {time.monotonic() - self.started:5.1f}s] {message}", flush=True)

    def example(self, name: str) -> str:
        """A file of the page, with its port 8000 moved to this test's free port."""
        return (EXAMPLES / name).read_text().replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"manage.py {args[0]}:\n{result.stdout}{result.stderr}"
        return result.stdout + result.stderr

    def start(self, *args: str) -> None:
        """Start ``manage.py *args`` in the background; its output joins ``self.output``."""
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=self.path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # runserver's reloader child goes with it
        )
        self.processes.append(process)
        threading.Thread(target=self._read, args=(process, args[0]), daemon=True).start()

    def _read(self, process: subprocess.Popen[str], name: str) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(f"{name}: {line.rstrip()}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.path / "db.sqlite3") as db:
            return db.execute(sql).fetchall()


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    project = Project(tmp_path / "site", free_port())
    try:
        yield project
    finally:
        project.stop()
        if project.output:
            print("\n".join(project.output))


def serving(project: Project) -> bool:
    try:
        return project.get("/feed/")[0] == 200
    except OSError:
        return False


def test_the_page_shows_these_files_whole():
    includes = re.findall(
        r"\.\. literalinclude:: examples/quickstart/(\S+)\n((?:   :.*\n)*)", PAGE.read_text()
    )
    assert [options for _, options in includes] == ["   :language: python\n"] * len(includes)
    shipped = sorted(str(path.relative_to(EXAMPLES)) for path in EXAMPLES.rglob("*.py"))
    assert sorted(name for name, _ in includes) == shipped
    # The order in which the test below applies them, and runs the page's commands.
    assert [name for name, _ in includes] == [
        "settings.py",
        "settings_local.py",
        "blog/models.py",
        "blog/feeds.py",
        "blog/receivers.py",
        "blog/apps.py",
        "urls.py",
        "subscribe.py",
        "publish.py",
    ]
    commands = re.findall(r"\$ python manage\.py (\w+)", PAGE.read_text())
    assert commands[:5] == ["startapp", "makemigrations", "migrate", "runserver", "push_worker"]


@pytest.mark.slow
def test_quickstart_in_a_fresh_project(project):
    root = project.path
    root.mkdir()
    project.progress(f"startproject in {root}, port {project.port}")
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(root)],
        env=project.env,
        check=True,
    )
    # Step 1: an app, and settings: the production-shaped ones, then the one-machine block.
    project.run("startapp", "blog")
    settings = root / "mysite" / "settings.py"
    extra = project.example("settings.py")
    if django.VERSION < (6,):  # the page: on Django 5.2, add the django-tasks backport
        extra += '\nINSTALLED_APPS += ["django_tasks"]\n'
    settings.write_text(f"{settings.read_text()}\n{extra}\n{project.example('settings_local.py')}")
    # Steps 2 and 3: the blog app's files, and the project's URLs.
    for name in ("models.py", "feeds.py", "receivers.py", "apps.py"):
        (root / "blog" / name).write_text(project.example(f"blog/{name}"))
    (root / "mysite" / "urls.py").write_text(project.example("urls.py"))
    # Step 4: the tables. The checks name the two development switches, and nothing else.
    project.progress("makemigrations blog, migrate")
    project.run("makemigrations", "blog")
    project.run("migrate")
    warned = re.findall(r"\((\w+\.[EW]\d+)\)", project.run("check"))
    assert sorted(warned) == ["django_push.W001", "django_push.W101"]

    # Step 5: the web server and a worker.
    project.progress("runserver and push_worker")
    project.start("runserver", f"127.0.0.1:{project.port}")
    project.start("push_worker")
    wait_until(lambda: serving(project), timeout=30, message="runserver")
    _, headers, body = project.get("/feed/")
    feed_url = f"http://127.0.0.1:{project.port}/feed/"
    assert headers["Link"] == (
        f'<http://127.0.0.1:{project.port}/hub/>; rel="hub", <{feed_url}>; rel="self"'
    )
    assert b"<entry>" not in body

    # Step 6: subscribe to the feed; the hub verifies the callback through the worker.
    project.progress("subscribe")
    project.run("shell", "-c", project.example("subscribe.py"))
    rows = wait_until(
        lambda: project.query("SELECT topic FROM subscriber_subscription WHERE verified"),
        timeout=30,
        message="a verified subscription",
    )
    assert rows == [(feed_url,)]

    # Step 7: publish a post; the receiver prints the notification in runserver's output.
    project.progress("publish")
    project.run("shell", "-c", project.example("publish.py"))
    line = f"runserver: {feed_url}: "
    printed = wait_until(
        lambda: [text for text in project.output if text.startswith(line)],
        timeout=30,
        message="the receiver's line",
    )
    assert re.fullmatch(
        r"\d+ bytes of application/atom\+xml(; charset=utf-8)?", printed[0].removeprefix(line)
    )
    project.progress("notified")
    # Dated items: with a post, the same feed is the same bytes, so the hub sees "unchanged".
    body = project.get("/feed/")[2]
    assert b"<title>Hello, world</title>" in body
    assert project.get("/feed/")[2] == body
