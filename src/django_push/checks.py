"""System checks for django-push settings. Ids are stable and never reused."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from django_push.conf import conf
from django_push.protocol import ALGORITHMS


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _positive_number(value: object, *, integer: bool) -> bool:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        return False
    return bool(value > 0)  # type: ignore[operator]  # int or float, checked above


def check_publisher_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    hub = conf.PUSH_HUB
    if hub is not None and not _is_http_url(hub):
        errors.append(
            Error(
                f"PUSH_HUB must be an absolute http(s) URL, not {hub!r}.",
                hint="Set PUSH_HUB to your hub's full URL, e.g. 'https://hub.example.com/'.",
                id="django_push.E001",
            )
        )
    return errors


def check_subscriber_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if conf.PUSH_DOMAIN is None and not apps.is_installed("django.contrib.sites"):
        errors.append(
            Error(
                "django_push.subscriber cannot build callback URLs: PUSH_DOMAIN is not set "
                "and django.contrib.sites is not installed.",
                hint="Set PUSH_DOMAIN to your site's public host name, or install "
                "django.contrib.sites and set SITE_ID.",
                id="django_push.E002",
            )
        )
    path = conf.PUSH_CREDENTIALS
    try:
        credentials = import_string(path)
    except ImportError as exc:
        errors.append(
            Error(
                f"PUSH_CREDENTIALS {path!r} cannot be imported: {exc}",
                hint="Set PUSH_CREDENTIALS to the dotted path of a callable(hub_url) that "
                "returns None or a (username, password) tuple.",
                id="django_push.E003",
            )
        )
    else:
        if not callable(credentials):
            errors.append(
                Error(
                    f"PUSH_CREDENTIALS {path!r} is not callable.",
                    hint="Point PUSH_CREDENTIALS at a function taking the hub URL.",
                    id="django_push.E004",
                )
            )
    lease = conf.PUSH_LEASE_SECONDS
    if lease is not None and not _positive_number(lease, integer=True):
        errors.append(
            Error(
                f"PUSH_LEASE_SECONDS must be a positive integer or None, not {lease!r}.",
                id="django_push.E005",
            )
        )
    max_body = conf.PUSH_MAX_BODY_SIZE
    if not _positive_number(max_body, integer=True):
        errors.append(
            Error(
                f"PUSH_MAX_BODY_SIZE must be a positive integer, not {max_body!r}.",
                id="django_push.E006",
            )
        )
    horizon: object = conf.PUSH_SUBSCRIBER_RETRY_HORIZON  # whatever the settings hold
    if isinstance(horizon, bool) or not isinstance(horizon, int | float) or not horizon >= 0:
        errors.append(
            Error(
                f"PUSH_SUBSCRIBER_RETRY_HORIZON must be a number of seconds, 0 or more, "
                f"not {horizon!r}.",
                id="django_push.E018",
            )
        )
    errors.extend(_check_lease_range())
    errors.extend(_check_subscriber_health())
    errors.extend(_check_duplicate_window())
    errors.extend(_check_reconciliation())
    gap: object = conf.PUSH_SUBSCRIBER_GAP_POLL_INTERVAL  # whatever was set
    if gap is not None and (
        isinstance(gap, bool) or not isinstance(gap, int | float) or not gap >= 0
    ):
        errors.append(
            Error(
                f"PUSH_SUBSCRIBER_GAP_POLL_INTERVAL must be a number of seconds, 0 or more, "
                f"or None, not {gap!r}.",
                id="django_push.E020",
            )
        )
    if conf.PUSH_INSECURE_SECRETS:
        errors.append(
            Warning(
                "PUSH_INSECURE_SECRETS is on: subscription secrets are sent to plain-HTTP hubs, "
                "where anyone on the path can read them.",
                hint="Use it for development only; keep it off in production.",
                id="django_push.W001",
            )
        )
    return errors


def _check_subscriber_health() -> list[CheckMessage]:
    max_age = conf.PUSH_SUBSCRIBER_HEALTH_MAX_AGE
    if max_age is None:
        return []
    # The renewal task beats every PUSH_RENEW_INTERVAL: a lower bound is always 503.
    interval = conf.PUSH_RENEW_INTERVAL
    if _positive_number(max_age, integer=False) and max_age > interval:
        return []
    return [
        Error(
            "PUSH_SUBSCRIBER_HEALTH_MAX_AGE must be None or a number of seconds above "
            f"PUSH_RENEW_INTERVAL ({interval}), not {max_age!r}.",
            hint="Twice PUSH_RENEW_INTERVAL, e.g. 7200 with the default hourly renewal run, "
            "tells dead workers within two hours.",
            id="django_push.E019",
        )
    ]


def _check_lease_range() -> list[CheckMessage]:
    value: object = conf.PUSH_SUBSCRIBER_LEASE_RANGE  # whatever was set
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_positive_number(seconds, integer=True) for seconds in value)
        and value[0] <= value[1] < 2**31
    ):
        return []
    return [
        Error(
            "PUSH_SUBSCRIBER_LEASE_RANGE must be (shortest, longest): two positive integers of "
            f"seconds with shortest <= longest < 2**31, not {value!r}.",
            hint="The default is (3600, 2592000): one hour to thirty days.",
            id="django_push.E009",
        )
    ]


def _check_duplicate_window() -> list[CheckMessage]:
    from django.conf import settings

    window = conf.PUSH_SUBSCRIBER_DUPLICATE_WINDOW
    if window is None:
        return []
    if not _positive_number(window, integer=True):
        return [
            Error(
                "PUSH_SUBSCRIBER_DUPLICATE_WINDOW must be a positive integer of seconds or "
                f"None, not {window!r}.",
                id="django_push.E011",
            )
        ]
    alias = conf.PUSH_SUBSCRIBER_DUPLICATE_CACHE
    if alias not in settings.CACHES:
        return [
            Error(
                f"PUSH_SUBSCRIBER_DUPLICATE_CACHE {alias!r} is not an alias in CACHES.",
                hint="Name the cache that remembers deliveries, shared by every web worker.",
                id="django_push.E012",
            )
        ]
    if str(settings.CACHES[alias].get("BACKEND", "")).endswith(".DummyCache"):
        return [
            Warning(
                f"PUSH_SUBSCRIBER_DUPLICATE_CACHE {alias!r} is a DummyCache, which remembers "
                "nothing: repeated deliveries are not dropped.",
                hint="Use a cache shared by every web worker (Redis, Memcached, database).",
                id="django_push.W003",
            )
        ]
    return []


def _check_reconciliation() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    interval = conf.PUSH_SUBSCRIBER_RECONCILE
    if interval is not None and not _positive_number(interval, integer=True):
        errors.append(
            Error(
                "PUSH_SUBSCRIBER_RECONCILE must be a positive integer of seconds or None, "
                f"not {interval!r}.",
                hint="None (the default) turns reconciliation off; 3600 polls hourly.",
                id="django_push.E016",
            )
        )
    for name in ("PUSH_SUBSCRIBER_RECONCILE_BATCH", "PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY"):
        value = getattr(conf, name)
        if not _positive_number(value, integer=True):
            errors.append(
                Error(f"{name} must be a positive integer, not {value!r}.", id="django_push.E017")
            )
    if conf.PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP:
        errors.append(
            Warning(
                "PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP is on: for subscriptions with a secret, "
                "polled plain-HTTP bodies are sent with updated, although anyone on the path "
                "can write them and the hub's signature is what protects pushed ones.",
                hint="Keep it off unless the network between this site and its topics is "
                "trusted; HTTPS topics are polled without it.",
                id="django_push.W005",
            )
        )
    return errors


def check_hub_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    errors = [
        *_check_hub_url(),
        *_check_hub_leases(),
        *_check_signature_algorithm(),
        *_check_topics(),
        *_check_feed_diffs(),
        *_check_switches("E111", "PUSH_HUB_CONDITIONAL_FETCH", "PUSH_HUB_FETCH_AUDIENCE"),
        *_check_switches("E110", "PUSH_HUB_SEQUENCE_HEADER", "PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE"),
        *_check_switches("E112", "PUSH_HUB_DIAGNOSTICS", "PUSH_HUB_TOPIC_DIAGNOSTICS"),
        *_check_hub_numbers(),
        *_check_direct_publish(),
        *_check_breaker(),
    ]
    if not any(error.id == "django_push.E105" for error in errors):  # they need the numbers
        errors += [*_check_claim_length(), *_check_heartbeat()]
    return errors + _check_private_switch_on_hub()


def _check_hub_url() -> list[CheckMessage]:
    hub_url = conf.PUSH_HUB_URL
    if hub_url is None or _is_http_url(hub_url):
        return []
    return [
        Error(
            f"PUSH_HUB_URL must be an absolute http(s) URL, not {hub_url!r}.",
            hint="Set it to the public URL of your hub endpoint, or to None.",
            id="django_push.E101",
        )
    ]


def _check_hub_leases() -> list[CheckMessage]:
    try:
        low, default, high = conf.PUSH_HUB_LEASE_SECONDS
        valid = 0 < low <= default <= high
    except (TypeError, ValueError):
        valid = False
    if valid:
        return []
    return [
        Error(
            "PUSH_HUB_LEASE_SECONDS must be (minimum, default, maximum) positive integers "
            "with minimum <= default <= maximum.",
            id="django_push.E102",
        )
    ]


def _check_signature_algorithm() -> list[CheckMessage]:
    algorithm = conf.PUSH_HUB_SIGNATURE_ALGORITHM
    if algorithm in ALGORITHMS:
        return []
    return [
        Error(
            f"PUSH_HUB_SIGNATURE_ALGORITHM must be one of {', '.join(ALGORITHMS)}, "
            f"not {algorithm!r}.",
            id="django_push.E103",
        )
    ]


def _check_topics() -> list[CheckMessage]:
    topics = conf.PUSH_HUB_TOPICS
    if isinstance(topics, str):
        try:
            import_string(topics)
        except ImportError as exc:
            return [
                Error(
                    f"PUSH_HUB_TOPICS {topics!r} cannot be imported: {exc}", id="django_push.E104"
                )
            ]
    elif topics is not None and not callable(topics) and not isinstance(topics, (list, tuple)):
        return [
            Error(
                "PUSH_HUB_TOPICS must be a list of URL prefixes, a callable, a dotted path "
                "or None.",
                id="django_push.E104",
            )
        ]
    return []


def _check_feed_diffs() -> list[CheckMessage]:
    diffs: object = conf.PUSH_HUB_FEED_DIFFS  # whatever was set
    if isinstance(diffs, bool):
        return []
    return [
        Error(f"PUSH_HUB_FEED_DIFFS must be True or False, not {diffs!r}.", id="django_push.E107")
    ]


def _check_switches(check_id: str, *names: str) -> list[CheckMessage]:
    """Settings that are on or off: each must be ``True`` or ``False``."""
    return [
        Error(f"{name} must be True or False, not {value!r}.", id=f"django_push.{check_id}")
        for name in names
        if not isinstance(value := getattr(conf, name), bool)
    ]


# The hub's numeric settings, and whether each must be an integer.
HUB_NUMBERS = {
    "PUSH_HUB_MAX_CONTENT_SIZE": True,
    "PUSH_HUB_BATCH_SIZE": True,
    "PUSH_HUB_CONCURRENCY": True,
    "PUSH_HUB_RETRY_HORIZON": True,
    "PUSH_HUB_RETRY_BASE": False,
    "PUSH_HUB_RETENTION": True,
    "PUSH_HUB_CLAIM_SECONDS": True,
    "PUSH_HUB_MAX_PUBLISH_URLS": True,
    "PUSH_HUB_MAX_PENDING_PER_HOST": True,
    "PUSH_HUB_MAX_PENDING": True,
    "PUSH_HUB_VERIFY_TIMEOUT": False,
    "PUSH_HUB_HEALTH_MAX_AGE": True,
}


def _check_hub_numbers() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, integer in HUB_NUMBERS.items():
        value = getattr(conf, name)
        if not _positive_number(value, integer=integer):
            kind = "integer" if integer else "number"
            errors.append(
                Error(f"{name} must be a positive {kind}, not {value!r}.", id="django_push.E105")
            )
    return errors


def _check_private_switch_on_hub() -> list[CheckMessage]:
    # The switch in effect, under either name; said by `check`, not by every command.
    if not (conf.PUSH_ALLOW_PRIVATE_ADDRESSES and _run_by_check_command()):
        return []
    return [
        Warning(
            f"{_private_switch_name()} is on: the hub will fetch and deliver to "
            "loopback and private network addresses, on any port, for whoever asks.",
            hint="Use it for development and tests only.",
            id="django_push.W101",
        )
    ]


# Shortest shared secret accepted for direct publishing (in characters).
MIN_PUBLISH_SECRET = 32


def _check_direct_publish() -> list[CheckMessage]:
    secret = conf.PUSH_HUB_DIRECT_PUBLISH_SECRET
    if not conf.PUSH_HUB_DIRECT_PUBLISH:
        return []
    if isinstance(secret, str) and len(secret) >= MIN_PUBLISH_SECRET:  # type: ignore[redundant-expr]
        return []
    return [
        Error(
            "PUSH_HUB_DIRECT_PUBLISH is on, but PUSH_HUB_DIRECT_PUBLISH_SECRET is not a string "
            f"of at least {MIN_PUBLISH_SECRET} characters: anyone could guess it and publish.",
            hint="Set it to a long random string, e.g. from "
            "django.utils.crypto.get_random_string(50), shared only with your publishers.",
            id="django_push.E106",
        )
    ]


def _check_breaker() -> list[CheckMessage]:
    problems = []
    switch: object = conf.PUSH_HUB_BREAKER
    if not isinstance(switch, bool):
        problems.append(f"PUSH_HUB_BREAKER must be True or False, not {switch!r}")
    minimum = conf.PUSH_HUB_BREAKER_MIN_DELIVERIES
    if not _positive_number(minimum, integer=True):
        problems.append(
            f"PUSH_HUB_BREAKER_MIN_DELIVERIES must be a positive integer, not {minimum!r}"
        )
    ratio = conf.PUSH_HUB_BREAKER_FAILURE_RATIO
    if not _positive_number(ratio, integer=False) or ratio > 1:
        problems.append(
            f"PUSH_HUB_BREAKER_FAILURE_RATIO must be a number above 0 and at most 1, not {ratio!r}"
        )
    for name in ("PUSH_HUB_BREAKER_WINDOW", "PUSH_HUB_BREAKER_OPEN_SECONDS"):
        value = getattr(conf, name)
        if not _positive_number(value, integer=False):
            problems.append(f"{name} must be a positive number of seconds, not {value!r}")
    return [Error(f"{problem}.", id="django_push.E109") for problem in problems]


def _check_heartbeat() -> list[CheckMessage]:
    interval = conf.PUSH_HEARTBEAT_INTERVAL
    if interval is None:
        return []
    max_age = conf.PUSH_HUB_HEALTH_MAX_AGE
    if _positive_number(interval, integer=False) and interval < max_age:
        return []
    return [
        Error(
            "PUSH_HEARTBEAT_INTERVAL must be None or a positive number of seconds below "
            f"PUSH_HUB_HEALTH_MAX_AGE ({max_age}), not {interval!r}.",
            hint="A beat every minute (60) with the default PUSH_HUB_HEALTH_MAX_AGE (900) "
            "lets the health view tell dead workers within 15 minutes.",
            id="django_push.E108",
        )
    ]


def _check_claim_length() -> list[CheckMessage]:
    # A fan-out sends one batch while the next is already claimed, both through the same
    # PUSH_HUB_CONCURRENCY connections: the later claim must outlast both batches, each
    # request taking up to the timeout, or the sweeper gives the batch to a second worker
    # while the first still sends it (duplicate deliveries, not lost ones).
    if conf.PUSH_TIMEOUT is not None and not _positive_number(conf.PUSH_TIMEOUT, integer=False):
        return []
    rounds = -(-conf.PUSH_HUB_BATCH_SIZE // conf.PUSH_HUB_CONCURRENCY)
    needed = 2 * rounds * conf.timeout
    if needed <= conf.PUSH_HUB_CLAIM_SECONDS:
        return []
    return [
        Warning(
            f"PUSH_HUB_CLAIM_SECONDS ({conf.PUSH_HUB_CLAIM_SECONDS}) is shorter than two "
            f"batches can take to send ({needed:g} s: 2 x {rounds} rounds of "
            f"PUSH_HUB_CONCURRENCY requests x the {conf.timeout:g} s timeout).",
            hint=(
                f"Raise PUSH_HUB_CLAIM_SECONDS to at least {needed:g}, or lower "
                "PUSH_HUB_BATCH_SIZE or PUSH_TIMEOUT; else a slow batch is sent twice."
            ),
            id="django_push.W102",
        )
    ]


def check_common_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Settings every role reads; each app registers this, Django runs it once."""
    errors: list[CheckMessage] = []
    timeout = conf.PUSH_TIMEOUT
    if timeout is not None and not _positive_number(timeout, integer=False):
        errors.append(
            Error(
                f"PUSH_TIMEOUT must be a positive number of seconds or None, not {timeout!r}.",
                id="django_push.E007",
            )
        )
    errors.extend(_check_network_guard())
    wakeup = conf.PUSH_WORKER_WAKEUP
    if wakeup is not None and not _is_address(wakeup):
        errors.append(
            Error(
                f"PUSH_WORKER_WAKEUP must be 'host:port' or None, not {wakeup!r}.",
                hint="The default is '127.0.0.1:29417'; None leaves workers to their polling.",
                id="django_push.E013",
            )
        )
    errors.extend(_check_metrics())
    from django.conf import settings

    if apps.is_installed("django_push.hub"):
        errors.extend(check_open_relay(settings.ALLOWED_HOSTS, conf.PUSH_HUB_TOPICS))
    errors.extend(
        check_sqlite_transactions(
            settings.DATABASES,
            hub=apps.is_installed("django_push.hub"),
            database_queue=_uses_database_queue(),
        )
    )
    return errors


def _check_metrics() -> list[CheckMessage]:
    from django_push import metrics

    if not conf.PUSH_METRICS or metrics.available():
        return []
    return [
        Error(
            "PUSH_METRICS is on but prometheus_client is not installed: no metric is recorded.",
            hint='Install the extra: pip install "django-push[metrics]", or set PUSH_METRICS '
            "to False.",
            id="django_push.E010",
        )
    ]


def _is_address(value: object) -> bool:
    from django_push.wakeup import parse_address

    if not isinstance(value, str):
        return False
    try:
        parse_address(value)
    except ValueError:
        return False
    return True


def _run_by_check_command() -> bool:
    """Whether ``manage.py check`` (or ``call_command("check")``) is running the checks.

    Every command runs the system checks; a development warning that every ``migrate``,
    ``runserver`` and worker start repeats is one people learn to ignore.
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(30):  # the check command is a few frames up, never far
        if frame is None:
            return False
        if frame.f_globals.get("__name__") == "django.core.management.commands.check":
            return True
        frame = frame.f_back
    return False


def _private_switch_name() -> str:
    """The name under which the development switch is set (the former one, or the new one)."""
    from django.conf import settings

    if hasattr(settings, "PUSH_ALLOW_PRIVATE_ADDRESSES"):
        return "PUSH_ALLOW_PRIVATE_ADDRESSES"
    return "PUSH_HUB_ALLOW_PRIVATE_ADDRESSES"


def _check_network_guard() -> list[CheckMessage]:
    from django.conf import settings

    errors: list[CheckMessage] = []
    ports = conf.PUSH_ALLOWED_PORTS
    if not isinstance(ports, (list, tuple, set, frozenset)) or not all(
        isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 for port in ports
    ):
        errors.append(
            Error(
                f"PUSH_ALLOWED_PORTS must be a list of TCP port numbers, not {ports!r}.",
                hint="The default is (80, 443).",
                id="django_push.E008",
            )
        )
    errors.extend(_check_trusted_destinations())
    if not conf.PUSH_ALLOW_PRIVATE_ADDRESSES:
        for name in ("PUSH_HUB", "PUSH_HUB_URL"):
            errors.extend(_check_guarded_hub(name))
    if conf.PUSH_ALLOW_PRIVATE_ADDRESSES and not settings.DEBUG:
        name = _private_switch_name()
        errors.append(
            Warning(
                f"{name} is on with DEBUG = False: the network guard is off, so the hub, "
                "pings, discovery and subscription requests may reach loopback and private "
                "addresses on any port.",
                hint="Use it for development and tests only.",
                id="django_push.W002",
            )
        )
    return errors


def _check_trusted_destinations() -> list[CheckMessage]:
    from django_push.guard import parse_destination

    entries: object = conf.PUSH_TRUSTED_DESTINATIONS  # whatever was set
    if not isinstance(entries, (list, tuple)):
        problems = [f"a list or tuple of strings is expected, not {entries!r}"]
    else:
        problems = []
        for entry in entries:
            if not isinstance(entry, str):
                problems.append(f"{entry!r} is not a string")
                continue
            try:
                parse_destination(entry)
            except ValueError as exc:
                problems.append(str(exc))
    return [
        Error(
            f"PUSH_TRUSTED_DESTINATIONS: {problem}.",
            hint="Entries are networks ('10.0.0.0/8', 'fd00::/8'), addresses or host names "
            "('hub.internal'), each with an optional port ('hub.internal:8080', "
            "'[fd00::5]:8080').",
            id="django_push.E014",
        )
        for problem in problems
    ]


def _check_guarded_hub(name: str) -> list[CheckMessage]:
    """W004: the hub URL in ``name`` is one the network guard refuses (judged without DNS)."""
    from yarl import URL

    from django_push.guard import refusal

    url = getattr(conf, name)
    if not _is_http_url(url):
        return []  # E001 / E101
    reason = refusal(URL(url))
    if reason is None:
        return []
    return [
        Warning(
            f"{name} {url!r} is refused by the network guard: {reason}.",
            hint="Trust your own hub in PUSH_TRUSTED_DESTINATIONS (networks, host names, "
            "host:port); the guard stays on for everything else. See the guard's page in "
            "the docs.",
            id="django_push.W004",
        )
    ]


def check_hub_deployment(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Settings that work in development but not on a public hub (``check --deploy``).
    The open relay (W103 before) is W107, a plain check."""
    warnings: list[CheckMessage] = []
    if _runs_tasks_in_requests():
        warnings.append(
            Warning(
                "The hub's task backend is the immediate backend: verification, fetch and "
                "fan-out run inside the HTTP request that asked for them.",
                hint="Use django_tasks_db or django_tasks_rq with workers (see the deployment "
                "guide), and point PUSH_TASK_BACKEND at it.",
                id="django_push.W104",
            )
        )
    if not conf.PUSH_HUB_URL:
        warnings.append(
            Warning(
                'PUSH_HUB_URL is not set: the hub\'s rel="hub" URL depends on the host the '
                "publish request came through.",
                hint="Set PUSH_HUB_URL to the hub endpoint's public https:// URL.",
                id="django_push.W105",
            )
        )
    return warnings


def check_open_relay(allowed_hosts: Sequence[str], hub_topics: object) -> list[CheckMessage]:
    """W107, reported by every ``check`` (it was W103, under ``--deploy`` only): with
    ``"*"`` in ``ALLOWED_HOSTS`` and no ``PUSH_HUB_TOPICS``, the default topic policy lets
    the hub publish and verify any public topic, for anyone."""
    if "*" not in allowed_hosts or hub_topics is not None:
        return []
    return [
        Warning(
            'ALLOWED_HOSTS contains "*" and PUSH_HUB_TOPICS is not set: the hub publishes '
            "and accepts subscriptions to any public topic (an open relay).",
            hint="Set PUSH_HUB_TOPICS to the URL prefixes of your own topics, or list your "
            "own host names in ALLOWED_HOSTS.",
            id="django_push.W107",
        )
    ]


def check_sqlite_transactions(
    databases: dict[str, dict[str, Any]], *, hub: bool, database_queue: bool
) -> list[CheckMessage]:
    """W106: with the hub or the database queue, every SQLite file needs IMMEDIATE
    transactions; else two writers (a worker and a web request) fail with "database is
    locked" even in development."""
    if not (hub or database_queue):
        return []
    return [
        Warning(
            f"Database {alias!r} is SQLite without transaction_mode IMMEDIATE: workers and "
            "requests that write at the same time fail with 'database is locked'.",
            hint='Add "OPTIONS": {"transaction_mode": "IMMEDIATE"} (and WAL, see the '
            "deployment guide), or use PostgreSQL.",
            id="django_push.W106",
        )
        for alias in deferred_sqlite(databases)
    ]


def deferred_sqlite(databases: dict[str, dict[str, Any]]) -> list[str]:
    """Aliases of the SQLite files whose transactions are not ``IMMEDIATE`` (an in-memory
    database lives in one process: it has no second writer to meet)."""
    return [
        alias
        for alias, database in databases.items()
        if "sqlite" in str(database.get("ENGINE", ""))
        and str(database.get("NAME", "")) not in ("", ":memory:")
        and "mode=memory" not in str(database.get("NAME", ""))
        and str(database.get("OPTIONS", {}).get("transaction_mode", "")).upper() != "IMMEDIATE"
    ]


def _uses_database_queue() -> bool:
    from django_push.tasks import task_backends

    try:
        backend = task_backends[conf.PUSH_TASK_BACKEND]
    except Exception:  # an unknown alias is reported when a task is enqueued
        return False
    return type(backend).__module__.startswith("django_tasks_db")


def _runs_tasks_in_requests() -> bool:
    from django_push.tasks import task_backends

    try:
        backend = task_backends[conf.PUSH_TASK_BACKEND]
    except Exception:  # an unknown alias is reported when a task is enqueued
        return False
    return any(kind.__name__ == "ImmediateBackend" for kind in type(backend).__mro__)
