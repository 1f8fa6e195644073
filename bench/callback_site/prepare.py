"""Create the benchmark database and its subscriptions, then print their callback paths.

Run by ``bench/subscriber_callback.py`` with the interpreter and source tree under test
(django-push 2.x from a checkout, or 1.1 from PyPI), so it only uses the API both have:
``Subscription``'s 1.1 fields and ``callback_url``.

    python -m callback_site.prepare OUT.json ROUNDS PER_ROUND SQLITE_WAL
"""

from __future__ import annotations

import datetime
import json
import secrets
import sys
from urllib.parse import urlencode, urlsplit

import django

ACTIVE_TOPIC = "http://example.com/feed.atom"
SECRET = "bench-secret-0123456789"


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def with_query(path: str, params: dict[str, str]) -> str:
    return path + ("&" if "?" in path else "?") + urlencode(params)


def wrong_capability(path: str) -> str:
    """The same callback with another token, or (no token in the URL) an unknown pk."""
    from django.urls import reverse

    if "?" in path:
        base, query = path.split("?", 1)
        name, _, value = query.partition("=")
        forged = secrets.token_urlsafe(len(value))[: len(value)] if value else "x"
        return f"{base}?{name}={forged}"
    return reverse("subscriber_callback", args=[10**8])


def verification(path: str, topic: str) -> str:
    return with_query(
        path,
        {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.challenge": secrets.token_hex(16),
            "hub.lease_seconds": "864000",
        },
    )


def main() -> None:
    out, rounds, per_round, wal = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    import django_push
    from django_push.subscriber.models import Subscription

    if connection.vendor == "sqlite" and wal == "wal":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    call_command("migrate", verbosity=0, interactive=False)

    hub = "http://127.0.0.1:9/hub"  # never contacted
    field_names = {field.name for field in Subscription._meta.get_fields()}
    with transaction.atomic():
        active = Subscription(
            hub=hub,
            topic=ACTIVE_TOPIC,
            verified=True,
            secret=SECRET,
            lease_expiration=timezone.now() + datetime.timedelta(days=30),
        )
        active.save()
        # Rows awaiting the hub's verification: each verification GET answers one of them.
        waiting = []
        for n in range(rounds * per_round):
            row = Subscription(hub=hub, topic=f"http://example.com/feed/{n}")
            row.save()
            waiting.append(row)
        if "pending" in field_names:  # 2.x: a subscribe request of ours is outstanding
            Subscription.objects.filter(verified=False).update(
                pending="subscribe", requested_at=timezone.now()
            )

    callback = path_of(active.callback_url)
    paths = [verification(path_of(row.callback_url), row.topic) for row in waiting]
    result = {
        "django_push": django_push.__file__,
        "django": django.get_version(),
        "python": sys.version.split()[0],
        "secret": SECRET,
        "bare": f"/bare/{active.pk}/",
        "post": callback,
        "refused": wrong_capability(callback),
        "unrequested": verification(callback, ACTIVE_TOPIC),
        "verify": [paths[n * per_round : (n + 1) * per_round] for n in range(rounds)],
    }
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
