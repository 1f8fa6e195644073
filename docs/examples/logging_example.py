# settings.py: hub, subscriber and publisher each log on their own logger, all children of
# "django_push": configure the parent for everything, a child for one role.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_push": {"handlers": ["console"], "level": "INFO"},
        "django_push.subscriber": {"level": "DEBUG"},  # also refused callback requests
        "django_push.hub": {"level": "WARNING"},  # only failures of a busy hub
    },
}
