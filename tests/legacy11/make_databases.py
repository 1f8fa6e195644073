# ruff: noqa
"""Regenerate subscriber-1.1.sqlite3 and subscriber-1.1-postgres.sql, a django-push 1.1 database.

To regenerate (Python 3.6 from pyenv, PostgreSQL on 127.0.0.1:5432, user postgres, trust):

    $(pyenv root)/versions/3.6.15/bin/python3.6 -m venv /tmp/py36
    /tmp/py36/bin/pip install Django==2.0.13 django-push==1.1 requests==2.27.1 \
        certifi==2021.10.8 'urllib3<1.27' 'idna<3.5' 'charset-normalizer<2.1' pytz==2021.3 \
        psycopg2-binary==2.8.6
    /tmp/py36/bin/python tests/legacy11/make_databases.py

Every row is written by 1.1's own code: ``Subscription.objects.subscribe()`` and
``subscription.unsubscribe()`` post to a tiny hub running here in a thread, and the hub's
verifications are 1.1's ``CallbackView`` answering GETs (through Django's test client, as a
hub would over HTTP). Two things are not 1.1's own doing:

* 1.1 gives a secret only to ``https`` hubs, so the secure hub's URL is ``https://``; its
  requests are sent to the same local hub over plain HTTP (``requests.post`` rewritten
  here), because TLS would add nothing to what 1.1 stores.
* duplicates of a (hub, topic) pair, which 1.1 made when two ``subscribe()`` calls raced
  past ``get_or_create``, are made with ``Subscription.objects.create()`` as that race does.

The hubs' URLs (``http://hub.legacy11.test/``, ``https://secure-hub.legacy11.test/``) and the
site's domain (``site.legacy11.test``) are fixed, so the files differ between runs only in
timestamps and secrets; tests point the hub URLs at their own hub.
"""

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ["DJANGO_SETTINGS_MODULE"] = "settings11"

HUB = "http://hub.legacy11.test/"
SECURE_HUB = "https://secure-hub.legacy11.test/"
TOPIC = "http://feeds.legacy11.test/%s.xml"
FAR = 10 * 365 * 24 * 3600  # a lease that outlives the test data

# What the local hub answers next, and what it was sent.
answers = []
received = []


class Hub(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append(parse_qs(body.decode()))
        status = answers.pop(0) if answers else 202
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def build(label):
    import django
    import requests

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from django_push.subscriber import models
    from django_push.subscriber.models import Subscription, SubscriptionError

    httpd = HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    local = "http://127.0.0.1:%d/" % httpd.server_port
    real_post = requests.post

    def post(url, *args, **kwargs):
        return real_post(url.replace(HUB, local).replace(SECURE_HUB, local), *args, **kwargs)

    models.requests.post = post
    call_command("migrate", verbosity=0)
    client = Client()

    def subscribe(name, hub=HUB, answer=202):
        answers.append(answer)
        return Subscription.objects.subscribe(TOPIC % name, hub)

    def verify(sub, seconds):
        response = client.get(
            "/subscriber/%d/" % sub.pk,
            {
                "hub.mode": "subscribe",
                "hub.topic": sub.topic,
                "hub.challenge": "c",
                "hub.lease_seconds": str(seconds),
            },
        )
        assert response.status_code == 200, response

    # Verified, with a lease, without and with a secret.
    verify(subscribe("verified"), FAR)
    verify(subscribe("verified-secret", SECURE_HUB), FAR)
    # Verified, lease ended (1 s lease).
    verify(subscribe("expired"), 1)
    verify(subscribe("expired-secret", SECURE_HUB), 1)
    # Verified by a PubSubHubbub 0.3 hub's 204: no lease at all.
    subscribe("sync-verified", answer=204)
    # Refused by the hub: 1.1 raised and kept the row, unverified.
    try:
        subscribe("refused", answer=500)
    except SubscriptionError:
        pass
    else:
        raise AssertionError("1.1 should have raised")
    # Pending: requested, the hub has not verified yet.
    subscribe("pending")
    subscribe("pending-secret", SECURE_HUB)
    # An unsubscription in flight: verified, 1.1 asked the hub to unsubscribe (202), and the
    # hub's verification has not arrived (1.1 records nothing).
    leaving = subscribe("leaving")
    verify(leaving, FAR)
    answers.append(202)
    Subscription.objects.get(pk=leaving.pk).unsubscribe()
    # Duplicates (the race past get_or_create): a verified pair, the later lease wins ...
    short = Subscription.objects.create(hub=HUB, topic=TOPIC % "dup-verified")
    verify(short, 3600)
    long = Subscription.objects.create(hub=HUB, topic=TOPIC % "dup-verified")
    verify(long, FAR)
    # ... verified with a secret and unverified: the verified one wins ...
    verify(subscribe("dup-mixed", SECURE_HUB), FAR)
    Subscription.objects.create(hub=SECURE_HUB, topic=TOPIC % "dup-mixed")
    # ... and two unverified rows: the newest wins.
    Subscription.objects.create(hub=HUB, topic=TOPIC % "dup-unverified")
    Subscription.objects.create(hub=HUB, topic=TOPIC % "dup-unverified")
    # The same topic at two hubs is no duplicate.
    verify(subscribe("verified", SECURE_HUB), FAR)

    assert not answers, answers
    httpd.shutdown()
    print("%s: %d rows, %d hub requests" % (label, Subscription.objects.count(), len(received)))


def run(env, label):
    """Build in a child process, so each database gets a fresh Django."""
    subprocess.check_call([sys.executable, __file__, "--build", label], env=dict(os.environ, **env))


def main():
    if sys.argv[1:2] == ["--build"]:
        build(sys.argv[2])
        return
    sqlite = os.path.join(HERE, "subscriber-1.1.sqlite3")
    if os.path.exists(sqlite):
        os.remove(sqlite)
    run({"LEGACY11_SQLITE": sqlite}, "sqlite")

    name = "legacy11_make_%d" % os.getpid()
    pg = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
    subprocess.check_call(["createdb"] + pg + [name])
    try:
        run({"LEGACY11_DB": "postgres", "LEGACY11_PGNAME": name}, "postgres")
        dump = subprocess.check_output(
            ["pg_dump"] + pg + ["--no-owner", "--no-privileges", "--inserts", name]
        )
    finally:
        subprocess.check_call(["dropdb"] + pg + [name])
    with open(os.path.join(HERE, "subscriber-1.1-postgres.sql"), "wb") as out:
        out.write(dump)


if __name__ == "__main__":
    main()
