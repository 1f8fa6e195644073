# Development on one machine: publisher, hub and subscriber on http://127.0.0.1:8000/.
# Never in production: the two switches open the network guard and send secrets in clear.
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
PUSH_DOMAIN = "127.0.0.1:8000"  # callbacks: the hub calls runserver back here
PUSH_SSL_CALLBACK = False  # runserver speaks plain HTTP
PUSH_HUB = PUSH_HUB_URL = "http://127.0.0.1:8000/hub/"
PUSH_HUB_TOPICS = ["http://127.0.0.1:8000/"]
PUSH_ALLOW_PRIVATE_ADDRESSES = True  # the network guard would refuse 127.0.0.1:8000
PUSH_INSECURE_SECRETS = True  # send hub.secret over plain HTTP, so deliveries are signed
BLOG_FEED_URL = "http://127.0.0.1:8000/feed/"

# SQLite with a web server and a worker writing at once: WAL, and IMMEDIATE transactions
# (else "database is locked"; manage.py check warns, django_push.W106).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "db.sqlite3",  # in the directory you run manage.py from
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
        },
    }
}

# Django's default logging hides INFO: show what django-push does.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_push": {"handlers": ["console"], "level": "INFO"}},
}
