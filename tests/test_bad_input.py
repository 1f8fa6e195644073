"""Arbitrary input never gets a 500: the hub endpoint and the subscriber's callback answer
every request with a 2xx or a 4xx (with a reason), whatever the fields hold.

Runs on SQLite in the quick leg and on PostgreSQL in its leg (NUL characters and huge
integers are what PostgreSQL refuses and SQLite stores).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_push.hub.models import Intent, Ping
from django_push.subscriber.models import Subscription

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values that are nearly right are the ones that slip past validation.
TRICKY_VALUES = [
    "",
    " ",
    "\x00",
    "http://testserver/feed\x00",
    "http://[::1",
    "http://host:99999/x",
    "http://host:port/x",
    "http://testserver:0/",
    "https://testserver/cb?a=1#frag",
    "http://%zz/",
    "http://[fe80::1%25eth0]/cb",
    "²",
    "٣",
    "9" * 5000,
    "99999999999999999999",
    "2147483648",
    "-1",
    "0",
    "1e3",
    "s" * 199,
    "é" * 100,
    "subscribe",
    "unsubscribe",
    "publish",
    "denied",
]
TRICKY = st.sampled_from(TRICKY_VALUES)
VALUES = st.one_of(TRICKY, st.text(max_size=40), st.text(string.printable, max_size=40))
NAMES = [
    "hub.mode",
    "hub.callback",
    "hub.topic",
    "hub.url",
    "hub.lease_seconds",
    "hub.secret",
    "hub.challenge",
    "hub.reason",
    "hub.verify_token",
]
# Each protocol field is there or not, as one value or several; unknown fields besides.
HUB_FIELDS = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries(
        {}, optional={name: st.one_of(VALUES, st.lists(VALUES, max_size=3)) for name in NAMES}
    ),
    st.dictionaries(st.text(max_size=10), VALUES, max_size=3),
)


def answered(response):
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert response.content, "a 4xx must say why"
    return response


def refused_stores_nothing(client, fields):
    before = (Intent.objects.count(), Ping.objects.count())
    response = answered(client.post("/hub/", fields))
    if response.status_code != 202:
        assert (Intent.objects.count(), Ping.objects.count()) == before, "a refusal stored"


@FUZZ
@given(fields=HUB_FIELDS)
def test_hub_endpoint_never_answers_500(client, fields):
    refused_stores_nothing(client, fields)


VALID = {
    "subscribe": {
        "hub.mode": "subscribe",
        "hub.callback": "http://127.0.0.1/cb",
        "hub.topic": "http://testserver/feed",
        "hub.lease_seconds": "3600",
        "hub.secret": "s3cret",
    },
    "publish": {"hub.mode": "publish", "hub.url": "http://testserver/feed"},
}


@pytest.mark.parametrize("mode", sorted(VALID))
def test_every_tricky_value_in_every_field_is_answered(client, mode):
    # Exhaustive over the known-nasty values: random generation would reach them rarely.
    for name in NAMES:
        for value in [*TRICKY_VALUES, [*TRICKY_VALUES[:3]]]:
            refused_stores_nothing(client, {**VALID[mode], name: value})


@FUZZ
@given(
    mode=st.sampled_from(sorted(VALID)),
    name=st.sampled_from(NAMES),
    value=st.one_of(VALUES, st.lists(VALUES, max_size=3)),
)
def test_one_bad_field_in_a_valid_request_never_answers_500(client, mode, name, value):
    # Everything else valid, so the checks behind the first one are reached too.
    refused_stores_nothing(client, {**VALID[mode], name: value})


@FUZZ
@given(fields=HUB_FIELDS, method=st.sampled_from(["get", "post"]))
def test_callback_view_never_answers_500(client, fields, method):
    subscription, _ = Subscription.objects.get_or_create(
        hub="https://hub.example/", topic="http://testserver/feed", defaults={"verified": True}
    )
    url = f"/subscriber/{subscription.pk}/"
    if method == "get":
        answered(client.get(url, {"token": subscription.callback_token, **fields}))
    else:
        answered(client.post(f"{url}?token={subscription.callback_token}", fields))


@pytest.mark.parametrize("mode", ["subscribe", "unsubscribe", "denied"])
def test_every_tricky_value_in_a_verification_is_answered(client, mode):
    # A subscription waiting for this very verification: the deepest path of the view.
    subscription = Subscription.objects.create(
        hub="https://hub.example/", topic="http://testserver/feed"
    )
    valid = {
        "hub.mode": mode,
        "hub.topic": subscription.topic,
        "hub.challenge": "abc",
        "hub.lease_seconds": "3600",
        "hub.reason": "no",
    }
    for name in valid:
        for value in TRICKY_VALUES:
            pending = "unsubscribe" if mode == "unsubscribe" else "subscribe"
            Subscription.objects.filter(pk=subscription.pk).update(pending=pending)
            if not Subscription.objects.filter(pk=subscription.pk).exists():
                subscription.save(force_insert=True)  # a verified unsubscription deletes it
            answered(
                client.get(
                    f"/subscriber/{subscription.pk}/",
                    {"token": subscription.callback_token, **valid, name: value},
                )
            )
