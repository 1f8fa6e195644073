# blog/apps.py
from django.apps import AppConfig


class BlogConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "blog"

    def ready(self):
        # Connects the receivers, once Django has loaded the models.
        from . import receivers  # noqa: F401
