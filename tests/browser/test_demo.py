"""The README's demo, driven in Debian's Chromium by Playwright: publish, see it arrive.

Run by the browser leg of .ci/run (PUSH_BROWSER_TESTS=1); the screenshot lands in
test-output/demo.png.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    """Start scripts/demo exactly as the README says, on a free port and a fresh database."""
    port = free_port()
    env = {**os.environ, "DEMO_PORT": str(port), "DEMO_DB": str(tmp_path / "demo.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "demo")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()
    log: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            log.append(line)
            if "demo running" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 300
    while not ready.wait(0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the demo did not start:\n" + "".join(log[-40:]))
    yield f"http://127.0.0.1:{port}/", log
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    process.wait(30)
    # Everything the demo started has stopped: the port is free and its process group is empty.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the web server outlived the demo"
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # the worker and the server were in the demo's group


def test_publish_and_watch_the_notification_arrive(demo):
    from playwright.sync_api import expect, sync_playwright

    url, _log = demo
    chromium = shutil.which("chromium")
    assert chromium, "install Debian's chromium: apt-get install chromium"
    title = f"Hello WebSub {uuid.uuid4().hex[:6]}"
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        expect(page.locator("#sub-state")).to_contain_text("verified", timeout=15_000)

        page.fill("#title", title)
        page.fill("#body", "Published from the browser test.")
        started = time.monotonic()
        page.click("#publish")
        arrived = page.locator("#notifications li.notification", has_text=title)
        expect(arrived).to_be_visible(timeout=15_000)
        elapsed = time.monotonic() - started
        expect(arrived).to_contain_text("signature valid")
        expect(arrived).to_contain_text(re.compile(r"sequence #\d+"))  # PUSH_HUB_SEQUENCE_HEADER
        expect(page.locator("#hub-deliveries")).to_contain_text("1 delivered")
        expect(page.locator("#sub-lease")).to_contain_text("3600 s")
        # Operations: the health view, the worker's and the server's counts through the
        # metrics view, and the hub sending the same content again without a fetch.
        expect(page.locator("#hub-health")).to_contain_text("ok", timeout=5_000)
        expect(page.locator("#hub-metrics")).to_contain_text("1 delivered", timeout=10_000)
        expect(page.locator("#hub-metrics")).to_contain_text("1 accepted")
        # The subscriber reconciles (PUSH_SUBSCRIBER_RECONCILE): it fetched the feed once
        # verified, and knows every body it received, so the content sent again is dropped.
        expect(page.locator("#sub-reconcile")).to_contain_text("poll(s)", timeout=10_000)
        page.click("#send-again")
        expect(page.locator("#send-again-result")).to_contain_text("sent again to 1")
        expect(page.locator("#hub-metrics")).to_contain_text("2 delivered", timeout=15_000)
        expect(page.locator("#hub-metrics")).to_contain_text("1 already received")
        expect(page.locator("#notifications li.notification", has_text=title)).to_have_count(1)
        expect(page.locator("#hub-contents")).to_have_text("1")  # no new fetch, no new content
        page.screenshot(path=str(OUTPUT / "demo.png"), full_page=True)
        # The hub's diagnostics page for the subscription (PUSH_HUB_DIAGNOSTICS), through the
        # link the subscriber computes from its secret.
        link = page.locator("#diagnostics-link")
        expect(link).to_be_visible(timeout=5_000)
        diagnostics = browser.new_page()
        diagnostics.goto(link.get_attribute("href") or "")
        expect(diagnostics.locator("#state")).to_have_text("active")
        expect(diagnostics.locator("tr.delivery .status").first).to_have_text("delivered")
        browser.close()
    print(f"notification shown {elapsed:.2f} s after Publish was pressed")
    (OUTPUT / "demo-latency.txt").write_text(f"{elapsed:.3f}\n")
