"""Sending stored content again (hub_replay, admin actions) and retrying given-up deliveries
(issue 11, item 3): what arrives at real callback servers on 127.0.0.1, and what strangers
cannot do."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_push import signatures
from django_push.hub.models import Content, Delivery, HubSubscription
from django_push.hub.tasks import publish_task
from tests.hub_queue import hub_queue, run_queued  # noqa: F401  (hub_queue: a fixture)
from tests.hub_rows import counts, subscribe
from tests.servers import Reply

# Committed for real: sending again enqueues its fan-out once the transaction commits.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_queue")]

HUB_URL = "https://hub.example/hub/"
GAVE_UP = "admin:push_hub_delivery_gave_up"


def publish(server, body=b"hello", content_type="text/plain"):
    server.replies["/topic"] = Reply(200, body, {"Content-Type": content_type})
    content_id = publish_task.call(server.url + "/topic", HUB_URL)
    run_queued()
    return content_id


def posts(server, path):
    return [r for r in server.requests if r.path.split("?")[0] == path and r.method == "POST"]


def topic_fetches(server):
    return [r for r in server.requests if r.path == "/topic" and r.method == "GET"]


def replay(*args):
    out = io.StringIO()
    call_command("hub_replay", *args, stdout=out)
    run_queued()
    return out.getvalue()


def test_command_sends_the_latest_content_again_signed_without_fetching(server):
    topic = server.url + "/topic"
    signed = subscribe(server.url + "/signed", topic, secret="s3cret")
    subscribe(server.url + "/plain", topic)
    content_id = publish(server, b"<feed>v1</feed>", "application/atom+xml")
    server.replies["/topic"] = Reply(200, b"<feed>v2</feed>")  # must not be fetched
    fetches = len(topic_fetches(server))

    out = replay(topic)

    assert f"content #{content_id} of {topic}" in out
    assert "to every active subscription: 2" in out
    assert len(topic_fetches(server)) == fetches
    for path in ["/signed", "/plain"]:
        first, again = posts(server, path)
        assert again.body == first.body == b"<feed>v1</feed>"
        assert again.headers["Content-Type"] == "application/atom+xml"
    again = posts(server, "/signed")[-1]
    assert signatures.verify(signed.secret, again.body, again.headers["X-Hub-Signature"])
    assert "X-Hub-Signature" not in posts(server, "/plain")[-1].headers
    # A new plan for the same content: the same identity, and counts say who got it, not
    # how often.
    first, again = posts(server, "/plain")
    assert again.headers["Push-Delivery-Id"] == first.headers["Push-Delivery-Id"]
    assert counts(Content.objects.get(pk=content_id)) == {"delivered": 2, "pending": 0, "failed": 0}
    assert not Delivery.objects.exists()


def test_a_given_content_to_chosen_subscriptions(server):
    topic = server.url + "/topic"
    one = subscribe(server.url + "/one", topic)
    subscribe(server.url + "/two", topic)
    subscribe(server.url + "/three", topic)
    first = publish(server, b"first")
    publish(server, b"second")

    replay(topic, "--content", str(first), "--subscription", str(one.pk))
    replay("--content", str(first), "--callback", server.url + "/three")

    assert [r.body for r in posts(server, "/one")] == [b"first", b"second", b"first"]
    assert [r.body for r in posts(server, "/two")] == [b"first", b"second"]
    assert [r.body for r in posts(server, "/three")] == [b"first", b"second", b"first"]


def test_a_subscriber_that_came_later_gets_a_new_delivery(server):
    topic = server.url + "/topic"
    subscribe(server.url + "/early", topic)
    content_id = publish(server, b"news")
    subscribe(server.url + "/late", topic)

    out = replay(topic, "--callback", server.url + "/late")

    assert "1 new, 0 again" in out
    assert [r.body for r in posts(server, "/late")] == [b"news"]
    assert len(posts(server, "/early")) == 1
    assert counts(Content.objects.get(pk=content_id))["delivered"] == 2


def test_pending_deliveries_are_left_alone(server, settings):
    # A delivery waiting for its retry is owed already: sending it again would send it twice.
    settings.PUSH_HUB_RETRY_BASE = 3600
    server.replies["/cb"] = Reply(503)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    assert Delivery.objects.get().status == "pending"

    out = replay(server.url + "/topic", "--callback", server.url + "/cb")

    assert "to 0 subscription(s): 0 new, 0 again, 1 already pending" in out
    assert len(posts(server, "/cb")) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)


def test_sending_again_to_everyone_replaces_pending_retries(server, settings):
    # The new plan owes the content to that subscription: its retry goes, so it is sent once.
    settings.PUSH_HUB_RETRY_BASE = 3600
    server.replies["/cb"] = Reply(503)
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    old = Delivery.objects.get()
    server.replies["/cb"] = Reply(204)

    replay(server.url + "/topic")

    assert len(posts(server, "/cb")) == 2
    assert not Delivery.objects.filter(pk=old.pk).exists()
    assert counts(Content.objects.get()) == {"delivered": 1, "pending": 0, "failed": 0}


def test_dry_run_shows_and_sends_nothing(server):
    topic = server.url + "/topic"
    subscribe(server.url + "/cb", topic)
    publish(server)

    out = replay(topic, "--dry-run")

    assert out.startswith("Would send content #")
    assert "to every active subscription: 1" in out
    assert len(posts(server, "/cb")) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Name a topic, or a content by its id."),
        (["http://nowhere.example/feed"], "Nothing stored for topic http://nowhere.example/feed"),
        (["--content", "999999"], "No content #999999"),
        (["{other}", "--content", "{content}"], "is of topic {topic}, not {other}"),
        (["{topic}", "--subscription", "{foreign}"], "Not subscribed to {topic}: #{foreign}"),
        (["{topic}", "--callback", "{url}/nobody"], "Not subscribed to {topic}: {url}/nobody"),
        (["{topic}", "--subscription", "{ended}"], "Subscription not active (lease ended)"),
        (["--gave-up", "--host", "nowhere.example"], "No given-up delivery to host nowhere"),
        (["{topic}", "--host", "x"], "--host goes with --gave-up."),
        (["{topic}", "--gave-up"], "--gave-up takes no topic"),
    ],
)
def test_errors_name_what_to_fix(server, args, message):
    topic, other = server.url + "/topic", server.url + "/other"
    subscribe(server.url + "/cb", topic)
    foreign = subscribe(server.url + "/cb", other)
    ended = subscribe(server.url + "/ended", topic)
    content = publish(server)
    HubSubscription.objects.filter(pk=ended.pk).update(expires_at=timezone.now())
    values = {
        "topic": topic,
        "other": other,
        "content": content,
        "foreign": foreign.pk,
        "ended": ended.pk,
        "url": server.url,
    }
    sent = len(server.requests)
    with pytest.raises(CommandError) as raised:
        replay(*(arg.format(**values) for arg in args))
    assert message.format(**values) in str(raised.value)
    assert len(server.requests) == sent


def test_no_active_subscription_is_an_error(server):
    topic = server.url + "/topic"
    sub = subscribe(server.url + "/cb", topic)
    publish(server)
    HubSubscription.objects.filter(pk=sub.pk).update(expires_at=timezone.now())
    with pytest.raises(CommandError, match="has no active subscription"):
        replay(topic)


def test_admin_actions_send_again(admin_client, server):
    topic = server.url + "/topic"
    one = subscribe(server.url + "/one", topic)
    subscribe(server.url + "/two", topic)
    first = publish(server, b"first")
    publish(server, b"second")

    response = admin_client.post(
        reverse("admin:push_hub_content_changelist"),
        {"action": "send_again", "_selected_action": [first]},
        follow=True,
    )
    run_queued()
    assert f"Sending content #{first}" in response.content.decode()
    response = admin_client.post(
        reverse("admin:push_hub_hubsubscription_changelist"),
        {"action": "send_latest_again", "_selected_action": [one.pk]},
        follow=True,
    )
    run_queued()
    assert "to 1 subscription(s)" in response.content.decode()

    assert [r.body for r in posts(server, "/one")] == [b"first", b"second", b"first", b"second"]
    assert [r.body for r in posts(server, "/two")] == [b"first", b"second", b"first"]


def test_admin_action_reports_an_ended_subscription(admin_client, server):
    sub = subscribe(server.url + "/cb", server.url + "/topic")
    publish(server)
    HubSubscription.objects.filter(pk=sub.pk).update(expires_at=timezone.now())
    response = admin_client.post(
        reverse("admin:push_hub_hubsubscription_changelist"),
        {"action": "send_latest_again", "_selected_action": [sub.pk]},
        follow=True,
    )
    assert "Subscription not active" in response.content.decode()
    assert len(posts(server, "/cb")) == 1


# Deliveries the hub gave up on -----------------------------------------------------------


@pytest.fixture
def gave_up(server, settings):
    """Deliveries given up at two callback hosts (127.0.0.1: 2, localhost: 1); the callbacks
    answer 204 from now on."""
    settings.PUSH_HUB_RETRY_BASE = 10
    settings.PUSH_HUB_RETRY_HORIZON = 5  # the first failure gives up
    server.replies["/cb"] = Reply(503)
    topic = server.url + "/topic"
    subscribe(server.url + "/cb?n=1", topic)
    subscribe(server.url + "/cb?n=2", topic)
    subscribe(f"http://localhost:{server.port}/cb", topic, secret="k3y")
    publish(server, b"lost")
    assert Delivery.objects.gave_up().count() == 3
    server.replies["/cb"] = Reply(204)
    return server


def test_gave_up_view_groups_by_host_and_retries_one_host_then_all(admin_client, gave_up):
    response = admin_client.get(reverse(GAVE_UP))
    page = response.content.decode()
    assert response.status_code == 200
    assert "127.0.0.1" in page and "localhost" in page
    assert "HTTP 503" in page
    changelist = admin_client.get(reverse("admin:push_hub_delivery_changelist"))
    assert reverse(GAVE_UP) in changelist.content.decode()

    response = admin_client.post(reverse(GAVE_UP), {"host": "127.0.0.1"}, follow=True)
    run_queued()
    assert "2 delivery(ies) queued again." in response.content.decode()
    assert len(posts(gave_up, "/cb")) == 3 + 2
    assert Delivery.objects.gave_up().count() == 1

    admin_client.post(reverse(GAVE_UP), {"all": "1"})
    run_queued()
    last = posts(gave_up, "/cb")[-1]
    assert last.body == b"lost"
    assert last.headers["Host"].startswith("localhost")
    assert signatures.verify("k3y", last.body, last.headers["X-Hub-Signature"])
    # A fresh retry schedule: one attempt since the retry, and nothing left given up.
    assert set(Delivery.objects.values_list("status", "attempts")) == {("delivered", 1)}


def test_gave_up_view_post_without_a_choice_retries_nothing(admin_client, gave_up):
    response = admin_client.post(reverse(GAVE_UP), {}, follow=True)
    assert "Choose a host, or all." in response.content.decode()
    assert Delivery.objects.gave_up().count() == 3


def test_gave_up_command_lists_and_retries_a_host(gave_up):
    out = replay("--gave-up", "--dry-run")
    assert "127.0.0.1: 2 given up, last error 'HTTP 503'" in out
    assert "localhost: 1 given up" in out
    assert "Would retry 3 delivery(ies)." in out
    assert Delivery.objects.gave_up().count() == 3

    out = replay("--gave-up", "--host", "LOCALHOST")
    assert "1 delivery(ies) queued again." in out
    assert Delivery.objects.gave_up().count() == 2
    out = replay("--gave-up")
    assert "2 delivery(ies) queued again." in out
    assert not Delivery.objects.gave_up().exists()
    assert len(posts(gave_up, "/cb")) == 6


def test_gave_up_deliveries_of_ended_leases_are_not_retried(gave_up):
    HubSubscription.objects.update(expires_at=timezone.now())
    assert "Would retry 0" in replay("--gave-up", "--dry-run")
    replay("--gave-up")
    assert Delivery.objects.gave_up().count() == 3
    assert len(posts(gave_up, "/cb")) == 3


def _user(staff, perms=()):
    user = User.objects.create_user("someone", password="pw", is_staff=staff)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 302), ("not staff", 302), ("staff, no permission", 403)],
)
def test_strangers_get_nothing_and_change_nothing(gave_up, who, status):
    client = {
        "anonymous": Client,
        "not staff": lambda: _user(staff=False, perms=["change_delivery", "view_delivery"]),
        "staff, no permission": lambda: _user(staff=True),
    }[who]()
    for response in [
        client.get(reverse(GAVE_UP)),
        client.post(reverse(GAVE_UP), {"all": "1"}),
        client.post(reverse(GAVE_UP), {"host": "127.0.0.1"}),
    ]:
        assert response.status_code == status
        assert b"HTTP 503" not in response.content
        if status == 302:
            assert "/login/" in response["Location"]
    run_queued()
    assert Delivery.objects.gave_up().count() == 3
    assert len(posts(gave_up, "/cb")) == 3


def test_viewer_sees_but_cannot_retry(gave_up):
    client = _user(staff=True, perms=["view_delivery"])
    response = client.get(reverse(GAVE_UP))
    assert response.status_code == 200
    assert b"Retry all" not in response.content
    assert client.post(reverse(GAVE_UP), {"all": "1"}).status_code == 403
    assert Delivery.objects.gave_up().count() == 3


def test_retry_needs_the_csrf_token(gave_up):
    user = User.objects.create_superuser("admin2", password="pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse(GAVE_UP), {"all": "1"}).status_code == 403
    run_queued()
    assert Delivery.objects.gave_up().count() == 3
    page = client.get(reverse(GAVE_UP))
    token = page.cookies["csrftoken"].value
    response = client.post(reverse(GAVE_UP), {"all": "1", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    run_queued()
    assert not Delivery.objects.gave_up().exists()


def test_contents_count_each_subscriber_once_after_sending_again(admin_client, gave_up):
    admin_client.post(reverse(GAVE_UP), {"all": "1"})
    run_queued()
    replay(gave_up.url + "/topic")
    assert counts(Content.objects.get()) == {"delivered": 3, "pending": 0, "failed": 0}
    assert len(posts(gave_up, "/cb")) == 3 + 3 + 3


def test_escaped_unreserved_characters_name_the_same_topic(server):
    subscribe(server.url + "/cb", server.url + "/topic")
    publish(server, b"once")
    replay(server.url + "/%74opic")  # %74 is "t"
    assert [r.body for r in posts(server, "/cb")] == [b"once", b"once"]


def test_retry_now_action_gives_given_up_deliveries_a_fresh_schedule(admin_client, gave_up):
    pks = list(Delivery.objects.values_list("pk", flat=True))
    response = admin_client.post(
        reverse("admin:push_hub_delivery_changelist"),
        {"action": "retry_now", "_selected_action": pks},
        follow=True,
    )
    run_queued()
    assert "3 delivery(ies) queued again." in response.content.decode()
    assert set(Delivery.objects.values_list("status", "attempts", "first_failure_at")) == {
        ("delivered", 1, None)
    }
