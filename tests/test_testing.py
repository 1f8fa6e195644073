"""django_push.testing.FakeHub: what a user's test of code that subscribes relies on."""

from __future__ import annotations

import pytest
from django.test import SimpleTestCase

from django_push.subscriber.models import Subscription
from django_push.subscriber.signals import updated
from django_push.testing import FakeHub, PushHubMixin

TOPIC = "http://example.com/feed.atom"


@pytest.mark.django_db
def test_records_the_request_then_verifies_and_delivers(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PUSH_INSECURE_SECRETS = True  # the fake hub is plain HTTP; send it a secret anyway
    received = []

    def receiver(sender, notification, **kwargs):
        received.append((sender.pk, notification))

    updated.connect(receiver)
    try:
        with FakeHub() as hub:
            with django_capture_on_commit_callbacks(execute=True):
                subscription = Subscription.objects.subscribe(TOPIC, hub=hub.url)
            assert [r.mode for r in hub.requests] == ["subscribe"]
            assert hub.last.topic == TOPIC
            assert hub.last.callback == subscription.callback_url
            assert hub.last.secret

            answer = hub.verify(client, lease_seconds=3600)
            assert answer.status_code == 200
            subscription.refresh_from_db()
            assert subscription.verified

            assert hub.deliver(client, b"<feed/>").status_code == 200
    finally:
        updated.disconnect(receiver)
    assert received == [(subscription.pk, b"<feed/>")]


@pytest.mark.django_db
def test_a_refusing_hub_is_recorded_in_last_error(django_capture_on_commit_callbacks):
    with (
        FakeHub(status=400, text="topic not allowed") as hub,
        django_capture_on_commit_callbacks(execute=True),
    ):
        subscription = Subscription.objects.subscribe(TOPIC, hub=hub.url)
    subscription.refresh_from_db()
    assert "topic not allowed" in subscription.last_error
    assert not subscription.verified


def test_last_without_a_request_says_so():
    with FakeHub() as hub, pytest.raises(AssertionError, match="received no request"):
        hub.last  # noqa: B018


@pytest.mark.django_db
def test_upgrading_guide_examples(client, django_capture_on_commit_callbacks):
    from docs.examples import upgrading_example as example

    example.test_follow_subscribes(client, django_capture_on_commit_callbacks)
    Subscription.objects.all().delete()
    example.test_refused_subscription(django_capture_on_commit_callbacks)


# The kit's failure modes: what a user sees when the site did not do what the test expects.


def test_a_subscription_that_never_happened_fails_with_a_hint():
    with FakeHub() as hub, pytest.raises(AssertionError) as failure:
        hub.assert_subscribed(TOPIC)
    message = str(failure.value)
    assert f"the hub at {hub.url} received no subscription request for {TOPIC}" in message
    assert "captureOnCommitCallbacks(execute=True)" in message  # the usual cause


@pytest.mark.django_db
def test_a_subscription_to_another_topic_is_named_in_the_failure(
    push_hub, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        Subscription.objects.subscribe("http://example.com/other.atom", hub=push_hub.url)
    with pytest.raises(AssertionError, match="it received: subscribe http://example.com/other"):
        push_hub.assert_subscribed(TOPIC)
    with pytest.raises(AssertionError, match="received no ping for"):
        push_hub.assert_pinged(TOPIC)
    with pytest.raises(AssertionError, match="received no unsubscription request"):
        push_hub.assert_unsubscribed("http://example.com/other.atom")
    push_hub.assert_not_pinged()


@pytest.mark.django_db
def test_pings_are_recorded_apart_from_subscriptions(push_hub, settings):
    from django_push.publisher import ping_hub

    assert push_hub.url == settings.PUSH_HUB
    ping_hub("http://example.com/a.atom")
    ping_hub("http://example.com/b.atom", hub_url=push_hub.url)
    assert push_hub.pinged_urls == ["http://example.com/a.atom", "http://example.com/b.atom"]
    assert push_hub.subscription_requests == []
    assert push_hub.assert_pinged("http://example.com/a.atom").is_ping
    with pytest.raises(AssertionError, match=r"received pings: publish http://example.com/a"):
        push_hub.assert_not_pinged()
    with pytest.raises(AssertionError, match="received no subscription request;"):
        push_hub.verify()
    push_hub.clear()
    assert push_hub.requests == []


def test_a_ping_naming_several_urls_lists_them_all():
    import urllib.request

    with FakeHub() as hub:
        body = b"hub.mode=publish&hub.url=http%3A%2F%2Fa%2F&hub.url=http%3A%2F%2Fb%2F"
        with urllib.request.urlopen(hub.url, body, timeout=5) as answer:
            assert answer.status == 202
        assert hub.last.urls == ["http://a/", "http://b/"]
        assert hub.last.form["hub.url"] == "http://b/"
        assert hub.last.describe() == "publish http://a/, http://b/"


def test_assert_waits_for_a_request_sent_by_a_worker():
    import threading
    import urllib.request

    def later():
        body = f"hub.mode=subscribe&hub.topic={TOPIC}&hub.callback=http://x/".encode()
        urllib.request.urlopen(hub.url, body, timeout=5).close()

    with FakeHub() as hub:
        timer = threading.Timer(0.2, later)
        timer.start()
        assert hub.assert_subscribed(TOPIC, timeout=10).callback == "http://x/"
        timer.join()


def test_topics_are_served_for_discovery_and_others_are_404():
    import urllib.error
    import urllib.request

    with FakeHub() as hub:
        url = hub.serve_topic("feed/", b"<feed/>")
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.read() == b"<feed/>"
            assert answer.headers["Link"] == f'<{hub.url}>; rel="hub", <{url}>; rel="self"'
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(hub.topic_url("/other/"), timeout=5)


@pytest.mark.django_db
def test_deliveries_are_signed_with_the_algorithm_asked(
    push_hub, django_capture_on_commit_callbacks
):
    from django_push import signatures

    with django_capture_on_commit_callbacks(execute=True):
        subscription = Subscription.objects.subscribe(TOPIC, hub=push_hub.url)
    push_hub.verify()
    received = []

    def receiver(sender, notification, request, **kwargs):
        received.append(request.headers["X-Hub-Signature"])

    updated.connect(receiver)
    try:
        assert push_hub.deliver(b"x", topic=TOPIC, algorithm="sha512").status_code == 200
    finally:
        updated.disconnect(receiver)
    subscription.refresh_from_db()
    assert received == [signatures.sign(subscription.secret, b"x", "sha512")]
    with pytest.raises(TypeError, match="needs the body"):
        push_hub.deliver(push_hub.client)


class MixinSettings(PushHubMixin, SimpleTestCase):
    def test_settings_point_at_the_hub_during_the_test(self):
        from django.conf import settings

        assert self.push_hub.url == settings.PUSH_HUB
        assert settings.PUSH_ALLOW_PRIVATE_ADDRESSES is True
        assert self.push_hub.client is self.client


def test_the_mixin_restores_settings_and_stops_its_hub(settings):
    import unittest
    import urllib.error
    import urllib.request

    settings.PUSH_HUB = "https://hub.example.com/"
    case = MixinSettings("test_settings_point_at_the_hub_during_the_test")
    result = unittest.TestResult()
    case(result)  # as a runner calls it: Django sets up the client first
    assert result.wasSuccessful(), result.failures + result.errors
    from django.conf import settings as current

    assert current.PUSH_HUB == "https://hub.example.com/"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(case.push_hub.url, b"", timeout=2)


# What a user's failing test prints, through pytest itself and the plugin as users load it.
USER_TEST = """
import pytest
from django_push.subscriber.models import Subscription

@pytest.mark.django_db
def test_follows(push_hub):
    Subscription.objects.subscribe("http://example.com/feed.atom", hub=push_hub.url)
    push_hub.assert_subscribed("http://example.com/feed.atom")
"""


def test_a_users_failing_test_explains_itself(pytester, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    pytester.makeconftest('pytest_plugins = ["django_push.testing.pytest"]\n')
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--nomigrations", "--ds", "tests.settings"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the hub at http://127.0.0.1:*/ received no subscription request "
            "for http://example.com/feed.atom; it received nothing (requests go out once the "
            "transaction commits*"
        ]
    )


def test_live_push_hub_says_what_the_site_lacks(settings):
    from django_push.testing.pytest import hub_path

    assert hub_path() == "/hub/"
    settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": []})  # no push_hub route
    with pytest.raises(pytest.fail.Exception, match=r"include\('django_push.hub.urls'\)"):
        hub_path()
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "django_push.hub"]
    with pytest.raises(pytest.fail.Exception, match="'django_push.hub' in INSTALLED_APPS"):
        hub_path()


# A feed whose feed_url is hard-coded: discovery finds that URL, which the live hub refuses.
USER_LIVE_TEST = """
import pytest
from django.urls import include, path

from django_push.publisher.feeds import Feed
from django_push.subscriber.models import Subscription


class HardCoded(Feed):
    title = link = "/"
    description = ""
    feed_url = "https://example.com/feed/"

    def items(self):
        return []


urlpatterns = [
    path("hub/", include("django_push.hub.urls")),
    path("subscriber/", include("django_push.subscriber.urls")),
    path("feed/", HardCoded()),
]


@pytest.fixture(autouse=True)
def urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.mark.django_db(transaction=True)
def test_follows(live_push_hub, live_server):
    subscription = Subscription.objects.subscribe(live_server.url + "/feed/")
    subscription.refresh_from_db()
    assert subscription.verified
"""


def test_live_push_hub_reports_why_the_hub_refused(pytester, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    monkeypatch.setenv("PUSH_TEST_TASKS", "immediate")
    pytester.makeconftest('pytest_plugins = ["django_push.testing.pytest"]\n')
    pytester.makepyfile(test_user_live=USER_LIVE_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--nomigrations", "--ds", "tests.settings"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Captured django-push call*",
            "subscribe request for https://example.com/feed/ failed: HTTP 400: "
            "*not published through this hub*",
        ]
    )


@pytest.mark.django_db
def test_a_queue_nobody_runs_is_named_with_the_tasks_setting(
    push_hub, settings, django_capture_on_commit_callbacks
):
    settings.PUSH_TASK_BACKEND = "queue"  # django_tasks_db, and no worker
    with django_capture_on_commit_callbacks(execute=True):
        Subscription.objects.subscribe(TOPIC, hub=push_hub.url)
    with pytest.raises(AssertionError) as failure:
        push_hub.assert_subscribed(TOPIC)
    message = str(failure.value)
    assert "TASKS['queue'], django_tasks_db.DatabaseBackend, which no worker runs" in message
    assert 'TASKS = {"queue": {"BACKEND": "django.tasks.backends.immediate.' in message
    # With the immediate backend the request leaves, and nothing is said about TASKS.
    settings.PUSH_TASK_BACKEND = "default"
    with django_capture_on_commit_callbacks(execute=True):
        Subscription.objects.subscribe(TOPIC, hub=push_hub.url)
    push_hub.assert_subscribed(TOPIC)
    push_hub.clear()
    with pytest.raises(AssertionError) as failure:
        push_hub.assert_subscribed(TOPIC)
    assert "TASKS" not in str(failure.value)
