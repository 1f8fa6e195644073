"""Prometheus metrics: scraped over real HTTP after real fan-outs, verifications and
notifications on 127.0.0.1; and the package without prometheus_client."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from django_push import metrics, signatures
from django_push.hub import verification
from django_push.hub.models import Delivery, Intent
from django_push.hub.tasks import fanout_task, publish_task
from django_push.metrics import collector
from django_push.subscriber.models import Subscription
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import subscribe
from tests.scrape import scrape
from tests.servers import Reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_queue")]

HUB_URL = "https://hub.example/hub/"


@pytest.fixture
def metered(settings, monkeypatch):
    """Metrics on, and the gauges queried at every scrape."""
    settings.PUSH_METRICS = True
    monkeypatch.setattr(collector, "GAUGE_TTL", 0.0)
    collector.HubCollector.forget()


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def test_fanout_outcomes_latency_and_gauges_over_http(live_server, server, metered, settings):
    topic = server.url + "/topic"
    server.replies["/topic"] = Reply(200, b"<feed/>", {"Content-Type": "application/atom+xml"})
    server.replies["/gone"] = Reply(410)
    server.replies["/fail"] = Reply(500)
    for n in range(3):
        subscribe(f"{server.url}/ok?n={n}", topic)
    subscribe(server.url + "/gone", topic)
    subscribe(server.url + "/fail", topic)
    before = scrape(live_server)

    assert publish_task.call(topic, HUB_URL) is not None
    run_queued()
    after = scrape(live_server)
    deliveries = "django_push_hub_deliveries_total"
    assert delta(before, after, deliveries, outcome="delivered") == 3
    assert delta(before, after, deliveries, outcome="gone") == 1
    assert delta(before, after, deliveries, outcome="retried") == 1
    assert delta(before, after, deliveries, outcome="gave_up") == 0
    assert delta(before, after, "django_push_hub_publishes_total", outcome="fetched") == 1
    # Three deliveries made it: three latencies; five POSTs were sent: five durations.
    latency = "django_push_hub_publish_to_delivery_seconds"
    assert delta(before, after, latency + "_count") == 3
    assert 0 < delta(before, after, latency + "_sum") < 30
    assert delta(before, after, "django_push_hub_delivery_duration_seconds_count") == 5
    assert value(after, "django_push_hub_active_subscriptions") == 4  # the 410 one is gone
    assert value(after, "django_push_hub_pending_deliveries") == 1  # the retry
    assert value(after, "django_push_hub_oldest_pending_delivery_age_seconds") == 0  # not due

    # The same body again: nothing new to deliver.
    assert publish_task.call(topic, HUB_URL) is None
    unchanged = scrape(live_server)
    assert delta(after, unchanged, "django_push_hub_publishes_total", outcome="unchanged") == 1

    # The retry has been due for a minute; this time the hub gives up.
    Delivery.objects.filter(status="pending").update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=60)
    )
    waiting = scrape(live_server)
    assert value(waiting, "django_push_hub_oldest_pending_delivery_age_seconds") >= 60
    settings.PUSH_HUB_RETRY_HORIZON = 1
    assert fanout_task.call() == [1, 0]
    done = scrape(live_server)
    assert delta(waiting, done, deliveries, outcome="gave_up") == 1
    assert delta(waiting, done, deliveries, outcome="retried") == 0
    assert value(done, "django_push_hub_pending_deliveries") == 0
    assert value(done, "django_push_hub_oldest_pending_delivery_age_seconds") == 0


def test_failed_fetches_are_counted(live_server, server, metered):
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    server.replies["/topic"] = Reply(404)
    before = scrape(live_server)
    publish_task.call(topic, HUB_URL)
    after = scrape(live_server)
    assert delta(before, after, "django_push_hub_publishes_total", outcome="failed") == 1


def test_verification_outcomes_over_http(live_server, server, metered, settings):
    settings.PUSH_HUB_TOPICS = ["http://testserver/"]
    server.replies["/echo"] = lambda received: Reply(
        200, received.query["hub.challenge"][0].encode()
    )
    server.replies["/refuse"] = Reply(404)
    for callback, topic in [
        ("/echo", "http://testserver/feed"),
        ("/echo", "http://testserver/other"),
        ("/refuse", "http://testserver/feed"),
        ("/echo", "http://elsewhere.example/feed"),  # no longer allowed: denied
    ]:
        Intent.objects.create(mode="subscribe", topic=topic, callback=server.url + callback)
    before = scrape(live_server)
    assert verification.verify_pending() == 4
    after = scrape(live_server)
    name = "django_push_hub_verifications_total"
    assert delta(before, after, name, outcome="verified") == 2
    assert delta(before, after, name, outcome="failed") == 1
    assert delta(before, after, name, outcome="denied") == 1


def test_subscriber_notification_outcomes_over_http(live_server, metered, settings):
    settings.PUSH_DOMAIN = live_server.url.removeprefix("http://")
    lease = timezone.now() + datetime.timedelta(days=1)
    common = {"hub": "http://hub.example/", "verified": True, "lease_expiration": lease}
    signed = Subscription.objects.create(topic="http://t.example/1", secret="s3cret", **common)
    moved = Subscription.objects.create(
        topic="http://t.example/2",
        legacy_callback="http://old.example/subscriber/2/",
        legacy_moved_at=timezone.now(),
        **common,
    )
    before = scrape(live_server)

    def post(url, body=b"<feed/>", **headers):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    good = signatures.sign("s3cret", b"<feed/>", "sha256")
    assert post(signed.callback_url, **{"X-Hub-Signature": good}) == 200
    assert post(signed.callback_url, **{"X-Hub-Signature": "sha256=" + "0" * 64}) == 200
    assert post(signed.callback_url) == 400  # no signature although a secret exists
    assert post(live_server.url + "/subscriber/999999/") == 410  # gone: a dead 1.1 URL
    assert post(live_server.url + f"/subscriber/{moved.pk}/") == 200  # its 1.1 URL
    after = scrape(live_server)
    name = "django_push_subscriber_notifications_total"
    assert delta(before, after, name, outcome="accepted") == 1
    assert delta(before, after, name, outcome="bad_signature") == 1
    assert delta(before, after, name, outcome="refused") == 2
    assert delta(before, after, name, outcome="duplicate") == 1


def test_metrics_view_is_404_while_off_and_read_only(live_server, settings):
    settings.PUSH_METRICS = False
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(live_server.url + "/metrics/")
    assert error.value.code == 404
    settings.PUSH_METRICS = True
    request = urllib.request.Request(live_server.url + "/metrics/", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 405


def test_a_flood_of_scrapes_queries_the_gauges_once_per_interval(live_server, server, settings):
    # A stranger who reaches the view and scrapes it in a loop: the gauges' COUNT queries
    # run once per GAUGE_TTL, and nothing the hub holds (topics, callbacks) is shown.
    settings.PUSH_METRICS = True
    collector.HubCollector.forget()
    subscribe(server.url + "/secret-callback?token=abc", server.url + "/private-topic")
    calls = []
    query = collector.HubCollector.query

    def counting():
        calls.append(1)
        return query()

    collector.HubCollector.query = staticmethod(counting)
    try:
        bodies = []
        for _ in range(50):
            with urllib.request.urlopen(live_server.url + "/metrics/?x=1") as response:
                bodies.append(response.read().decode())
    finally:
        collector.HubCollector.query = staticmethod(query)
    assert len(calls) == 1
    assert "django_push_hub_active_subscriptions 1.0" in bodies[-1]
    assert not any("secret-callback" in body or "private-topic" in body for body in bodies)


def test_metrics_off_records_nothing(settings, server):
    settings.PUSH_METRICS = False
    assert metrics.instruments() is None
    sending = object()
    assert metrics.timed_post(sending) is sending  # no wrapper on the hot path


def test_check_names_the_extra_to_install():
    # In a process where prometheus_client cannot be imported: the check says what to
    # install, every recording function does nothing, the metrics view is a 404, and a
    # fan-out to a real callback still delivers.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # import fails, as if not installed
        import django
        from django.conf import settings
        from django.test.utils import override_settings
        django.setup()
        from django.core.management import call_command
        from django.core.management.base import SystemCheckError
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        call_command("migrate", verbosity=0)
        from django_push import metrics
        from django_push.checks import check_common_settings
        with override_settings(PUSH_METRICS=True):
            [error] = [e for e in check_common_settings() if e.id.startswith("django_push.E")]
            assert error.id == "django_push.E010", error
            assert 'django-push[metrics]' in error.hint, error.hint
            assert metrics.instruments() is None
            metrics.count_notification("accepted")
            metrics.count_publish("fetched")
            metrics.count_deliveries([], 1)
            metrics.count_verifications(["verified"])
            assert Client().get("/metrics/").status_code == 404
            import datetime, threading
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            from django.utils import timezone
            from django_push.hub import fanout
            from tests.hub_rows import store
            from django_push.hub.models import HubSubscription
            class Handler(BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers["Content-Length"]))
                    self.send_response(204)
                    self.end_headers()
                def log_message(self, *args):
                    pass
            httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            HubSubscription.objects.create(
                topic="http://t.example/", callback=f"http://127.0.0.1:{httpd.server_port}/cb",
                lease_seconds=60, expires_at=timezone.now() + datetime.timedelta(seconds=60),
            )
            content = store("http://t.example/", b"x", "text/plain", "http://h/")
            assert fanout.fanout(content.pk) == (1, 1)
        print("ok")
        """
    )
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PUSH_TEST_DB": "sqlite",
        "PUSH_TEST_TASKS": "immediate",
        "PYTHONPATH": str(root),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_metrics_are_registered_when_django_starts():
    # For django-prometheus's view, which exports the default registry: the metrics must be
    # there before anything is counted, gauges included.
    script = textwrap.dedent(
        """
        from django.conf import settings
        settings.PUSH_METRICS = True
        import django
        django.setup()
        from prometheus_client import REGISTRY
        value = REGISTRY.get_sample_value
        assert value("django_push_hub_deliveries_total", {"outcome": "gave_up"}) == 0
        assert value("django_push_subscriber_notifications_total", {"outcome": "duplicate"}) == 0
        assert "django_push_hub_oldest_pending_delivery_age_seconds" in (
            REGISTRY._names_to_collectors
        )
        print("ok")
        """
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_multiprocess_mode_adds_up_what_the_workers_counted(tmp_path):
    # A task worker counts, then exits; the web process's view shows its counts, because
    # both share PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode).
    start = """
        from django.conf import settings
        settings.PUSH_METRICS = True
        import django
        django.setup()
        from django_push import metrics
        """
    worker = (
        start
        + """
        metrics.count_delivery("retried")
        metrics.count_delivery("retried")
        metrics.count_publish("fetched")
        """
    )
    web = (
        start
        + """
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment
        setup_test_environment()
        call_command("migrate", verbosity=0)
        metrics.count_notification("accepted")
        print(Client().get("/metrics/").content.decode())
        """
    )
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PUSH_TEST_DB": "sqlite",
        "PYTHONPATH": str(root),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    outputs = []
    for script in (worker, web):
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(outputs[1])
        for sample in family.samples
    }
    assert value(samples, "django_push_hub_deliveries_total", outcome="retried") == 2
    assert value(samples, "django_push_hub_publishes_total", outcome="fetched") == 1
    assert value(samples, "django_push_subscriber_notifications_total", outcome="accepted") == 1
    assert ("django_push_hub_active_subscriptions", ()) in samples  # the gauges too


def test_gauges_are_left_out_while_the_database_is_down(settings, monkeypatch, caplog):
    from django.db import OperationalError, connection
    from prometheus_client import REGISTRY, generate_latest

    settings.PUSH_METRICS = True
    metrics.instruments()
    monkeypatch.setattr(collector, "GAUGE_TTL", 0.0)
    collector.HubCollector.forget()

    def down(execute, sql, params, many, context):
        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(down):
        text = generate_latest(REGISTRY).decode()
    assert "django_push_hub_deliveries_total" in text  # the counters are still there
    assert "django_push_hub_active_subscriptions " not in text
    assert "gauges could not be read" in caplog.text


def test_check_is_quiet_when_the_extra_is_installed(settings):
    from django_push.checks import check_common_settings

    settings.PUSH_METRICS = True
    assert [e.id for e in check_common_settings() if e.id == "django_push.E010"] == []
    call_command("check")


@pytest.mark.parametrize("layout", ["known", "unknown"])
def test_observe_many_equals_observing_one_by_one(layout):
    from prometheus_client import CollectorRegistry, Histogram

    def histogram(registry):
        return Histogram("h", "h", buckets=metrics.DURATION_BUCKETS, registry=registry)

    one_by_one, bulk = CollectorRegistry(), CollectorRegistry()
    expected, observed = histogram(one_by_one), histogram(bulk)
    values = [(0.0, 1), (0.005, 2), (0.0051, 1), (0.3, 4), (30.0, 1), (31.5, 2)]
    for amount, times in values:
        for _ in range(times):
            expected.observe(amount)
    if layout == "unknown":  # a prometheus_client without the attributes: observe() each
        observed = type("Plain", (), {"observe": observed.observe})()
    metrics.observe_many(observed, values)
    [got], [wanted] = bulk.collect(), one_by_one.collect()
    assert got.samples[:-1] == wanted.samples[:-1]  # all but the _created timestamp
