"""System checks of the hub's numeric settings (django_push.E105)."""

from __future__ import annotations

import pytest

from django_push.checks import check_hub_settings


def ids(errors):
    return [error.id for error in errors]


def test_defaults_pass(settings):
    assert "django_push.E105" not in ids(check_hub_settings())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUSH_HUB_BATCH_SIZE", 0),
        ("PUSH_HUB_BATCH_SIZE", "500"),
        ("PUSH_HUB_CONCURRENCY", 2.5),
        ("PUSH_HUB_MAX_CONTENT_SIZE", -1),
        ("PUSH_HUB_RETRY_BASE", "30"),
        ("PUSH_HUB_RETRY_HORIZON", 0),
        ("PUSH_HUB_RETENTION", None),
        ("PUSH_HUB_CLAIM_SECONDS", True),
        ("PUSH_HUB_CLAIM_SECONDS", 0.5),  # read as int(): 0 would expire every claim at once
        ("PUSH_HUB_MAX_PUBLISH_URLS", 0),
        ("PUSH_HUB_MAX_PENDING_PER_HOST", "50"),
        ("PUSH_HUB_MAX_PENDING", 0),
    ],
)
def test_bad_numbers_are_reported(settings, name, value):
    setattr(settings, name, value)
    [error] = [e for e in check_hub_settings() if e.id == "django_push.E105"]
    assert error.msg.startswith(f"{name} must be a positive")
    assert repr(value) in error.msg


def test_a_fraction_is_fine_for_the_retry_base(settings):
    settings.PUSH_HUB_RETRY_BASE = 0.05
    assert "django_push.E105" not in ids(check_hub_settings())


def test_claim_shorter_than_two_batches_is_a_warning(settings):
    # Defaults: 2 x ceil(500 / 100) x 30 s = 300 s, exactly PUSH_HUB_CLAIM_SECONDS.
    assert "django_push.W102" not in ids(check_hub_settings())
    settings.PUSH_TIMEOUT = 31
    [warning] = [e for e in check_hub_settings() if e.id == "django_push.W102"]
    assert "(300)" in warning.msg and "310 s" in warning.msg
    assert "at least 310" in warning.hint
    settings.PUSH_HUB_CLAIM_SECONDS = 310
    assert "django_push.W102" not in ids(check_hub_settings())
    settings.PUSH_HUB_BATCH_SIZE = 501  # one more round of requests
    assert "django_push.W102" in ids(check_hub_settings())


def test_claim_check_waits_for_valid_numbers(settings):
    settings.PUSH_HUB_BATCH_SIZE = "many"
    found = ids(check_hub_settings())
    assert "django_push.E105" in found and "django_push.W102" not in found
