"""The testing kit used as a user would: the docs' example test modules, collected here."""

from __future__ import annotations

from docs.examples.testing_live_example import test_subscribe_publish_receive
from docs.examples.testing_pytest_example import (  # collected and run as this module's tests
    pytestmark,
    test_a_forged_delivery_is_dropped,
    test_a_refused_subscription_is_recorded,
    test_follow_then_receive,
    test_publish_pings_the_hub,
)
from docs.examples.testing_unittest_example import FollowTests

__all__ = [
    "FollowTests",
    "pytestmark",
    "test_a_forged_delivery_is_dropped",
    "test_a_refused_subscription_is_recorded",
    "test_follow_then_receive",
    "test_publish_pings_the_hub",
    "test_subscribe_publish_receive",
]
