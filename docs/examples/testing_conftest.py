# conftest.py
pytest_plugins = ["django_push.testing.pytest"]
