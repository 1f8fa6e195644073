"""flask-websub's hub as its README sets it up, for the side-by-side figure of ``hub_deployed.py``.

Runs in its own virtual environment (flask-websub, celery, gunicorn from PyPI), served by
gunicorn like our hub. flask-websub queues its work as Celery tasks; there is no broker
here, so Celery runs them eagerly, inside the request. ``/bare`` is the baseline on the
same server: one INSERT into a SQLite table, as our bare Django view does.

    BENCH_SQLITE=/tmp/fw.sqlite3 gunicorn flask_websub_hub:app
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from celery import Celery
from flask import Flask, request
from flask_websub.hub import Hub, SQLite3HubStorage

DATABASE = os.environ.get("BENCH_SQLITE", "flask-websub.sqlite3")

app = Flask(__name__)
app.config["PUBLISH_SUPPORTED"] = True
celery = Celery("flask_websub_hub")
celery.conf.update(task_always_eager=True)
hub = Hub(SQLite3HubStorage(DATABASE), celery, SIGNATURE_ALGORITHM="sha256", REQUEST_TIMEOUT=10)
app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))


with contextlib.closing(sqlite3.connect(DATABASE, timeout=30)) as setup, setup:
    setup.execute("CREATE TABLE IF NOT EXISTS hit (id INTEGER PRIMARY KEY, callback TEXT)")


@app.post("/bare")
def bare() -> tuple[str, int]:
    connection = sqlite3.connect(DATABASE, timeout=30)
    try:
        with connection:  # one transaction, committed
            connection.execute(
                "INSERT INTO hit (callback) VALUES (?)", (request.form["hub.callback"],)
            )
    finally:
        connection.close()
    return "stored", 202
