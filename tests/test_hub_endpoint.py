"""The hub endpoint's synchronous answers (H-1 .. H-3, H-20): 4xx with a reason, else 202."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from django_push.hub.models import Content, HubSubscription, Intent
from django_push.hub.params import topic_allowed
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.servers import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hub_queue")]

HUB = "/hub/"


def post(client, **data):
    return client.post(HUB, {k.replace("_", ".", 1): v for k, v in data.items()})


def nothing_stored():
    return not (
        Intent.objects.exists() or HubSubscription.objects.exists() or Content.objects.exists()
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, "hub.mode must be subscribe, unsubscribe or publish"),
        ({"hub_mode": "follow"}, "not 'follow'"),
        (
            {"hub_mode": "subscribe", "hub_topic": "http://testserver/feed/"},
            "hub.callback is required",
        ),
        ({"hub_mode": "subscribe", "hub_callback": "http://127.0.0.1/cb"}, "hub.topic is required"),
        (
            {
                "hub_mode": "subscribe",
                "hub_callback": "ftp://127.0.0.1/cb",
                "hub_topic": "http://testserver/f",
            },
            "hub.callback must be an absolute http or https URL",
        ),
        (
            {"hub_mode": "subscribe", "hub_callback": "/cb", "hub_topic": "http://testserver/f"},
            "hub.callback must be an absolute",
        ),
        (
            {
                "hub_mode": "unsubscribe",
                "hub_callback": "http://127.0.0.1/cb",
                "hub_topic": "javascript:x",
            },
            "hub.topic must be an absolute",
        ),
        (
            {
                "hub_mode": "subscribe",
                "hub_callback": "http://127.0.0.1/cb",
                "hub_topic": "http://testserver/f",
                "hub_lease_seconds": "ten",
            },
            "hub.lease_seconds must be a positive integer",
        ),
        (
            {
                "hub_mode": "subscribe",
                "hub_callback": "http://127.0.0.1/cb",
                "hub_topic": "http://testserver/f",
                "hub_lease_seconds": "-5",
            },
            "hub.lease_seconds must be a positive integer",
        ),
        (
            {
                "hub_mode": "subscribe",
                "hub_callback": "http://127.0.0.1/cb",
                "hub_topic": "http://testserver/f",
                "hub_secret": "s" * 200,
            },
            "hub.secret must be less than 200 bytes",
        ),
        ({"hub_mode": "publish"}, "hub.mode=publish needs hub.url"),
        ({"hub_mode": "publish", "hub_url": "not a url"}, "hub.url must be an absolute"),
        (
            {"hub_mode": "publish", "hub_url": "http://elsewhere.example/feed"},
            "is not published through this hub",
        ),
        (
            {
                "hub_mode": "subscribe",
                "hub_callback": "http://127.0.0.1/" + "x" * 2100,
                "hub_topic": "http://t/",
            },
            "longer than",
        ),
    ],
)
def test_bad_requests_get_400_with_reason_and_store_nothing(client, settings, data, reason):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    response = post(client, **data)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert response["Content-Type"].startswith("text/plain")
    assert nothing_stored()


def test_secret_of_199_bytes_is_accepted(client, settings, server):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    response = post(
        client,
        hub_mode="subscribe",
        hub_callback=server.url + "/cb",
        hub_topic="http://testserver/f",
        hub_secret="s" * 199,
    )
    assert response.status_code == 202


def test_unknown_parameters_are_ignored(client, server, settings):
    # H-1, websub.rocks hub 102
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    response = client.post(
        HUB,
        {
            "hub.mode": "subscribe",
            "hub.callback": server.url + "/cb",
            "hub.topic": "http://testserver/f",
            "foo": "bar",
            "hub.foo": "hub.bar",
        },
    )
    assert response.status_code == 202
    assert Intent.objects.count() == 1


def test_answer_does_not_depend_on_verification(
    client, server, settings, django_capture_on_commit_callbacks
):
    # H-2: the callback refuses; the hub still answers 202 and the intent fails afterwards.
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    server.default = Reply(404)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            hub_mode="subscribe",
            hub_callback=server.url + "/cb",
            hub_topic="http://testserver/f",
        )
    assert response.status_code == 202
    run_queued()  # the verification task, on a real queue (PUSH_TEST_TASKS=rq|db)
    intent = Intent.objects.get()
    assert intent.status == Intent.Status.FAILED
    assert intent.reason == "callback answered HTTP 404"
    assert not HubSubscription.objects.exists()


@pytest.mark.parametrize("hub_setting", ["", "https://hub.example/websub"])
def test_publish_fetches_each_url_once_and_names_the_hub(
    client, server, settings, django_capture_on_commit_callbacks, hub_setting
):
    # H-20: hub.url is repeatable, hub.topic is accepted too; each topic is fetched once (H-13).
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    settings.PUSH_HUB_URL = hub_setting
    for path in ["/a", "/b"]:
        server.replies[path] = Reply(200, path.encode(), {"Content-Type": "text/plain"})
        HubSubscription.objects.create(
            topic=server.url + path,
            callback=server.url + "/cb",
            lease_seconds=3600,
            expires_at=timezone.now() + datetime.timedelta(hours=1),
        )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            HUB,
            {
                "hub.mode": "publish",
                "hub.url": [server.url + "/a", server.url + "/b", server.url + "/a"],
                "hub.topic": server.url + "/b",
            },
        )
    assert response.status_code == 202
    assert response.content == b"Publishing 2 topic(s)"
    run_queued()
    assert sorted(r.path for r in server.requests if r.method == "GET") == ["/a", "/b"]
    stored = {c.topic: (bytes(c.body), c.hub_url) for c in Content.objects.all()}
    hub_url = hub_setting or "http://testserver/hub/"
    assert stored == {server.url + "/a": (b"/a", hub_url), server.url + "/b": (b"/b", hub_url)}


def test_private_addresses_are_refused_by_default(client, settings):
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = False
    settings.ALLOWED_HOSTS = ["testserver"]
    for callback in [
        "http://127.0.0.1/cb",
        "http://localhost/cb",
        "http://10.0.0.8/cb",
        "http://[::1]/cb",
    ]:
        response = post(
            client, hub_mode="subscribe", hub_callback=callback, hub_topic="http://93.184.216.34/f"
        )
        assert response.status_code == 400, callback
        assert "not a public address" in response.content.decode()
    assert nothing_stored()


def test_get_is_refused_with_an_explanation(client):
    response = client.get(HUB)
    assert response.status_code == 405
    assert b"WebSub hub" in response.content


def test_malformed_bodies_never_500(client):
    for body, content_type in [
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (b"{}", "application/json"),
        (b"hub.mode=%ZZ&&&==", "application/x-www-form-urlencoded"),
    ]:
        response = client.post(HUB, data=body, content_type=content_type)
        assert response.status_code == 400


def test_too_many_fields_is_400(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    response = client.post(
        HUB,
        data="&".join(f"f{i}=1" for i in range(10)),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400


def test_topic_policies(settings):
    settings.ALLOWED_HOSTS = ["example.com", ".example.org"]
    settings.PUSH_HUB_TOPICS = None
    assert topic_allowed("https://example.com/feed")
    assert topic_allowed("https://blog.example.org:8443/feed")
    assert not topic_allowed("https://example.net/feed")
    settings.PUSH_HUB_TOPICS = ["https://a.example/feeds/"]
    assert topic_allowed("https://a.example/feeds/1")
    assert not topic_allowed("https://a.example/other")
    settings.PUSH_HUB_TOPICS = lambda url: url.endswith(".atom")
    assert topic_allowed("http://x/y.atom")
    assert not topic_allowed("http://x/y.rss")
    settings.PUSH_HUB_TOPICS = "tests.test_hub_endpoint.only_https"
    assert topic_allowed("https://x/")
    assert not topic_allowed("http://x/")


def only_https(url):
    return url.startswith("https://")
