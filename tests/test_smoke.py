from __future__ import annotations

import pytest

from django_push.subscriber.models import Subscription
from tests.servers import Reply


@pytest.mark.django_db
def test_subscribe_posts_to_real_hub(server, django_capture_on_commit_callbacks):
    server.default = Reply(202)
    with django_capture_on_commit_callbacks(execute=True):
        sub = Subscription.objects.subscribe("http://example.com/feed", hub=server.url + "/hub")
    assert server.requests, "no request reached the hub"
    form = server.requests[0].form
    assert form["hub.mode"] == ["subscribe"]
    assert form["hub.callback"] == [sub.callback_url]
    assert sub.callback_url.startswith(f"http://testserver.com/subscriber/{sub.pk}/?token=")
