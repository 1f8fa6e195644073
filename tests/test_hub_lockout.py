"""A stranger cannot lock subscribers out of the hub (issue 16, Medium 2).

The attacker sends subscription requests for callbacks that never answer, over HTTP to the
live hub. No worker runs here (the hub's tasks go to a database queue nobody reads), which
is what callbacks that hold every worker's GET look like from the endpoint.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from django_push.hub.models import Intent
from django_push.hub.verification import verify_pending
from tests.hub_rows import subscribe
from tests.servers import Reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hub(live_server, settings):
    settings.PUSH_TASK_BACKEND = "queue"  # nothing verifies: every intent stays pending
    return f"{live_server.url}/hub/"


def ask(hub, callback, topic="http://testserver/feed", mode="subscribe"):
    """(status, Retry-After) of a subscription request sent over HTTP."""
    data = urlencode({"hub.mode": mode, "hub.callback": callback, "hub.topic": topic}).encode()
    try:
        with urllib.request.urlopen(hub, data=data, timeout=10) as response:
            return response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After")


def test_one_wildcard_domain_gets_one_share_of_the_pending_verifications(hub, settings):
    settings.PUSH_HUB_MAX_PENDING_PER_HOST = 5
    settings.PUSH_HUB_MAX_PENDING = 20
    # The demonstration: 4 names under one wildcard domain, 20 requests.
    answers = [
        ask(hub, f"http://n{n % 4}.attacker.example/cb{n}", f"http://testserver/{n}")[0]
        for n in range(20)
    ]
    assert answers == [202] * 5 + [429] * 15
    assert Intent.objects.pending().count() == 5
    # ICANN rules decide what is registrable: a .co.uk name is its own domain.
    assert ask(hub, "http://a.attacker.co.uk/cb")[0] == 202
    assert ask(hub, "http://b.other.co.uk/cb")[0] == 202
    # Whoever else asks is not held back.
    assert ask(hub, "https://reader.example.org/cb")[0] == 202


def test_a_full_hub_still_takes_renewals_and_unsubscriptions(hub, settings):
    settings.PUSH_HUB_MAX_PENDING = 3
    renewing = subscribe("https://reader.example.org/cb", "http://testserver/feed")
    leaving = subscribe("https://other.example.net/cb", "http://testserver/feed")
    for n in range(3):  # three domains: what an attacker pays for
        assert ask(hub, f"http://x.attacker{n}.example/cb")[0] == 202

    assert ask(hub, "https://newcomer.example.com/cb") == (429, "60")
    assert ask(hub, renewing.callback)[0] == 202
    assert ask(hub, leaving.callback, mode="unsubscribe")[0] == 202
    # A pair the hub holds for another topic is not a renewal.
    assert ask(hub, renewing.callback, "http://testserver/other")[0] == 429
    assert set(Intent.objects.pending().values_list("callback", "mode")) >= {
        (renewing.callback, "subscribe"),
        (leaving.callback, "unsubscribe"),
    }


def test_a_renewal_is_still_capped_by_its_own_domain(hub, settings):
    settings.PUSH_HUB_MAX_PENDING_PER_HOST = 2
    held = subscribe("https://reader.example.org/cb", "http://testserver/feed")
    for n in range(2):
        assert ask(hub, f"https://reader.example.org/new{n}", f"http://testserver/{n}")[0] == 202
    assert ask(hub, held.callback)[0] == 429


def test_a_verification_that_hangs_costs_the_short_timeout(server, settings):
    settings.PUSH_TIMEOUT = 6
    settings.PUSH_HUB_VERIFY_TIMEOUT = 0.3
    server.replies["/hang"] = Reply(200, b"late", delay=3)
    intent = Intent.objects.create(
        mode="subscribe", topic="http://testserver/feed", callback=server.url + "/hang"
    )
    started = time.monotonic()
    verify_pending(intent.pk)
    elapsed = time.monotonic() - started
    intent.refresh_from_db()
    assert intent.status == Intent.Status.FAILED
    assert "0.3 seconds" in intent.reason
    assert elapsed < 2


def test_the_verification_timeout_never_exceeds_push_timeout(server, settings):
    settings.PUSH_TIMEOUT = 0.3
    server.replies["/hang"] = Reply(200, b"late", delay=3)
    intent = Intent.objects.create(
        mode="subscribe", topic="http://testserver/feed", callback=server.url + "/hang"
    )
    started = time.monotonic()
    verify_pending(intent.pk)
    assert time.monotonic() - started < 2
    intent.refresh_from_db()
    assert intent.status == Intent.Status.FAILED


@pytest.mark.parametrize(
    ("callback", "key"),
    [
        ("https://a.b.example.co.uk/cb", "example.co.uk"),
        ("https://x.y.github.io/cb", "github.io"),  # ICANN rules: one service, one key
        ("https://caf\u00e9.example.fr/", "example.fr"),
        ("https://xn--caf-dma.example.fr/", "example.fr"),
        ("https://Example.COM./cb", "example.com"),
        ("http://[2001:db8::1]:8080/cb", "2001:db8::/64"),
        ("http://[::ffff:192.0.2.1]/cb", "192.0.2.1"),
        ("http://192.0.2.1/cb", "192.0.2.1"),
        ("http://localhost:9/cb", "localhost"),
        ("not a url", ""),
    ],
)
def test_what_the_caps_count(callback, key):
    from django_push.hub.domains import registrable_domain

    assert registrable_domain(callback) == key
