"""The hub's three tested task-engine configurations (docs/deployment.rst), each a dict of
settings; tests/test_docs.py checks them against the benchmark site that measured them."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# --- SQLite with django-tasks-db: run one "manage.py db_worker" process.
SQLITE = {
    "DATABASES": {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    },
    "TASKS": {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}},
}

# --- PostgreSQL with django-tasks-db: "manage.py db_worker" processes, one per spare core.
POSTGRES = {
    "DATABASES": {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "hub",
            "HOST": "db.internal",
            "CONN_MAX_AGE": 600,  # the worker keeps its connection between tasks
        }
    },
    "TASKS": {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}},
}

# --- PostgreSQL with RQ on Redis ("django_rq" and "django_tasks_rq" in INSTALLED_APPS):
# "manage.py rqworker --with-scheduler --job-class django_tasks_rq.Job default" processes.
RQ = {
    "DATABASES": POSTGRES["DATABASES"],
    "TASKS": {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}},
    "RQ_QUEUES": {
        # A verification task runs while subscribe requests keep coming, and a fan-out task
        # while deliveries are due: RQ's default job timeout (180 s) would kill them.
        "default": {"URL": "redis://redis.internal:6379/0", "DEFAULT_TIMEOUT": 3600},
    },
}
# --- end
