from django.test import TestCase

from django_push.subscriber.models import Subscription
from django_push.testing import PushHubMixin

from .testing_pytest_example import follow, news, publish


class FollowTests(PushHubMixin, TestCase):
    def test_follow_then_receive(self):
        topic = self.push_hub.serve_topic("/blog/feed/")
        with self.captureOnCommitCallbacks(execute=True):
            follow(topic)
        self.push_hub.assert_subscribed(topic)

        self.assertEqual(self.push_hub.verify().status_code, 200)
        self.assertTrue(Subscription.objects.get(topic=topic).verified)
        self.assertEqual(self.push_hub.deliver(b"<feed/>").status_code, 200)
        self.assertEqual(news[-1], (topic, b"<feed/>"))

    def test_denied(self):
        topic = self.push_hub.serve_topic("/blog/feed/")
        with self.captureOnCommitCallbacks(execute=True):
            follow(topic)
        self.push_hub.deny(reason="topic retired")
        self.assertEqual(Subscription.objects.get(topic=topic).denied_reason, "topic retired")

    def test_publish(self):
        with self.captureOnCommitCallbacks(execute=True):
            publish("https://www.example.com/blog/feed/")
        ping = self.push_hub.assert_pinged("https://www.example.com/blog/feed/")
        self.assertEqual(ping.topic, "https://www.example.com/blog/feed/")
