"""Each role logs on its own child of the ``django_push`` logger (docs/troubleshooting.rst)."""

from __future__ import annotations

import logging
import logging.config
import runpy
from pathlib import Path

import pytest

from django_push.publisher import ping_hub
from django_push.subscriber.models import Subscription

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "logging_example.py"


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def parent():
    """A handler on "django_push" only, as a user's LOGGING configures it."""
    logger = logging.getLogger("django_push")
    recorder = Recorder()
    logger.addHandler(recorder)
    try:
        yield recorder
    finally:
        logger.removeHandler(recorder)


@pytest.mark.django_db
def test_a_handler_on_django_push_gets_every_role_by_name(parent, client, push_hub):
    ping_hub("http://example.com/feed/")  # publisher
    assert client.post("/hub/", {"hub.mode": "nonsense"}).status_code == 400  # hub
    assert client.get("/subscriber/999999/").status_code == 404  # subscriber (DEBUG)
    names = {record.name: record.getMessage() for record in parent.records}
    assert names["django_push.publisher"].startswith(f"Pinged hub {push_hub.url}")
    assert names["django_push.hub"].startswith("Refused hub request")
    assert names["django_push.subscriber"].startswith("Refused a request to an unknown callback")


@pytest.mark.django_db
def test_signal_receivers_that_raise_log_on_django_push_signals(
    parent, push_hub, django_capture_on_commit_callbacks
):
    from django_push.subscriber.signals import subscription_verified

    def broken(**kwargs):
        raise RuntimeError("receiver bug")

    subscription_verified.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            Subscription.objects.subscribe("http://example.com/feed/", hub=push_hub.url)
        with django_capture_on_commit_callbacks(execute=True):
            assert push_hub.verify().status_code == 200
    finally:
        subscription_verified.disconnect(broken)
    raised = [r for r in parent.records if r.name == "django_push.signals"]
    assert len(raised) == 1 and "subscription_verified" in raised[0].getMessage()


@pytest.mark.django_db
def test_the_documented_logging_setting(client, push_hub):
    config = runpy.run_path(str(EXAMPLE))["LOGGING"]
    loggers = config["loggers"]
    assert set(loggers) == {"django_push", "django_push.subscriber", "django_push.hub"}
    before = {name: logging.getLogger(name).level for name in loggers}
    logging.config.dictConfig(config)
    recorder = Recorder()
    top = logging.getLogger("django_push")
    console = top.handlers[:]
    top.handlers[:] = [recorder]
    try:
        client.get("/subscriber/999999/")  # DEBUG, and django_push.subscriber lets it through
        client.post("/hub/", {"hub.mode": "nonsense"})  # INFO, below django_push.hub's WARNING
        ping_hub("http://example.com/feed/")  # INFO, django_push's level
    finally:
        top.handlers[:] = [h for h in console if not isinstance(h, logging.StreamHandler)]
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
    assert [r.name for r in recorder.records] == ["django_push.subscriber", "django_push.publisher"]
