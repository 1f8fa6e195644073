"""Subscription requests as a hub sees them on the wire (WebSub 5.1, S-5 .. S-10)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_push.exceptions import HubError
from django_push.subscriber.models import Subscription, SubscriptionError
from django_push.subscriber.utils import get_domain
from tests.servers import Reply

pytestmark = pytest.mark.django_db


def subscribe(django_capture_on_commit_callbacks, topic, hub, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return Subscription.objects.subscribe(topic, hub=hub, **kwargs)


def test_subscribe_request_fields(server, django_capture_on_commit_callbacks):
    server.default = Reply(202)
    sub = subscribe(django_capture_on_commit_callbacks, "http://example.com/feed", server.url)
    [request] = server.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert request.headers["User-Agent"].startswith("django-push/")
    assert request.form == {
        "hub.callback": [f"http://testserver.com/subscriber/{sub.pk}/?token={sub.callback_token}"],
        "hub.mode": ["subscribe"],
        "hub.topic": ["http://example.com/feed"],
    }
    sub.refresh_from_db()
    # S-8: 202 means queued, not active.
    assert not sub.verified
    assert sub.pending == "subscribe"
    assert sub.lease_expiration is None


def test_lease_argument_wins_over_setting(server, settings, django_capture_on_commit_callbacks):
    settings.PUSH_LEASE_SECONDS = 14
    server.default = Reply(202)
    subscribe(
        django_capture_on_commit_callbacks, "http://example.com/f", server.url, lease_seconds=12
    )
    assert server.requests[0].form["hub.lease_seconds"] == ["12"]


def test_plain_http_hub_gets_no_secret(server, django_capture_on_commit_callbacks):
    server.default = Reply(202)
    sub = subscribe(django_capture_on_commit_callbacks, "http://example.com/f", server.url)
    assert sub.secret == ""
    assert "hub.secret" not in server.requests[0].form


def test_insecure_secrets_setting_sends_secret_over_http(server, settings):
    settings.PUSH_INSECURE_SECRETS = True
    server.default = Reply(202)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url)
    sub.subscribe()
    sub.refresh_from_db()
    # Pending until the hub verifies it (the hub's content is checked against ``secret``).
    assert (sub.secret, len(sub.pending_secret)) == ("", 50)
    assert len(sub.pending_secret.encode()) < 200  # S-6
    assert server.requests[0].form["hub.secret"] == [sub.pending_secret]


def test_https_hub_gets_a_secret_that_survives_renewal(unused_tcp_port):
    sub = Subscription.objects.create(
        topic="http://example.com/f", hub=f"https://127.0.0.1:{unused_tcp_port}/"
    )
    with pytest.raises(SubscriptionError):
        sub.subscribe()  # nobody listens: the point is the secret made for an https hub
    sub.refresh_from_db()
    first = sub.pending_secret
    assert (sub.secret, len(first)) == ("", 50)
    with pytest.raises(SubscriptionError):
        sub.subscribe()
    sub.refresh_from_db()
    assert (sub.secret, sub.pending_secret) == ("", first)


def test_unsubscribe_request_has_no_lease_nor_secret(server, settings):
    settings.PUSH_LEASE_SECONDS = 100
    settings.PUSH_INSECURE_SECRETS = True
    server.default = Reply(202)
    sub = Subscription.objects.create(
        topic="http://example.com/f", hub=server.url, secret="x" * 20, verified=True
    )
    sub.unsubscribe()
    form = server.requests[0].form
    assert form["hub.mode"] == ["unsubscribe"]
    assert "hub.lease_seconds" not in form
    assert "hub.secret" not in form
    sub.refresh_from_db()
    assert sub.pending == "unsubscribe"
    assert sub.verified  # still active until the hub verifies the unsubscription


def test_creating_a_row_sends_nothing(server):
    Subscription.objects.create(topic="http://example.com/f", hub=server.url)
    assert server.requests == []


@pytest.mark.parametrize("status", [200, 202])
def test_any_2xx_is_accepted(server, status):
    server.default = Reply(status)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url)
    assert sub.subscribe().status == status
    sub.refresh_from_db()
    assert sub.pending == "subscribe"
    assert sub.last_error == ""


def test_204_from_legacy_hub_means_verified(server):
    server.default = Reply(204)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url)
    sub.subscribe()
    sub.refresh_from_db()
    assert sub.verified
    assert sub.pending == ""


def test_204_to_unsubscribe_deletes_the_row(server):
    server.default = Reply(204)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url, verified=True)
    sub.unsubscribe()
    assert not Subscription.objects.filter(pk=sub.pk).exists()


def test_hub_error_raises_with_hub_text_and_is_recorded(server, caplog):
    server.default = Reply(400, b"hub.topic is not allowed here")
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url)
    with pytest.raises(SubscriptionError) as info:
        sub.subscribe()
    error = info.value
    assert isinstance(error, HubError)
    assert error.hub == server.url
    assert error.status == 400
    assert error.subscription == sub
    assert error.response is not None and error.response.status_code == 400
    assert "hub.topic is not allowed here" in str(error)
    # As 1.1 raised it: SubscriptionError(message, subscription, response).
    assert error.args == (str(error), sub, error.response)
    _message, subscription, response = error.args
    assert (subscription, response.status_code) == (sub, 400)
    sub.refresh_from_db()
    assert sub.pending == ""
    assert "hub.topic is not allowed here" in sub.last_error
    assert "hub.topic is not allowed here" in caplog.text


def test_hub_redirect_307_repeats_the_request(server):
    server.replies["/old"] = Reply(307, headers={"Location": "/new"})
    server.replies["/new"] = Reply(202)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url + "/old")
    sub.subscribe(lease_seconds=60)
    old, new = server.requests
    assert (old.path, new.path) == ("/old", "/new")
    assert new.method == "POST"
    assert new.form == old.form


def test_hub_redirect_308_repeats_the_request(server):
    # S-8 (websub.rocks 204): 308 + Location means the same POST at the new hub URL.
    server.replies["/old"] = Reply(308, headers={"Location": server.url + "/moved?x=1"})
    server.replies["/moved"] = Reply(202)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url + "/old")
    assert sub.subscribe(lease_seconds=60).status == 202
    old, new = server.requests
    assert (old.path, new.path) == ("/old", "/moved?x=1")
    assert new.method == "POST"
    assert new.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert new.form == old.form
    assert new.form["hub.mode"] == ["subscribe"]
    assert new.form["hub.lease_seconds"] == ["60"]
    sub.refresh_from_db()
    assert sub.pending == "subscribe"
    assert sub.last_error == ""


def test_timeout_applies_to_hub_requests(server, settings):
    settings.PUSH_TIMEOUT = 0.3
    server.default = Reply(202, delay=2)
    sub = Subscription.objects.create(topic="http://example.com/f", hub=server.url)
    with pytest.raises(SubscriptionError, match="no answer within 0.3 seconds"):
        sub.subscribe()


def test_unreachable_hub_is_a_subscription_error(unused_tcp_port):
    sub = Subscription.objects.create(
        topic="http://e.com/f", hub=f"http://127.0.0.1:{unused_tcp_port}"
    )
    with pytest.raises(SubscriptionError) as info:
        sub.subscribe()
    assert info.value.status is None
    assert info.value.response is None
    assert info.value.args == (str(info.value), sub, None)


def test_subscribe_inside_atomic_waits_for_commit(server, django_capture_on_commit_callbacks):
    server.default = Reply(202)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        Subscription.objects.subscribe("http://example.com/f", hub=server.url)
    assert server.requests == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert len(server.requests) == 1


def test_resubscribing_renews_the_same_row(server, django_capture_on_commit_callbacks):
    server.default = Reply(202)
    first = subscribe(django_capture_on_commit_callbacks, "http://example.com/f", server.url)
    Subscription.objects.filter(pk=first.pk).update(verified=True, pending="")
    second = subscribe(django_capture_on_commit_callbacks, "http://example.com/f", server.url)
    assert first.pk == second.pk
    assert Subscription.objects.count() == 1
    second.refresh_from_db()
    assert second.verified  # still active while the renewal is pending


def test_failed_task_request_is_logged_not_raised(
    server, django_capture_on_commit_callbacks, caplog
):
    server.default = Reply(500, b"boom")
    sub = subscribe(django_capture_on_commit_callbacks, "http://example.com/f", server.url)
    sub.refresh_from_db()
    assert "boom" in sub.last_error


def test_callback_url_uses_https_with_ssl_setting(settings):
    settings.PUSH_SSL_CALLBACK = True
    sub = Subscription.objects.create(topic="http://e.com/f", hub="http://h.com")
    assert sub.callback_url.startswith("https://testserver.com/subscriber/")


def test_callback_url_of_unsaved_row_is_empty():
    assert Subscription(topic="http://e.com/f", hub="http://h.com").callback_url == ""


def test_get_domain_without_domain_or_sites(settings):
    del settings.PUSH_DOMAIN
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "django.contrib.sites"]
    with pytest.raises(ImproperlyConfigured, match="PUSH_DOMAIN"):
        get_domain()


def test_model_helpers():
    sub = Subscription(topic="http://example.com/" + "x" * 60, hub="http://h.com")
    assert str(sub) == f"{sub.topic}: http://h.com"
    assert sub.truncated_topic().endswith("…") and len(sub.truncated_topic()) == 50
    assert not sub.has_expired()
    sub.set_expiration(-10)
    assert sub.has_expired()
    sub.set_expiration(100)
    assert not sub.has_expired()
