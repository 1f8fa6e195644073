"""The documentation and the code stay in step.

Python reaches the docs only through ``literalinclude`` of files under docs/examples/,
and every one of those files is exercised here.
"""

from __future__ import annotations

import logging
import re
import runpy
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import resolve

from django_push import checks
from django_push.conf import Settings
from tests.servers import Reply

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.rst"))


def test_docs_have_no_untested_python_blocks():
    for page in PAGES:
        text = page.read_text()
        assert not re.search(r"\.\. (code-block|code|sourcecode)::\s*(python|py|pycon)", text), (
            page.name
        )
        for target, options in re.findall(r"\.\. literalinclude:: (\S+)\n((?:   :.*\n)*)", text):
            path = DOCS / target
            assert path.exists(), f"{page.name} includes missing {target}"
            assert path.parent.name == "examples", (
                f"{page.name}: Python must come from docs/examples"
            )
            for name in re.findall(r":pyobject: (\w+)", options):
                assert re.search(rf"^(class|def) {name}\b", path.read_text(), re.M), (
                    page.name,
                    name,
                )


def test_every_setting_and_check_id_is_documented():
    reference = (DOCS / "settings.rst").read_text()
    names = [name for name in vars(Settings) if name.startswith("PUSH_")]
    assert len(names) >= 20
    for name in names:
        assert f"``{name}``" in reference, f"{name} is missing from docs/settings.rst"
    ids = set(re.findall(r"django_push\.[EW]\d{3}", Path(checks.__file__).read_text()))
    for check_id in ids:
        assert check_id in reference, f"{check_id} is missing from docs/settings.rst"


@pytest.mark.django_db
def test_settings_example_passes_the_checks():
    values = runpy.run_path(str(DOCS / "examples" / "settings_example.py"))
    push = {name: value for name, value in values.items() if name.startswith("PUSH_")}
    assert "django_tasks_db" in values["INSTALLED_APPS"]
    with override_settings(**push, PUSH_HUB_ALLOW_PRIVATE_ADDRESSES=False):  # tests turn it on
        for check in (
            checks.check_publisher_settings,
            checks.check_subscriber_settings,
            checks.check_hub_settings,
        ):
            assert check() == [], check.__name__


def test_urls_example_routes():
    namespace = runpy.run_path(str(DOCS / "examples" / "urls_example.py"))
    with override_settings(
        ROOT_URLCONF=type("urls", (), {"urlpatterns": namespace["urlpatterns"]})
    ):
        assert resolve("/feed/").url_name == "entry_feed"
        assert resolve("/hub/").url_name == "push_hub"
        assert resolve("/subscriber/3/").kwargs == {"pk": 3}


@pytest.mark.django_db
def test_publisher_example(rf, server, settings, django_capture_on_commit_callbacks):
    from docs.examples import publisher_example as example

    settings.PUSH_HUB = server.url + "/hub"
    server.default = Reply(204)
    response = example.EntryFeed()(rf.get("/feed/"))
    assert f'<{server.url}/hub>; rel="hub"' in response["Link"]
    assert b'rel="hub"' in response.content
    assert b'"https://hub.example.com/"' in example.OtherHubFeed()(rf.get("/feed/")).content
    assert 'rel="self"' in example.status_page(rf.get("/status/"))["Link"]
    with django_capture_on_commit_callbacks(execute=True):
        example.publish_entry("News", "http://example.com/feed/")
    assert example.ENTRIES[0]["title"] == "News"
    assert example.ping_now("http://example.com/feed/", server.url + "/other").status == 204
    assert [r.form["hub.url"] for r in server.requests] == [["http://example.com/feed/"]] * 2


@pytest.mark.django_db
def test_subscriber_example(client, server, django_capture_on_commit_callbacks, caplog):
    from docs.examples import subscriber_example as example

    from django_push.subscriber.models import Subscription

    server.replies["/topic"] = Reply(200, b"", {"Link": f'<{server.url}/hub>; rel="hub"'})
    server.replies["/hub"] = Reply(202)
    with django_capture_on_commit_callbacks(execute=True):
        followed = example.follow(server.url + "/topic")
        other = example.follow_at("http://example.com/other", server.url + "/hub")
    assert followed.hub == other.hub == server.url + "/hub"
    assert [r.form["hub.mode"] for r in server.requests if r.path == "/hub"] == [["subscribe"]] * 2

    Subscription.objects.filter(pk=followed.pk).update(verified=True)
    client.post(f"/subscriber/{followed.pk}/", data=b"news", content_type="text/plain")
    assert example.received[-1] == (followed.topic, b"news")

    request = (
        __import__("django.test", fromlist=["RequestFactory"])
        .RequestFactory()
        .post("/", data=b"abc", content_type="text/plain")
    )
    with caplog.at_level(logging.INFO):
        assert example.LoggingCallback.as_view()(request, pk=followed.pk).status_code == 200
    assert "sent 3 bytes" in caplog.text

    example.stop_following(server.url + "/topic")
    assert server.requests[-1].form["hub.mode"] == ["unsubscribe"]
