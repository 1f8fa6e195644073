"""A small Django project, deployed as users deploy it, for ``bench/subscriber_callback.py``."""
