"""One test per system check id."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_push import checks


@pytest.fixture(autouse=True)
def own_hosts(settings):
    """The test settings' ALLOWED_HOSTS = ["*"] would add W107 to every check here."""
    settings.ALLOWED_HOSTS = ["testserver", "www.example.com"]


def ids(messages):
    return [message.id for message in messages]


def not_callable(hub_url):  # pragma: no cover - referenced by dotted path only
    return None


NOT_CALLABLE = "not a function"


@pytest.mark.parametrize("value", ["hub.example.com", "ftp://hub.example.com/", 42])
def test_e001_push_hub_not_http_url(settings, value):
    settings.PUSH_HUB = value
    assert ids(checks.check_publisher_settings()) == ["django_push.E001"]


def test_valid_push_hub_passes(settings):
    settings.PUSH_HUB = "https://hub.example.com/"
    assert checks.check_publisher_settings() == []


def test_e002_no_domain_source(settings):
    del settings.PUSH_DOMAIN
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "django.contrib.sites"]
    assert "django_push.E002" in ids(checks.check_subscriber_settings())


def test_e003_credentials_not_importable(settings):
    settings.PUSH_CREDENTIALS = "nowhere.to.be.found"
    messages = checks.check_subscriber_settings()
    assert ids(messages) == ["django_push.E003"]
    assert "nowhere.to.be.found" in messages[0].msg


def test_e004_credentials_not_callable(settings):
    settings.PUSH_CREDENTIALS = "tests.test_checks.NOT_CALLABLE"
    assert ids(checks.check_subscriber_settings()) == ["django_push.E004"]


@pytest.mark.parametrize("value", [0, -1, "10", 1.5, True])
def test_e005_bad_lease_seconds(settings, value):
    settings.PUSH_LEASE_SECONDS = value
    assert ids(checks.check_subscriber_settings()) == ["django_push.E005"]


@pytest.mark.parametrize("value", [-1, "30", None, True, float("nan")])
def test_e014_bad_retry_horizon(settings, value):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = value
    assert ids(checks.check_subscriber_settings()) == ["django_push.E018"]


@pytest.mark.parametrize("value", [0, 0.5, 90])
def test_retry_horizon_of_zero_or_more_seconds_is_fine(settings, value):
    settings.PUSH_SUBSCRIBER_RETRY_HORIZON = value
    assert ids(checks.check_subscriber_settings()) == []


@pytest.mark.parametrize("value", [0, -1, "7200", True, 3600, 60])
def test_e019_subscriber_health_max_age(settings, value):
    settings.PUSH_RENEW_INTERVAL = 3600
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = value
    assert ids(checks.check_subscriber_settings()) == ["django_push.E019"]
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = 7200.5
    assert ids(checks.check_subscriber_settings()) == []
    settings.PUSH_SUBSCRIBER_HEALTH_MAX_AGE = None
    assert ids(checks.check_subscriber_settings()) == []


@pytest.mark.parametrize("value", [0, "abc", 1.5])
def test_e006_bad_max_body_size(settings, value):
    settings.PUSH_MAX_BODY_SIZE = value
    assert ids(checks.check_subscriber_settings()) == ["django_push.E006"]


@pytest.mark.parametrize("value", [0, "5", -3])
def test_e007_bad_timeout(settings, value):
    settings.PUSH_TIMEOUT = value
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False  # else W002 joins in
    assert ids(checks.check_common_settings()) == ["django_push.E007"]


def test_w001_insecure_secrets(settings):
    settings.PUSH_INSECURE_SECRETS = True
    assert ids(checks.check_subscriber_settings()) == ["django_push.W001"]


def test_e101_bad_hub_url(settings):
    settings.PUSH_HUB_URL = "/hub/"
    assert "django_push.E101" in ids(checks.check_hub_settings())


@pytest.mark.parametrize("value", [(10, 5, 20), (0, 1, 2), "x", (1, 2)])
def test_e102_bad_lease_policy(settings, value):
    settings.PUSH_HUB_LEASE_SECONDS = value
    assert "django_push.E102" in ids(checks.check_hub_settings())


def test_e103_bad_signature_algorithm(settings):
    settings.PUSH_HUB_SIGNATURE_ALGORITHM = "md5"
    assert "django_push.E103" in ids(checks.check_hub_settings())


@pytest.mark.parametrize("value", ["no.such.module.allow", 42])
def test_e104_bad_topics(settings, value):
    settings.PUSH_HUB_TOPICS = value
    assert "django_push.E104" in ids(checks.check_hub_settings())


def check_output(command="check", **options):
    """What ``command`` prints of the system checks (W101 is not silenced here)."""
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    if command != "check":  # check runs them itself
        options["skip_checks"] = False
    call_command(command, stdout=out, stderr=err, **options)
    return out.getvalue() + err.getvalue()


@pytest.mark.django_db
def test_w101_private_addresses_only_in_check(settings):
    settings.SILENCED_SYSTEM_CHECKS = []
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = True
    assert "django_push.W101" in check_output()
    # Other commands run the checks too (W001 shows it), and keep quiet about W101.
    settings.PUSH_INSECURE_SECRETS = True
    output = check_output("hub_stats")
    assert "django_push.W001" in output
    assert "django_push.W101" not in output
    assert "django_push.W101" not in ids(checks.check_hub_settings())
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = False
    assert "django_push.W101" not in check_output()


@pytest.mark.django_db
def test_w101_follows_the_switch_in_effect(settings):
    # The new name wins over the former one: W101 says what the guard really does.
    settings.SILENCED_SYSTEM_CHECKS = []
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = True
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = False
    assert "django_push.W101" not in check_output()
    settings.PUSH_HUB_ALLOW_PRIVATE_ADDRESSES = False
    settings.PUSH_ALLOW_PRIVATE_ADDRESSES = True
    output = check_output()
    assert output.count("django_push.W101") == 1
    assert "(django_push.W101) PUSH_ALLOW_PRIVATE_ADDRESSES is on" in output


@pytest.mark.django_db
def test_checks_are_registered(settings):
    settings.PUSH_HUB = "not a url"
    with pytest.raises(SystemCheckError, match="django_push.E001"):
        call_command("check")


@pytest.mark.django_db
def test_clean_settings_pass_manage_py_check():
    call_command("check")


# check --deploy (issue 9) ------------------------------------------------------------------

DEPLOYED = {
    "ALLOWED_HOSTS": ["www.example.com"],
    "PUSH_HUB_URL": "https://www.example.com/hub/",
    "PUSH_TASK_BACKEND": "queue",  # django_tasks_db in tests/settings.py
}
# The test database's own engine decides W106; test_w106_* covers it.
W106 = "django_push.W106"


@pytest.fixture
def deployed(settings):
    for name, value in DEPLOYED.items():
        setattr(settings, name, value)
    return settings


def deploy_ids():
    return [i for i in ids(checks.check_hub_deployment()) if i != W106]


def test_deploy_checks_pass_a_deployed_configuration(deployed):
    assert deploy_ids() == []


def test_w107_open_relay_is_a_plain_check(deployed):
    """Issue 16, low 10: the open relay is reported by every ``check``, not only --deploy."""
    deployed.ALLOWED_HOSTS = ["*"]
    assert deploy_ids() == []  # no longer W103 under --deploy
    assert "django_push.W107" in ids(checks.check_common_settings())
    deployed.PUSH_HUB_TOPICS = ["https://www.example.com/"]
    assert "django_push.W107" not in ids(checks.check_common_settings())
    deployed.PUSH_HUB_TOPICS = None
    deployed.ALLOWED_HOSTS = ["www.example.com"]
    assert "django_push.W107" not in ids(checks.check_common_settings())


@pytest.mark.django_db
def test_w107_reported_by_plain_check_command(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.PUSH_HUB_TOPICS = None
    settings.SILENCED_SYSTEM_CHECKS = ["django_push.W101", "django_push.W002"]
    with pytest.raises(SystemCheckError, match="django_push.W107"):
        call_command("check", "--fail-level", "WARNING")
    settings.PUSH_HUB_TOPICS = ["https://www.example.com/"]
    call_command("check", "--fail-level", "WARNING")


def test_w104_immediate_backend(deployed):
    deployed.PUSH_TASK_BACKEND = "default"
    immediate = os.environ.get("PUSH_TEST_TASKS", "immediate") == "immediate"
    assert deploy_ids() == (["django_push.W104"] if immediate else [])
    deployed.PUSH_TASK_BACKEND = "no such alias"  # reported when a task is enqueued
    assert deploy_ids() == []


def test_w105_no_hub_url(deployed):
    deployed.PUSH_HUB_URL = None
    assert deploy_ids() == ["django_push.W105"]


def test_w106_sqlite_without_immediate_transactions():
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
    immediate = {**sqlite, "OPTIONS": {"transaction_mode": "immediate"}}
    memory = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    postgres = {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}
    databases = {"default": sqlite, "fast": immediate, "mem": memory, "main": postgres}
    assert checks.deferred_sqlite(databases) == ["default"]
    for hub, queue in [(True, False), (False, True), (True, True)]:
        [warning] = checks.check_sqlite_transactions(databases, hub=hub, database_queue=queue)
        assert (warning.id, "'default'" in warning.msg) == (W106, True)
    assert checks.check_sqlite_transactions(databases, hub=False, database_queue=False) == []


def test_w106_is_a_plain_check_not_only_deploy(settings):
    # The test database is in memory (no W106); the decision is the same function's.
    assert W106 not in ids(checks.check_hub_deployment())
    assert checks._uses_database_queue() is (os.environ.get("PUSH_TEST_TASKS", "immediate") == "db")
    settings.PUSH_TASK_BACKEND = "queue"  # django_tasks_db in tests/settings.py
    assert checks._uses_database_queue() is True
    # Through the registered common check, with an SQLite file: hub installed here.
    file_db = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/never-opened.sqlite3"}
    with pytest.warns(UserWarning, match="Overriding setting DATABASES"):
        settings.DATABASES = {**settings.DATABASES, "files": file_db}
    assert W106 in ids(checks.check_common_settings())


@pytest.mark.django_db
def test_deploy_checks_run_with_check_deploy(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.PUSH_HUB_URL = None
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "security")
    assert "django_push.W105" in str(raised.value)
    call_command("check")  # not without --deploy


@pytest.mark.parametrize("value", [0, -5, 2.5, "60", True])
def test_e011_duplicate_window_not_positive_integer(settings, value):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = value
    messages = checks.check_subscriber_settings()
    assert ids(messages) == ["django_push.E011"]
    assert repr(value) in messages[0].msg


def test_duplicate_window_on_with_a_real_cache_passes(settings):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 600
    assert checks.check_subscriber_settings() == []


def test_e012_duplicate_cache_unknown(settings):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 600
    settings.PUSH_SUBSCRIBER_DUPLICATE_CACHE = "deliveries"
    messages = checks.check_subscriber_settings()
    assert ids(messages) == ["django_push.E012"]
    assert "'deliveries'" in messages[0].msg
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = None  # off: the cache is not used
    assert checks.check_subscriber_settings() == []


def test_w003_duplicate_cache_remembers_nothing(settings):
    settings.PUSH_SUBSCRIBER_DUPLICATE_WINDOW = 600
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert ids(checks.check_subscriber_settings()) == ["django_push.W003"]


@pytest.mark.parametrize("value", [1, "yes", None])
def test_e107_feed_diffs_not_boolean(settings, value):
    settings.PUSH_HUB_FEED_DIFFS = value
    assert "django_push.E107" in ids(checks.check_hub_settings())
    settings.PUSH_HUB_FEED_DIFFS = True
    assert "django_push.E107" not in ids(checks.check_hub_settings())


@pytest.mark.parametrize("name", ["PUSH_HUB_CONDITIONAL_FETCH", "PUSH_HUB_FETCH_AUDIENCE"])
@pytest.mark.parametrize("value", [1, "no", None])
def test_e111_fetch_switches_not_boolean(settings, name, value):
    setattr(settings, name, value)
    messages = [m for m in checks.check_hub_settings() if m.id == "django_push.E111"]
    assert len(messages) == 1
    assert name in messages[0].msg
    setattr(settings, name, False)
    assert "django_push.E111" not in ids(checks.check_hub_settings())


@pytest.mark.parametrize("name", ["PUSH_HUB_DIAGNOSTICS", "PUSH_HUB_TOPIC_DIAGNOSTICS"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_e112_diagnostics_switch_not_a_boolean(settings, name, value):
    setattr(settings, name, value)
    messages = [m for m in checks.check_hub_settings() if m.id == "django_push.E112"]
    assert len(messages) == 1
    assert name in messages[0].msg
    assert repr(value) in messages[0].msg
    setattr(settings, name, True)
    assert "django_push.E112" not in ids(checks.check_hub_settings())


@pytest.mark.parametrize("value", [0, -60, 2.5, "3600", True])
def test_e014_reconcile_interval_not_positive_integer(settings, value):
    settings.PUSH_SUBSCRIBER_RECONCILE = value
    messages = checks.check_subscriber_settings()
    assert ids(messages) == ["django_push.E016"]
    assert repr(value) in messages[0].msg
    settings.PUSH_SUBSCRIBER_RECONCILE = 3600
    assert checks.check_subscriber_settings() == []


@pytest.mark.parametrize(
    "name", ["PUSH_SUBSCRIBER_RECONCILE_BATCH", "PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY"]
)
@pytest.mark.parametrize("value", [0, 1.5, "50", None])
def test_e015_reconcile_batch_or_concurrency_not_positive_integer(settings, name, value):
    setattr(settings, name, value)
    messages = checks.check_subscriber_settings()
    assert ids(messages) == ["django_push.E017"]
    assert name in messages[0].msg


def test_w004_polled_bodies_trusted_over_http(settings):
    settings.PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP = True
    assert ids(checks.check_subscriber_settings()) == ["django_push.W005"]
