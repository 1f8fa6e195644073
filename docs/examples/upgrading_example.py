from django_push.subscriber.models import Subscription
from django_push.testing import FakeHub


def subscription_state(subscription):
    # 1.1 raised SubscriptionError from subscribe(); 2.0 records what the hub said.
    subscription.refresh_from_db()
    if subscription.verified:
        return "verified"
    if subscription.last_error:
        return f"refused: {subscription.last_error}"
    return "waiting for the hub"


def test_follow_subscribes(client, django_capture_on_commit_callbacks):
    # A pytest-django test; the tests' TASKS setting uses the immediate backend.
    with FakeHub() as hub:
        with django_capture_on_commit_callbacks(execute=True):
            subscription = Subscription.objects.subscribe(
                "https://example.com/feed.atom", hub=hub.url
            )
        assert hub.last.mode == "subscribe"
        assert hub.last.callback == subscription.callback_url
        assert subscription_state(subscription) == "waiting for the hub"

        assert hub.verify(client).status_code == 200
        assert subscription_state(subscription) == "verified"
        assert hub.deliver(client, b"<feed/>").status_code == 200


def test_refused_subscription(django_capture_on_commit_callbacks):
    with (
        FakeHub(status=403, text="not allowed") as hub,
        django_capture_on_commit_callbacks(execute=True),
    ):
        subscription = Subscription.objects.subscribe("https://example.com/feed.atom", hub=hub.url)
    assert subscription_state(subscription) == "refused: HTTP 403: not allowed"
