"""The upgrade of docs/upgrading.rst, run on databases django-push 1.1 itself wrote.

``tests/legacy11/`` holds a SQLite file and a PostgreSQL dump made by django-push 1.1 on
Python 3.6 and Django 2.0 (``make_databases.py`` there regenerates them). Each test loads
1.1's table (its own DDL, rows and sequence) in place of the subscriber's, runs ``migrate``
and ``renew_subscriptions --legacy``, then checks every row and every callback URL.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import re
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from django_push.subscriber.signals import updated
from tests.servers import Reply

DATA = Path(__file__).parent / "legacy11"
HUB = "http://hub.legacy11.test/"
SECURE_HUB = "https://secure-hub.legacy11.test/"
DOMAIN = "site.legacy11.test"  # make_databases.py's PUSH_DOMAIN
T = "http://feeds.legacy11.test/%s.xml"

# pk: (hub, topic name, verified, lease, has a secret), as 1.1 wrote them. Lease: "far" (ten
# years), "ended" (a second, or an hour), None.
ROWS_11 = {
    1: (HUB, "verified", True, "far", False),
    2: (SECURE_HUB, "verified-secret", True, "far", True),
    3: (HUB, "expired", True, "ended", False),
    4: (SECURE_HUB, "expired-secret", True, "ended", True),
    5: (HUB, "sync-verified", True, None, False),  # a 0.3 hub's 204: no lease
    6: (HUB, "refused", False, None, False),  # the hub said 500; 1.1 kept the row
    7: (HUB, "pending", False, None, False),
    8: (SECURE_HUB, "pending-secret", False, None, True),
    9: (HUB, "leaving", True, "far", False),  # unsubscribed by 1.1, not yet verified
    10: (HUB, "dup-verified", True, "ended", False),
    11: (HUB, "dup-verified", True, "far", False),
    12: (SECURE_HUB, "dup-mixed", True, "far", True),
    13: (SECURE_HUB, "dup-mixed", False, None, False),
    14: (HUB, "dup-unverified", False, None, False),
    15: (HUB, "dup-unverified", False, None, False),
    16: (SECURE_HUB, "verified", True, "far", True),  # same topic, another hub
}
MERGED = {10, 13, 14}  # the documented duplicate merge: 11, 12 and 15 are kept


def load_sqlite() -> None:
    legacy = sqlite3.connect(DATA / "subscriber-1.1.sqlite3")
    [ddl] = legacy.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'subscriber_subscription'"
    ).fetchone()
    rows = legacy.execute("SELECT * FROM subscriber_subscription").fetchall()
    migrations = legacy.execute("SELECT app, name FROM django_migrations").fetchall()
    [(seq,)] = legacy.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'subscriber_subscription'"
    ).fetchall()
    legacy.close()
    assert migrations == [("subscriber", "0001_initial")]
    with connection.cursor() as cursor:
        cursor.execute(ddl)
        for row in rows:
            cursor.execute(
                f"INSERT INTO subscriber_subscription VALUES ({', '.join(['%s'] * len(row))})",
                row,
            )
        cursor.execute(
            "UPDATE sqlite_sequence SET seq = %s WHERE name = 'subscriber_subscription'", [seq]
        )


def load_postgres() -> None:
    """Restore the dump into a schema of its own, then move 1.1's table (with its sequence)
    into ``public``."""
    dump = (DATA / "subscriber-1.1-postgres.sql").read_text()
    statements = "\n".join(
        line
        for line in dump.splitlines()
        # psql meta-commands, comments and the session settings of the pg_dump version
        # that wrote it: every name in the dump is schema-qualified.
        if not line.startswith(("\\", "--", "SET ", "SELECT pg_catalog.set_config"))
    ).replace("public.", "legacy11.")
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS legacy11 CASCADE; CREATE SCHEMA legacy11")
        cursor.execute(statements)
        cursor.execute("SELECT app, name FROM legacy11.django_migrations")
        assert cursor.fetchall() == [("subscriber", "0001_initial")]
        cursor.execute("ALTER TABLE legacy11.subscriber_subscription SET SCHEMA public")
        cursor.execute("DROP SCHEMA legacy11 CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_11(request, transactional_db, server, settings):
    """The test database with 1.1's subscriber table and rows; hubs point at ``server``."""
    if connection.vendor != request.param:
        pytest.skip(f"runs on {request.param} (PUSH_TEST_DB)")
    call_command("migrate", "subscriber", "zero", verbosity=0)
    (load_sqlite if request.param == "sqlite" else load_postgres)()
    MigrationExecutor(connection).recorder.record_applied("subscriber", "0001_initial")
    # The fixed hub names go to the test's hub: 1.1's https hub under /secure/, over HTTP,
    # with PUSH_INSECURE_SECRETS so that its rows keep their secrets as over HTTPS.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE subscriber_subscription SET hub = %s WHERE hub = %s", [server.url + "/", HUB]
        )
        cursor.execute(
            "UPDATE subscriber_subscription SET hub = %s WHERE hub = %s",
            [server.url + "/secure/", SECURE_HUB],
        )
        cursor.execute("SELECT id, secret, lease_expiration FROM subscriber_subscription")
        before = {pk: (secret, lease) for pk, secret, lease in cursor.fetchall()}
    settings.PUSH_DOMAIN = DOMAIN
    settings.PUSH_INSECURE_SECRETS = True
    yield before
    call_command("migrate", verbosity=0)


def hub_of(server, pk):
    return server.url + ("/secure/" if ROWS_11[pk][0] == SECURE_HUB else "/")


def local(url, **params):
    """The path and query of a callback URL, with ``params`` added, for the test client."""
    parts = urlsplit(url)
    return parts.path, {**dict(parse_qsl(parts.query)), **params}


def test_upgrade_from_what_11_wrote(db_11, server, client):
    before = db_11
    now = timezone.now()
    assert sorted(before) == sorted(ROWS_11)
    for pk, (_, _, _, lease, has_secret) in ROWS_11.items():
        secret, expires = before[pk]
        assert bool(secret) == has_secret and (len(secret) == 50 or not secret)
        assert (expires is None) == (lease is None)

    # Step 3: migrate.
    call_command("migrate", "subscriber", verbosity=0)
    from django_push.subscriber.models import Subscription

    rows = {s.pk: s for s in Subscription.objects.all()}
    assert sorted(rows) == sorted(set(ROWS_11) - MERGED)
    for pk, row in rows.items():
        _, name, verified, lease, _ = ROWS_11[pk]
        assert (row.hub, row.topic, row.verified) == (hub_of(server, pk), T % name, verified)
        assert row.secret == before[pk][0]  # 1.1's secret, unchanged
        expires = row.lease_expiration
        if lease == "far":
            assert expires > now + datetime.timedelta(days=365)
        elif lease == "ended":
            assert expires < now
        else:
            assert expires is None
        assert row.callback_token is None
        assert row.pending == ("" if verified else "subscribe")
        # The 1.1 URL, the one each hub holds.
        assert row.callback_url == f"http://{DOMAIN}/subscriber/{pk}/"
    assert sorted(Subscription.objects.legacy().values_list("pk", flat=True)) == sorted(rows)

    # The hub's late verification of the unsubscription 1.1 asked for finds nothing pending:
    # 404, and the row stays (as "Unsubscriptions in flight" says).
    path, params = local(
        f"http://{DOMAIN}/subscriber/9/",
        **{"hub.mode": "unsubscribe", "hub.topic": T % "leaving", "hub.challenge": "c"},
    )
    assert client.get(path, params).status_code == 404
    assert Subscription.objects.get(pk=9).verified

    # Step 4: renew_subscriptions --legacy, against a hub that accepts.
    server.default = Reply(202)
    out = io.StringIO()
    call_command("renew_subscriptions", "--legacy", stdout=out)
    text = out.getvalue()
    assert f"{len(rows)} subscription(s) to renew." in text, text
    assert "FAILED" not in text
    assert not Subscription.objects.legacy().exists()

    sent = {}
    for request in server.requests:
        assert request.form["hub.mode"] == ["subscribe"]
        [callback] = request.form["hub.callback"]
        pk = int(re.search(r"/subscriber/(\d+)/", callback)[1])
        assert pk not in sent, f"row {pk} was requested twice"
        sent[pk] = request
    assert sorted(sent) == sorted(rows)  # every row moves, verified or not

    for pk, row in rows.items():
        row.refresh_from_db()
        old = f"http://{DOMAIN}/subscriber/{pk}/"
        request = sent[pk]
        assert urlsplit(request.path).path == urlsplit(hub_of(server, pk)).path
        assert request.form["hub.topic"] == [row.topic]
        assert request.form["hub.callback"] == [row.callback_url]
        assert row.callback_url.startswith(old + "?token=") and row.callback_token
        # A 1.1 secret is kept and sent again (a renewal does not rotate it); a row without
        # one gets one, since PUSH_INSECURE_SECRETS stands in for HTTPS here, kept pending
        # until the hub verifies it.
        assert row.secret == before[pk][0]
        assert request.form["hub.secret"] == [row.secret or row.pending_secret]
        assert bool(row.pending_secret) == (not before[pk][0])
        assert row.pending == "subscribe"
        assert row.legacy_callback == (old if ROWS_11[pk][2] else "")
        assert row.verified == ROWS_11[pk][2]

    # The hub verifies each move. The 1.1 URL never answers a subscribe verification; the
    # tokened one does.
    for pk, row in rows.items():
        old = f"http://{DOMAIN}/subscriber/{pk}/"
        verification = {
            "hub.mode": "subscribe",
            "hub.topic": row.topic,
            "hub.challenge": "c",
            "hub.lease_seconds": "86400",
        }
        path, params = local(old, **verification)
        assert client.get(path, params).status_code == 404, pk
        path, params = local(row.callback_url, **verification)
        response = client.get(path, params)
        assert (response.status_code, response.content) == (200, b"c"), pk
        row.refresh_from_db()
        assert row.verified and row.pending == "" and not row.has_expired()
        assert row.lease_seconds == 86400
        assert (row.secret, row.pending_secret) == (request_secret(sent[pk]), "")

    # Once a move is verified, the hub is asked to unsubscribe the 1.1 URL of every row it
    # held there (the verified ones), and the 1.1 URL answers that verification.
    moved_from = sorted(pk for pk in rows if ROWS_11[pk][2])
    unsubscribed = sorted(
        int(re.search(r"/subscriber/(\d+)/$", r.form["hub.callback"][0])[1])
        for r in server.requests
        if r.form["hub.mode"] == ["unsubscribe"]
    )
    assert unsubscribed == moved_from
    for pk in moved_from:
        row = Subscription.objects.get(pk=pk)
        assert row.legacy_moved_at is not None
        path, params = local(
            row.legacy_callback,
            **{"hub.mode": "unsubscribe", "hub.topic": row.topic, "hub.challenge": "u"},
        )
        response = client.get(path, params)
        assert (response.status_code, response.content) == (200, b"u"), pk
        row.refresh_from_db()
        assert row.legacy_callback == "" and row.verified

    # Merged duplicates' 1.1 URLs answer content with 410, so their hubs stop.
    for pk in sorted(MERGED):
        response = client.post(f"/subscriber/{pk}/", b"x", content_type="text/plain")
        assert response.status_code == 410, pk

    # Every row keeps its 1.1 data; none was lost beyond the merge.
    assert Subscription.objects.count() == len(ROWS_11) - len(MERGED)


def request_secret(request):
    [secret] = request.form["hub.secret"]
    return secret


def refused_move(server):
    """migrate, then renew_subscriptions --legacy against a hub that refuses every move."""
    call_command("migrate", "subscriber", verbosity=0)
    server.default = Reply(400, b"not now")
    err = io.StringIO()
    kept = len(ROWS_11) - len(MERGED)
    with pytest.raises(CommandError, match=f"{kept} of {kept} renewal"):
        call_command("renew_subscriptions", "--legacy", stdout=io.StringIO(), stderr=err)
    assert err.getvalue().count("not now") == kept


def test_a_hub_that_refuses_the_move(db_11, server, client):
    """Each refusal is named; the rows keep 1.1's secrets, and verified rows still receive
    their hub's content at their 1.1 URL."""
    refused_move(server)
    from django_push.subscriber.models import Subscription

    assert Subscription.objects.count() == len(ROWS_11) - len(MERGED)
    for row in Subscription.objects.all():
        assert row.last_error, row.pk
        assert row.secret == db_11[row.pk][0] or not db_11[row.pk][0]
        if row.verified and not row.has_expired() and db_11[row.pk][0]:
            assert post_11(client, row.pk, db_11[row.pk][0]).status_code == 200, row.pk


def test_a_refused_move_stays_listed_and_a_rerun_moves_it(db_11, server):
    refused_move(server)
    from django_push.subscriber.models import Subscription

    kept = sorted(set(ROWS_11) - MERGED)
    assert sorted(Subscription.objects.legacy().values_list("pk", flat=True)) == kept
    server.requests.clear()
    server.default = Reply(202)
    call_command("renew_subscriptions", "--legacy", stdout=io.StringIO())
    assert len(server.requests) == len(kept)


def post_11(client, pk, secret):
    """Content as a hub holding 1.1's subscription sends it (sha1, 1.1's only method)."""
    body = b"<feed/>"
    headers = {}
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        headers["HTTP_X_HUB_SIGNATURE"] = f"sha1={digest}"
    return client.post(f"/subscriber/{pk}/", body, content_type="application/atom+xml", **headers)


def test_unsigned_content_at_the_11_url_during_a_move_with_insecure_secrets(db_11, server, client):
    """With PUSH_INSECURE_SECRETS, moving a 1.1 row that had no secret (a plain-HTTP hub)
    saves a new secret before the hub has it; the hub still holds the 1.1 URL without one,
    so its unsigned content there gets 400 until the move is verified, and for good if the
    move failed."""
    call_command("migrate", "subscriber", verbosity=0)
    server.default = Reply(400, b"not now")
    with pytest.raises(CommandError):
        call_command("renew_subscriptions", "--legacy", stdout=io.StringIO(), stderr=io.StringIO())
    assert post_11(client, 1, "").status_code == 200


def test_a_moved_secretless_row_takes_its_new_secret_once_verified(db_11, server, live_server):
    """Over real HTTP: during the move the hub's unsigned content at the 1.1 URL is still
    accepted; once the hub verifies the new URL, the secret it was sent is the row's, and
    content there must be signed with it."""
    from django_push.subscriber.models import Subscription

    call_command("migrate", "subscriber", verbosity=0)
    server.default = Reply(202)
    call_command("renew_subscriptions", "--legacy", stdout=io.StringIO())
    row = Subscription.objects.get(pk=1)
    [request] = [r for r in server.requests if r.form["hub.callback"] == [row.callback_url]]
    new_secret = request_secret(request)
    assert (row.secret, row.pending_secret) == ("", new_secret)
    assert post_live(live_server, f"/subscriber/{row.pk}/", b"<feed/>") == 200  # not yet

    path, params = local(
        row.callback_url,
        **{
            "hub.mode": "subscribe",
            "hub.topic": row.topic,
            "hub.challenge": "c",
            "hub.lease_seconds": "86400",
        },
    )
    assert get_live(live_server, path, params) == (200, b"c")
    row.refresh_from_db()
    assert (row.secret, row.pending_secret, row.verified) == (new_secret, "", True)

    new_url = f"{path}?{urlencode({'token': row.callback_token})}"
    body = b"<feed>new</feed>"
    digest = hmac.new(new_secret.encode(), body, "sha256").hexdigest()
    signed = {"X-Hub-Signature": f"sha256={digest}"}
    assert post_live(live_server, new_url, body) == 400  # unsigned: refused now
    wrong = {"X-Hub-Signature": "sha256=" + hmac.new(b"old", body, "sha256").hexdigest()}
    assert post_live(live_server, new_url, body, wrong) == 200  # dropped: S-20
    accepted = []
    updated.connect(receiver := lambda sender, notification, **kw: accepted.append(notification))
    try:
        assert post_live(live_server, new_url, body, signed) == 200
    finally:
        updated.disconnect(receiver)
    assert accepted == [body]


def get_live(live_server, path, params):
    url = f"{live_server.url}{path}?{urlencode(params)}"
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_live(live_server, path, body, headers=None):
    request = urllib.request.Request(
        live_server.url + path,
        body,
        {"Content-Type": "application/atom+xml", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
