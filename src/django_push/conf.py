"""Every ``PUSH_*`` setting, with its default, read in one place.

Each property reads Django's settings on access, so ``override_settings`` works
without any cache to reset. Nothing else in the package reads ``PUSH_*`` names.
Values are returned as set, not converted: ``checks.py`` judges them, through this object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.conf import settings

from django_push.protocol import Algorithm

# Defaults of the hub's lease policy (WebSub 8.2 suggests leases of about 10 days).
TEN_DAYS = 10 * 24 * 3600


class Settings:
    """Typed access to the ``PUSH_*`` settings; use the module-level ``conf`` instance."""

    # django-push 1.1 settings ---------------------------------------------------------

    @property
    def PUSH_HUB(self) -> str | None:
        """Default hub URL of the publisher's feeds and ``ping_hub()``."""
        return getattr(settings, "PUSH_HUB", None)

    @property
    def PUSH_DOMAIN(self) -> str | None:
        """Host (and port) of callback URLs; ``None`` falls back to ``django.contrib.sites``."""
        return getattr(settings, "PUSH_DOMAIN", None)

    @property
    def PUSH_SSL_CALLBACK(self) -> bool:
        """Build ``https://`` callback URLs."""
        return bool(getattr(settings, "PUSH_SSL_CALLBACK", False))

    @property
    def PUSH_CREDENTIALS(self) -> str:
        """Dotted path to ``callable(hub_url) -> None | (user, password)``."""
        return str(
            getattr(
                settings,
                "PUSH_CREDENTIALS",
                "django_push.subscriber.utils.hub_credentials",
            )
        )

    @property
    def PUSH_LEASE_SECONDS(self) -> int | None:
        """Lease asked when ``subscribe()`` is given none; ``None`` lets the hub choose."""
        return getattr(settings, "PUSH_LEASE_SECONDS", None)

    @property
    def PUSH_TIMEOUT(self) -> float | None:
        """Seconds to wait for any outbound request; ``None`` means the 30 s safety default."""
        return getattr(settings, "PUSH_TIMEOUT", None)

    # Added in 2.0 -----------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        """The effective timeout: 1.1 had none by default, 2.0 never waits forever."""
        value = self.PUSH_TIMEOUT
        return 30.0 if value is None else float(value)

    @property
    def PUSH_INSECURE_SECRETS(self) -> bool:
        """Send ``hub.secret`` to plain-HTTP hubs too (development and tests only)."""
        return bool(getattr(settings, "PUSH_INSECURE_SECRETS", False))

    @property
    def PUSH_MAX_BODY_SIZE(self) -> int:
        """Largest content distribution body the callback view accepts, in bytes."""
        value: int = getattr(settings, "PUSH_MAX_BODY_SIZE", 10 * 1024 * 1024)  # E006 checks it
        return value

    @property
    def PUSH_TASK_BACKEND(self) -> str:
        """Alias in ``TASKS`` of the backend that runs django-push's background work."""
        return str(getattr(settings, "PUSH_TASK_BACKEND", "default"))

    @property
    def PUSH_WORKER_WAKEUP(self) -> str | None:
        """``host:port`` of the UDP datagram that wakes ``push_worker`` when a task of the
        database queue is committed; ``None`` leaves the worker to its poll interval."""
        value: str | None = getattr(settings, "PUSH_WORKER_WAKEUP", "127.0.0.1:29417")
        return value

    @property
    def PUSH_RENEW_BEFORE(self) -> int:
        """Renew subscriptions whose lease ends within this many seconds."""
        return int(getattr(settings, "PUSH_RENEW_BEFORE", 24 * 3600))

    @property
    def PUSH_RENEW_INTERVAL(self) -> int:
        """Seconds between two runs of the self-scheduling lease renewal task."""
        return int(getattr(settings, "PUSH_RENEW_INTERVAL", 3600))

    @property
    def PUSH_SUBSCRIBER_RETRY_HORIZON(self) -> float:
        """Seconds during which a subscription request that met a busy or restarting hub is
        sent again (``0``: never)."""
        value: float = getattr(settings, "PUSH_SUBSCRIBER_RETRY_HORIZON", 90)  # E018 checks it
        return value

    @property
    def PUSH_SUBSCRIBER_HEALTH_MAX_AGE(self) -> float | None:
        """Seconds since the renewal task last ran after which the subscriber's health view
        answers 503; ``None`` (the default) leaves the beat unjudged (E019 checks it)."""
        value: float | None = getattr(settings, "PUSH_SUBSCRIBER_HEALTH_MAX_AGE", None)
        return value

    @property
    def PUSH_SUBSCRIBER_LEASE_RANGE(self) -> tuple[int, int]:
        """``(shortest, longest)`` lease the subscriber stores from a hub's verification."""
        value: tuple[int, int] = getattr(
            settings, "PUSH_SUBSCRIBER_LEASE_RANGE", (3600, 3 * TEN_DAYS)
        )  # E009 checks it
        return value

    @property
    def PUSH_SUBSCRIBER_DUPLICATE_WINDOW(self) -> int | None:
        """Seconds during which a repeat of a delivery is dropped; ``None`` keeps every one."""
        value: int | None = getattr(
            settings, "PUSH_SUBSCRIBER_DUPLICATE_WINDOW", None
        )  # E011 checks it
        return value

    @property
    def PUSH_SUBSCRIBER_DUPLICATE_CACHE(self) -> str:
        """Alias in ``CACHES`` of the cache that remembers deliveries for the window above."""
        value: str = getattr(settings, "PUSH_SUBSCRIBER_DUPLICATE_CACHE", "default")  # E012
        return value

    @property
    def PUSH_SUBSCRIBER_RECONCILE(self) -> int | None:
        """Seconds between two reconciliation polls of a topic; ``None`` (the default) turns
        reconciliation off, except for subscriptions with their own ``reconcile_seconds``."""
        value: int | None = getattr(settings, "PUSH_SUBSCRIBER_RECONCILE", None)  # E016
        return value

    @property
    def PUSH_SUBSCRIBER_RECONCILE_BATCH(self) -> int:
        """Subscriptions claimed and polled together, over one HTTP session."""
        value: int = getattr(settings, "PUSH_SUBSCRIBER_RECONCILE_BATCH", 500)  # E017
        return value

    @property
    def PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY(self) -> int:
        """Reconciliation GETs in flight at once within a batch."""
        value: int = getattr(settings, "PUSH_SUBSCRIBER_RECONCILE_CONCURRENCY", 50)  # E017
        return value

    @property
    def PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP(self) -> bool:
        """Trust polled bodies of plain-HTTP topics for subscriptions that have a secret."""
        return bool(getattr(settings, "PUSH_SUBSCRIBER_RECONCILE_OVER_HTTP", False))

    @property
    def PUSH_SUBSCRIBER_GAP_POLL_INTERVAL(self) -> float | None:
        """Fewest seconds between two polls of a topic that a gap in its deliveries'
        ``Push-Sequence`` starts; ``None`` starts none (the gap is still counted). E020."""
        value: float | None = getattr(settings, "PUSH_SUBSCRIBER_GAP_POLL_INTERVAL", 60)
        return value

    # Hub --------------------------------------------------------------------------------

    @property
    def PUSH_HUB_URL(self) -> str | None:
        """Public URL of this site's hub, sent as ``rel="hub"`` with every delivery.

        ``None`` builds it from the request that reached the hub endpoint.
        """
        return getattr(settings, "PUSH_HUB_URL", None)

    @property
    def PUSH_HUB_LEASE_SECONDS(self) -> tuple[int, int, int]:
        """``(minimum, default, maximum)`` lease the hub grants."""
        low, default, high = getattr(
            settings, "PUSH_HUB_LEASE_SECONDS", (3600, TEN_DAYS, 3 * TEN_DAYS)
        )
        return int(low), int(default), int(high)

    @property
    def PUSH_HUB_TOPICS(self) -> Sequence[str] | Callable[[str], bool] | str | None:
        """Which topics may be published and subscribed to.

        A list of URL prefixes, a callable ``(url) -> bool``, a dotted path to one,
        or ``None`` to allow topics on this site's own hosts (``ALLOWED_HOSTS``).
        """
        return getattr(settings, "PUSH_HUB_TOPICS", None)

    @property
    def PUSH_HUB_ALLOW_PRIVATE_ADDRESSES(self) -> bool:
        """Former name of ``PUSH_ALLOW_PRIVATE_ADDRESSES``, still honoured when that is unset."""
        return bool(getattr(settings, "PUSH_HUB_ALLOW_PRIVATE_ADDRESSES", False))

    @property
    def PUSH_HUB_SIGNATURE_ALGORITHM(self) -> Algorithm:
        """Algorithm of ``X-Hub-Signature`` on deliveries."""
        value: Algorithm = getattr(settings, "PUSH_HUB_SIGNATURE_ALGORITHM", "sha256")
        return value

    @property
    def PUSH_HUB_MAX_CONTENT_SIZE(self) -> int:
        """Largest topic body the hub fetches and stores, in bytes."""
        value: int = getattr(
            settings, "PUSH_HUB_MAX_CONTENT_SIZE", 5 * 1024 * 1024
        )  # E105 checks it
        return value

    @property
    def PUSH_HUB_BATCH_SIZE(self) -> int:
        """Subscriptions delivered by one fan-out task."""
        value: int = getattr(settings, "PUSH_HUB_BATCH_SIZE", 500)  # E105 checks it
        return value

    @property
    def PUSH_HUB_CONCURRENCY(self) -> int:
        """Deliveries in flight at once within one fan-out task."""
        value: int = getattr(settings, "PUSH_HUB_CONCURRENCY", 100)  # E105 checks it
        return value

    @property
    def PUSH_HUB_RETRY_HORIZON(self) -> int:
        """Seconds after the first failure during which a delivery is retried."""
        value: int = getattr(settings, "PUSH_HUB_RETRY_HORIZON", 24 * 3600)  # E105 checks it
        return value

    @property
    def PUSH_HUB_RETRY_BASE(self) -> float:
        """First back-off delay in seconds; each retry doubles it (with jitter)."""
        value: float = getattr(settings, "PUSH_HUB_RETRY_BASE", 30.0)  # E105 checks it
        return value

    @property
    def PUSH_HUB_RETENTION(self) -> int:
        """Seconds finished contents, deliveries and verifications are kept for the admin."""
        value: int = getattr(settings, "PUSH_HUB_RETENTION", 7 * 24 * 3600)  # E105 checks it
        return value

    @property
    def PUSH_HUB_CLAIM_SECONDS(self) -> int:
        """How long a worker's claim on pending work lasts before the sweeper takes it back."""
        value: int = getattr(settings, "PUSH_HUB_CLAIM_SECONDS", 300)  # E105 checks it
        return value

    @property
    def PUSH_HUB_MAX_PUBLISH_URLS(self) -> int:
        """Most ``hub.url`` values one publish request may name; more get a 400."""
        value: int = getattr(settings, "PUSH_HUB_MAX_PUBLISH_URLS", 100)  # E105 checks it
        return value

    @property
    def PUSH_HUB_MAX_PENDING_PER_HOST(self) -> int:
        """Most verifications of intent pending at once for one callback host; more get 429."""
        value: int = getattr(settings, "PUSH_HUB_MAX_PENDING_PER_HOST", 50)  # E105 checks it
        return value

    @property
    def PUSH_HUB_VERIFY_TIMEOUT(self) -> float:
        """Seconds the hub waits for a callback to answer a verification (at most
        ``PUSH_TIMEOUT``)."""
        value: float = getattr(settings, "PUSH_HUB_VERIFY_TIMEOUT", 5)  # E105 checks it
        return value

    @property
    def PUSH_HUB_MAX_PENDING(self) -> int:
        """Most verifications of intent pending at once in total; more get 429."""
        value: int = getattr(settings, "PUSH_HUB_MAX_PENDING", 5000)  # E105 checks it
        return value

    @property
    def PUSH_HUB_HEALTH_MAX_AGE(self) -> int:
        """Seconds work may wait for a worker before the health view answers 503."""
        value: int = getattr(settings, "PUSH_HUB_HEALTH_MAX_AGE", 900)  # E105 checks it
        return value

    @property
    def PUSH_HEARTBEAT_INTERVAL(self) -> float | None:
        """Seconds between two runs of the workers' heartbeat task; ``None`` (the default)
        leaves it off, and the health view judges waiting work only (E108 checks it)."""
        value: float | None = getattr(settings, "PUSH_HEARTBEAT_INTERVAL", None)
        return value

    @property
    def PUSH_HUB_DIRECT_PUBLISH(self) -> bool:
        """Accept content POSTed to the direct publish URL, signed with the shared secret."""
        return bool(getattr(settings, "PUSH_HUB_DIRECT_PUBLISH", False))

    @property
    def PUSH_HUB_DIRECT_PUBLISH_SECRET(self) -> str:
        """The secret direct publish requests are signed with (E106 checks it)."""
        value: str = getattr(settings, "PUSH_HUB_DIRECT_PUBLISH_SECRET", "")
        return value

    @property
    def PUSH_HUB_FEED_DIFFS(self) -> bool:
        """Deliver only the new entries of Atom and RSS topics (WebSub section 7)."""
        value: bool = getattr(settings, "PUSH_HUB_FEED_DIFFS", False)  # E107 checks it
        return value

    @property
    def PUSH_HUB_CONDITIONAL_FETCH(self) -> bool:
        """Fetch topics with ``If-None-Match`` / ``If-Modified-Since`` from their last fetch."""
        value: bool = getattr(settings, "PUSH_HUB_CONDITIONAL_FETCH", True)  # E111 checks it
        return value

    @property
    def PUSH_HUB_FETCH_AUDIENCE(self) -> bool:
        """Tell publishers their topic's number of subscribers in the fetch's User-Agent."""
        value: bool = getattr(settings, "PUSH_HUB_FETCH_AUDIENCE", False)  # E111 checks it
        return value

    @property
    def PUSH_HUB_SEQUENCE_HEADER(self) -> bool:
        """Number each content of a topic and send the number with its deliveries, in
        ``Push-Sequence`` (E110 checks it)."""
        value: bool = getattr(settings, "PUSH_HUB_SEQUENCE_HEADER", False)
        return value

    @property
    def PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE(self) -> bool:
        """Deliver a topic's latest stored content to each new subscription once it is
        verified (E110 checks it)."""
        value: bool = getattr(settings, "PUSH_HUB_SEND_LATEST_ON_SUBSCRIBE", False)
        return value

    @property
    def PUSH_HUB_BREAKER(self) -> bool:
        """Stop sending to a callback host most of whose deliveries fail, for
        ``PUSH_HUB_BREAKER_OPEN_SECONDS``, then probe it (E109 checks the breaker settings)."""
        value: bool = getattr(settings, "PUSH_HUB_BREAKER", True)
        return value

    @property
    def PUSH_HUB_BREAKER_MIN_DELIVERIES(self) -> int:
        """Deliveries to a host within the window before its breaker may open."""
        value: int = getattr(settings, "PUSH_HUB_BREAKER_MIN_DELIVERIES", 20)
        return value

    @property
    def PUSH_HUB_BREAKER_FAILURE_RATIO(self) -> float:
        """Share of a host's deliveries within the window that failed, from which its breaker
        opens (above 0, at most 1)."""
        value: float = getattr(settings, "PUSH_HUB_BREAKER_FAILURE_RATIO", 0.8)
        return value

    @property
    def PUSH_HUB_BREAKER_WINDOW(self) -> float:
        """Seconds over which a host's deliveries and failures are counted."""
        value: float = getattr(settings, "PUSH_HUB_BREAKER_WINDOW", 60)
        return value

    @property
    def PUSH_HUB_BREAKER_OPEN_SECONDS(self) -> float:
        """Seconds an open breaker holds its host's deliveries before one probe is sent."""
        value: float = getattr(settings, "PUSH_HUB_BREAKER_OPEN_SECONDS", 60)
        return value

    @property
    def PUSH_HUB_DIAGNOSTICS(self) -> bool:
        """Serve each subscription's diagnostics page to whoever holds its secret (E112)."""
        value: bool = getattr(settings, "PUSH_HUB_DIAGNOSTICS", True)
        return value

    @property
    def PUSH_HUB_TOPIC_DIAGNOSTICS(self) -> bool:
        """Serve a public diagnostics page for each topic this hub serves (E112)."""
        value: bool = getattr(settings, "PUSH_HUB_TOPIC_DIAGNOSTICS", False)
        return value

    # Metrics (the django-push[metrics] extra) ---------------------------------------------

    @property
    def PUSH_METRICS(self) -> bool:
        """Record Prometheus metrics (needs ``prometheus_client``: E010 checks it)."""
        return bool(getattr(settings, "PUSH_METRICS", False))

    # Network guard (every role) ----------------------------------------------------------

    @property
    def PUSH_ALLOW_PRIVATE_ADDRESSES(self) -> bool:
        """Turn the network guard off: any address, any port (development and tests only)."""
        return bool(
            getattr(
                settings,
                "PUSH_ALLOW_PRIVATE_ADDRESSES",
                getattr(settings, "PUSH_HUB_ALLOW_PRIVATE_ADDRESSES", False),
            )
        )

    @property
    def PUSH_ALLOWED_PORTS(self) -> Sequence[int]:
        """Ports outgoing requests may connect to while the guard is on (E008 checks it)."""
        value: Sequence[int] = getattr(settings, "PUSH_ALLOWED_PORTS", (80, 443))
        return value

    @property
    def PUSH_TRUSTED_DESTINATIONS(self) -> Sequence[str]:
        """Networks (CIDR) and host names, each with an optional ``:port``, that the guard
        lets through while it stays on for everything else (E014 checks it)."""
        value: Sequence[str] = getattr(settings, "PUSH_TRUSTED_DESTINATIONS", ())
        return value


conf = Settings()
